"""The agents' desk (issue 15): French times, one state vocabulary, search, holds, the reset
confirmation, the sent text, reassignment back to the queue, « consultée » once a day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from triage.config import Desk
from triage.pipeline import triage_bytes
from triage.review import french
from triage.store import AuditEvent, OutboxItem, Ticket

from .conftest import DEV, login, ticket_id


def test_paris_time_in_french():
    """A UTC instant reads in Paris time, French style; ages read « il y a 3 h »."""
    at = datetime(2026, 12, 7, 5, 22, tzinfo=UTC)
    assert french.when(at) == "7 déc. 2026 à 06:22"
    assert french.when(datetime(2026, 7, 14, 5, 22, tzinfo=UTC)) == "14 juil. 2026 à 07:22"
    assert french.ago(at, at + timedelta(hours=3, minutes=5)) == "il y a 3 h"
    assert french.ago(at, at + timedelta(seconds=20)) == "à l'instant"


def test_business_days_skip_weekends_and_public_holidays():
    """A Friday's request is 1 business day old on Monday; Christmas and Easter Monday do
    not count; the age filter's cutoff agrees with the ages."""
    friday = datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert french.business_days(friday, datetime(2026, 12, 7, 9, tzinfo=UTC)) == 1
    assert french.business_days(datetime(2026, 12, 24, 10, tzinfo=UTC),
                                datetime(2026, 12, 28, 10, tzinfo=UTC)) == 1  # 25th, weekend
    assert datetime(2026, 4, 6).date() in french.holidays(2026)  # Easter Monday 2026
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    cutoff = french.business_days_ago(2, now)
    assert french.business_days(cutoff - timedelta(minutes=1), now) >= 2
    assert french.business_days(cutoff + timedelta(minutes=1), now) < 2
    assert french.age(friday, datetime(2026, 12, 9, 9, tzinfo=UTC)) == "3 j ouvrés"


def test_display_names_are_validated():
    """An unknown template role in desk.display_names is refused; defaults fill the rest."""
    with pytest.raises(ValidationError, match="unknown template role"):
        Desk(display_names={"reset_pasword": "x"})
    desk = Desk(display_names={"reset_password": "Réinitialisation"})
    assert desk.label("reset_password") == "Réinitialisation"
    assert desk.label("expired_password") == "Mot de passe expiré"


def test_queue_one_vocabulary_and_ignored_mail_apart(client, store, settings):
    """The state filter offers « à traiter » once; ignored mail is out of the default queue
    and found with the « Ignoré » type; times are French, never « UTC »."""
    raw = (DEV / "025.eml").read_bytes()
    ignored, _ = store.record(triage_bytes(raw, settings), raw, origin="test:025.eml")
    login(client, "agent38")
    page = client.get("/").text
    assert f'href="/tickets/{ignored.id}"' not in page
    states = page[page.index('name="status"'):page.index("</select>", page.index('name="status"'))]
    assert len(re.findall(r">[àÀ] traiter", states)) == 1
    assert "UTC" not in page
    assert f'href="/tickets/{ignored.id}"' in client.get("/?action=ignore").text


def test_search_by_number_address_identifier_and_words(client, store):
    """The search box finds a ticket by number, sender address, identifier and subject
    words, and only among the agent's departments."""
    own = ticket_id(store, "065.eml")
    other = ticket_id(store, "006.eml")  # department 73
    login(client, "agent38")
    with store.session() as s:
        t = s.get(Ticket, own)
        address, identifier, subject = t.requester, t.identifier, t.subject
    word = max(subject.split(), key=len)
    for term in (f"#{own}", address.upper(), identifier, word):
        page = client.get("/", params={"q": term}).text
        assert f'href="/tickets/{own}"' in page, term
    assert f'href="/tickets/{other}"' not in client.get("/", params={"q": f"#{other}"}).text
    assert "Aucune demande" in client.get("/", params={"q": "zzzz-introuvable"}).text


def test_reset_needs_the_reset_confirmation_recorded_in_the_audit(client, store):
    """A reset draft is not approved without « J'ai réinitialisé le mot de passe de … »; with
    it, the statement is in the audit and the page then shows the exact text queued, its
    Message-ID and time."""
    csrf = login(client, "agent38")
    own = ticket_id(store, "065.eml")
    page = client.get(f"/tickets/{own}").text
    assert "J&#39;ai réinitialisé le mot de passe de a.martin-xt dans l&#39;outil" in page
    r = client.post(f"/tickets/{own}/approve", data={"csrf": csrf, "address_confirmed": "yes"})
    assert "confirmez avoir réinitialisé le mot de passe de a.martin-xt" in r.text
    with store.session() as s:
        assert s.scalar(select(OutboxItem).where(OutboxItem.ticket_id == own)) is None
    r = client.post(f"/tickets/{own}/approve", data={
        "csrf": csrf, "address_confirmed": "yes", "reset_confirmed": "yes",
        "body": "Bonjour,\nVotre mot de passe est réinitialisé ; texte vérifié 4217.\n"})
    assert "Réponse validée" in r.text
    with store.session() as s:
        approved = s.scalar(select(AuditEvent).where(AuditEvent.ticket_id == own,
                                                     AuditEvent.event == "draft.approved"))
        assert approved.detail["reset_confirmed"] == (
            "J'ai réinitialisé le mot de passe de a.martin-xt dans l'outil d'administration")
        item = s.scalar(select(OutboxItem).where(OutboxItem.ticket_id == own))
        message_id = item.message_id
        order = [e.event for e in s.scalars(select(AuditEvent).where(
            AuditEvent.ticket_id == own).order_by(AuditEvent.id))]
    assert order.index("draft.approved") < order.index("outbox.queued")  # as agents read it
    assert "texte vérifié 4217" in r.text and message_id in r.text


def test_reassign_returns_to_the_queue_and_records_from_and_to(client, store):
    """Reassigning to another department lands on the queue with a notice, not on a 403;
    the history says 38 → 73."""
    csrf = login(client, "agent38")
    own = ticket_id(store, "065.eml")
    r = client.post(f"/tickets/{own}/reassign", data={"csrf": csrf, "department": "73"})
    assert r.url.path == "/" and r.status_code == 200
    assert f"Demande #{own} : Demande réaffectée au département 73" in r.text
    login(client, "agent73")
    assert "38 → 73" in client.get(f"/tickets/{own}").text


def test_viewed_once_per_agent_and_day(client, store):
    """Reloading a ticket logs « consultée » once per agent and day, not at every view."""
    login(client, "agent38")
    own = ticket_id(store, "065.eml")
    for _ in range(3):
        client.get(f"/tickets/{own}")
    with store.session() as s:
        views = s.scalars(select(AuditEvent).where(AuditEvent.ticket_id == own,
                                                   AuditEvent.event == "ticket.viewed")).all()
    assert len(views) == 1


def test_holds_warn_others_and_expire(client, store, settings):
    """Agent A takes a ticket; B sees who and since when, and B's action is refused until B
    ticks the confirmation; a hold older than hold_minutes reads as none; A releases it."""
    from starlette.testclient import TestClient

    from triage.review.agents import add_agent
    from triage.review.web import create_app

    from .conftest import PASSWORD

    own = ticket_id(store, "065.eml")
    with store.session() as s:
        add_agent(s, settings, "collegue38", PASSWORD, ["38"])
        s.commit()
    csrf_a = login(client, "agent38")
    r = client.post(f"/tickets/{own}/hold", data={"csrf": csrf_a, "op": "take"})
    assert "Vous vous occupez de cette demande" in r.text
    with TestClient(create_app(settings, store), base_url="http://127.0.0.1") as other:
        csrf_b = login(other, "collegue38")
        page = other.get(f"/tickets/{own}").text
        assert "agent38</strong> s'occupe de cette demande depuis" in page
        assert 'name="override"' in page
        r = other.post(f"/tickets/{own}/reject", data={"csrf": csrf_b, "reason": "doublon"})
        assert "cochez la confirmation" in r.text
        with store.session() as s:
            assert not s.scalars(select(AuditEvent).where(
                AuditEvent.event == "draft.rejected")).all()
        r = other.post(f"/tickets/{own}/reject", data={"csrf": csrf_b, "reason": "doublon",
                                                       "override": "yes"})
        assert "Brouillon rejeté" in r.text
        with store.session() as s:  # two hours later, the hold has expired
            s.execute(update(Ticket).where(Ticket.id == own).values(
                held_at=datetime.now(UTC) - timedelta(minutes=settings.desk.hold_minutes + 1)))
            s.commit()
        assert "Personne ne s'occupe de cette demande" in other.get(f"/tickets/{own}").text
    r = client.post(f"/tickets/{own}/hold", data={"csrf": csrf_a, "op": "take"})
    r = client.post(f"/tickets/{own}/hold", data={"csrf": csrf_a, "op": "release"})
    assert "Demande rendue à l&#39;équipe" in r.text or "Demande rendue à l'équipe" in r.text
    with store.session() as s:
        assert s.get(Ticket, own).held_by is None


def test_lead_gives_the_hold_and_the_sender_history_is_shown(client, store, settings):
    """A lead gives a ticket to an agent of its department; the ticket page lists the
    sender's other requests (same address or identifier) with their state."""
    from triage.review.agents import add_agent

    from .conftest import PASSWORD

    with store.session() as s:
        add_agent(s, settings, "chef38", PASSWORD, ["38"], role="lead")
        s.commit()
    raw = (DEV / "065.eml").read_bytes().replace(b"Message-ID: <", b"Message-ID: <again", 1)
    again, _ = store.record(triage_bytes(raw, settings), raw, origin="test:again")
    own = ticket_id(store, "065.eml")
    csrf = login(client, "chef38")
    r = client.post(f"/tickets/{own}/hold", data={"csrf": csrf, "op": "give", "to": "agent38"})
    assert "Demande confiée à agent38" in r.text
    with store.session() as s:
        assert s.get(Ticket, own).held_by == "agent38"
    page = client.get(f"/tickets/{again.id}").text
    earlier = page[page.index("Demandes précédentes"):page.index("Historique")]
    assert f'href="/tickets/{own}"' in earlier


def test_dashboard_table_and_chart_show_one_value():
    """A delay of 1.2 minutes reads « 1 min » in the chart's bars and in the table, and a
    table beside a chart in hours uses hours too."""
    from triage.review.dashboard import duration, shown, unit_for

    hours = 1.2 / 60
    unit = unit_for([hours])[0]
    assert (unit, shown(hours, unit), duration(hours, unit)) == ("min", 1.0, "1 min")
    assert duration(0.5, "h") == "0,5 h" and duration(0.5) == "30 min"
