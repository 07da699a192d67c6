"""A ticket's life: quarantine holds, handled after approve, a second approve, stranger threads.

Each test reproduces one defect of issue 12 on the store and the web pages (SQLite and
PostgreSQL); the same promises through Dovecot and two web processes are in
``tests/intake/test_threading.py`` and ``tests/review/test_concurrent_approve.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from triage.lifecycle import Event, OutboxState
from triage.pipeline import triage_bytes
from triage.review.moderation import ModerationError, handle
from triage.send import outbox
from triage.send.sender import send_due, send_one
from triage.store import Agent, AuditEvent, DraftRow, OutboxItem, Ticket
from triage.testing.smtp import SmtpRelay

from .conftest import DEV, login, make_settings, ticket_id


@pytest.fixture
def relay():
    with SmtpRelay() as relay:
        yield relay


def _agent(s, login_name: str = "agent38") -> Agent:
    agent = s.scalar(select(Agent).where(Agent.login == login_name))
    assert agent is not None
    return agent


def test_agent_cannot_draft_or_approve_a_quarantined_ticket(client, store):
    """An agent's template then approve on a quarantined ticket is refused and queues nothing;
    the page offers neither form."""
    quarantined = ticket_id(store, "047.eml")
    with store.session() as s:  # make it visible to agent 38
        s.get(Ticket, quarantined).department = "38"
        s.commit()
    csrf = login(client, "agent38")
    page = client.get(f"/tickets/{quarantined}").text
    assert f"/tickets/{quarantined}/template" not in page
    assert f"/tickets/{quarantined}/approve" not in page
    client.post(f"/tickets/{quarantined}/template",
                data={"csrf": csrf, "template": "reset_password"})
    r = client.post(f"/tickets/{quarantined}/approve",
                    data={"csrf": csrf, "address_confirmed": "yes", "reset_confirmed": "yes"})
    assert "quarantaine" in r.text
    with store.session() as s:
        assert s.scalars(select(OutboxItem)).all() == []
        assert s.scalars(select(DraftRow).where(DraftRow.ticket_id == quarantined)).all() == []
        assert s.get(Ticket, quarantined).status == "quarantined"


def test_handled_after_approve_cancels_the_reply(tmp_path, store_url, relay):
    """`handled` after approve cancels the queued reply: the relay receives nothing, and the
    ticket is handled, never handled and sent."""
    settings, store = _world(tmp_path, store_url, relay)
    own = ticket_id(store, "065.eml")
    with store.session() as s:
        agent, ticket = _agent(s), s.get(Ticket, own)
        handle(s, settings, agent, ticket, Event.APPROVE, {"address_confirmed": "yes",
                                                          "reset_confirmed": "yes"})
        s.commit()
        handle(s, settings, agent, ticket, Event.HANDLED, {"note": "réglé par téléphone"})
        s.commit()
    send_due(settings, store, "test")
    assert relay.messages == []
    with store.session() as s:
        assert s.get(Ticket, own).status == "handled"
        assert s.scalar(select(OutboxItem.state)) == "cancelled"
    store.dispose()


def test_handled_is_refused_once_sending_started(tmp_path, store_url, relay):
    """Once the sender has started on the reply, `handled` is refused and the reply goes."""
    settings, store = _world(tmp_path, store_url, relay)
    own = ticket_id(store, "065.eml")
    with store.session() as s:
        handle(s, settings, _agent(s), s.get(Ticket, own), Event.APPROVE,
               {"address_confirmed": "yes", "reset_confirmed": "yes"})
        s.commit()
    with store.session() as s:
        item = outbox.claim(s, "test")
        assert item is not None and outbox.set_state(s, item, OutboxState.SENDING)
        item_id = item.id
    with store.session() as s, pytest.raises(ModerationError, match="envoi"):
        handle(s, settings, _agent(s), s.get(Ticket, own), Event.HANDLED, {})
    with store.session() as s:
        assert s.get(Ticket, own).status == "approved"
    send_one(settings, store, item_id)  # the sender that claimed it carries on
    assert len(relay.messages) == 1
    with store.session() as s:
        assert s.get(Ticket, own).status == "sent"
    store.dispose()


def test_second_approve_is_a_no_op(tmp_path, store_url, relay):
    """Approving an approved ticket again changes nothing: one outbox item, one reply."""
    settings, store = _world(tmp_path, store_url, relay)
    own = ticket_id(store, "065.eml")
    for _ in range(2):
        with store.session() as s:
            message = handle(s, settings, _agent(s), s.get(Ticket, own), Event.APPROVE,
                             {"address_confirmed": "yes", "reset_confirmed": "yes"})
            s.commit()
    assert "déjà" in message
    send_due(settings, store, "test")
    assert len(relay.messages) == 1
    with store.session() as s:
        assert len(s.scalars(select(OutboxItem)).all()) == 1
        assert len(s.scalars(select(AuditEvent).where(
            AuditEvent.event == "draft.approved")).all()) == 1
    store.dispose()


def test_a_strangers_reference_opens_its_own_ticket(store, settings):
    """A stranger's `[réf. Tn]` opens its own ticket that mentions Tn; Tn's draft still goes
    to its requester."""
    first = ticket_id(store, "065.eml")
    raw = (f"From: Mallory <mallory@evil.example>\r\n"
           f"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
           f"Subject: Re: Chorus Pro - mot de passe [réf. T{first}]\r\n"
           f"Message-ID: <stranger@test>\r\n\r\nJ'ai oublié mon mot de passe, "
           f"a.martin-xt, merci de me répondre à cette adresse.\r\n").encode()
    child, _ = store.record(triage_bytes(raw, settings), raw, origin="test:stranger")
    assert child.parent_id is None and child.mentions_id == first
    from triage.review.moderation import current_draft

    with store.session() as s:
        draft = current_draft(s, s.get(Ticket, first))
        assert draft is not None and draft.to_addr == "aurelie.martin@ville-voiron.fr"


def test_requester_follow_up_never_reopens_a_quarantined_ticket(store, settings):
    """The requester's own follow-up joins a quarantined ticket and leaves it quarantined."""
    quarantined = ticket_id(store, "047.eml")
    with store.session() as s:
        ticket = s.get(Ticket, quarantined)
        sender, subject = ticket.requester, ticket.subject
    raw = (f"From: {sender}\r\nTo: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
           f"Subject: Re: {subject} [réf. T{quarantined}]\r\nMessage-ID: <again@test>\r\n\r\n"
           f"Avez-vous bien reçu mon message ?\r\n").encode()
    child, _ = store.record(triage_bytes(raw, settings), raw, origin="test:again")
    with store.session() as s:
        assert s.get(Ticket, quarantined).status == "quarantined"
        assert child.parent_id in (None, quarantined)


def test_page_links_the_mention_and_warns_on_a_foreign_recipient(client, store, settings):
    """A ticket that mentions another shows « mentionne la demande Tn »; a draft whose
    recipient is not the requester is flagged on the page."""
    first = ticket_id(store, "065.eml")
    raw = (f"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
           f"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
           f"Subject: Re: [réf. T{first}] mot de passe\r\nMessage-ID: <mention@test>\r\n\r\n"
           f"J'ai oublié mon mot de passe, pmartin-xt\r\n").encode()
    child, _ = store.record(triage_bytes(raw, settings), raw, origin="test:mention")
    with store.session() as s:  # a draft from before threading was fixed: another recipient
        draft = s.scalar(select(DraftRow).where(DraftRow.ticket_id == first))
        draft.to_addr = "someone.else@example.org"
        s.commit()
    login(client, "agent38")
    assert f"mentionne la demande T{first}" in client.get(f"/tickets/{child.id}").text
    page = client.get(f"/tickets/{first}").text
    assert "someone.else@example.org" in page and "pas le demandeur de cette demande" in page


def _world(tmp_path: Path, store_url: str, relay: SmtpRelay):  # type: ignore[no-untyped-def]
    """Settings with the test relay, a store holding 065.eml, and agent 38."""
    from triage.review.agents import add_agent
    from triage.store import Store

    settings = make_settings(tmp_path, store={"url": store_url}, mailboxes=[],
                             smtp={"host": "127.0.0.1", "port": relay.port,
                                   "security": "plain", "timeout": 10})
    store = Store.open(settings)
    with store.session() as s:
        add_agent(s, settings, "agent38", "correct horse battery", ["38"])
        s.commit()
    raw = (DEV / "065.eml").read_bytes()
    store.record(triage_bytes(raw, settings), raw, origin="test:065.eml")
    return settings, store


def test_rerendering_uses_the_message_the_draft_answers(store, settings):
    """The requester's follow-up brings its own draft; reassigning re-renders it with the
    follow-up's identifier, and the first draft keeps its recipient."""
    first = ticket_id(store, "063.eml")
    raw = ("From: Claire Bouvier <claire.bouvier@ville-crolles.fr>\r\n"
           "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
           f"Subject: Re: Chorus Pro [réf. T{first}]\r\nMessage-ID: <second@test>\r\n\r\n"
           "Pardon, mon identifiant est cbouvier2-xt : mot de passe expiré.\r\n").encode()
    child, _ = store.record(triage_bytes(raw, settings), raw, origin="test:second")
    assert child.parent_id == first
    with store.session() as s:
        admin = _agent(s, "admin")
        handle(s, settings, admin, s.get(Ticket, first), Event.REASSIGN, {"department": "73"})
        s.commit()
        drafts = {d.ticket_id: d for d in s.scalars(select(DraftRow))
                  if d.ticket_id in (first, child.id)}
        assert all(d.to_addr == "claire.bouvier@ville-crolles.fr" for d in drafts.values())
        assert set(drafts) == {first, child.id}
        assert "cbouvier2-xt" in drafts[child.id].body
        assert "de la Savoie" in drafts[child.id].body


def test_sent_ticket_page_shows_one_state(client, store, settings):
    """Once its reply is sent, the page says « Réponse envoyée » and no longer « Brouillon à
    valider », and offers no action on the draft."""
    own = ticket_id(store, "065.eml")
    with store.session() as s:
        handle(s, settings, _agent(s), s.get(Ticket, own), Event.APPROVE,
               {"address_confirmed": "yes", "reset_confirmed": "yes"})
        s.commit()
        item = s.scalar(select(OutboxItem))
        assert outbox.set_state(s, item, OutboxState.SENDING)
        outbox.delivered(s, item, "test")
    login(client, "agent38")
    heading = client.get(f"/tickets/{own}").text.split("<h1>", 1)[1].split("</h1>", 1)[0]
    assert "Réponse envoyée" in heading and "Brouillon à valider" not in heading
    assert f"/tickets/{own}/approve" not in client.get(f"/tickets/{own}").text


def test_a_follow_up_recorded_during_the_approval_reopens_once_sent(tmp_path, store_url, relay,
                                                                   monkeypatch):
    """The requester's follow-up that the daemon records while an agent approves the reply
    (the approval commits between the batch's start and its lock on the ticket) joins the
    approved ticket, and the ticket goes back to the agents once the reply is delivered."""
    import triage.store.store as recording

    settings, store = _world(tmp_path, store_url, relay)
    own = ticket_id(store, "065.eml")
    raw = _follow_up(own, "during-approval")
    outcome = triage_bytes(raw, settings)
    reading = recording._known_sources

    def approve_meanwhile(s, seen):  # type: ignore[no-untyped-def]
        with store.session() as other:
            handle(other, settings, _agent(other), other.get(Ticket, own), Event.APPROVE,
                   {"address_confirmed": "yes", "reset_confirmed": "yes"})
            other.commit()
        return reading(s, seen)

    monkeypatch.setattr(recording, "_known_sources", approve_meanwhile)
    child, _ = store.record(outcome, raw, origin="test:during-approval")
    monkeypatch.setattr(recording, "_known_sources", reading)
    assert child.parent_id == own
    with store.session() as s:
        assert s.get(Ticket, own).status == "approved"
    send_due(settings, store, "test")
    assert len(relay.messages) == 1
    with store.session() as s:
        assert s.get(Ticket, own).status == "open"
    store.dispose()


def _follow_up(head: int, name: str) -> bytes:
    """A follow-up of ``head`` from 065.eml's requester."""
    return (f"From: Aurelie Martin <aurelie.martin@ville-voiron.fr>\r\n"
            f"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
            f"Subject: Re: Chorus Pro - mot de passe [réf. T{head}]\r\n"
            f"Message-ID: <{name}@test>\r\n\r\n"
            f"Je ne peux toujours pas me connecter : merci de me rappeler.\r\n").encode()


def test_only_the_follow_ups_after_the_approval_reopen_the_ticket(tmp_path, store_url, relay):
    """A follow-up recorded before the approval (the agent saw it) leaves the ticket sent once
    the reply is delivered; one recorded after it reopens the ticket, and the audit names it
    alone."""
    settings, store = _world(tmp_path, store_url, relay)
    own = ticket_id(store, "065.eml")
    raw = _follow_up(own, "before")
    before, _ = store.record(triage_bytes(raw, settings), raw, origin="test:before")
    with store.session() as s:
        handle(s, settings, _agent(s), s.get(Ticket, own), Event.APPROVE,
               {"address_confirmed": "yes", "reset_confirmed": "yes"})
        s.commit()
    raw = _follow_up(own, "after")
    after, _ = store.record(triage_bytes(raw, settings), raw, origin="test:after")
    assert before.parent_id == own and after.parent_id == own
    send_due(settings, store, "test")
    assert len(relay.messages) == 1
    with store.session() as s:
        assert s.get(Ticket, own).status == "open"
        deferred = [e.detail for e in s.scalars(select(AuditEvent).where(
            AuditEvent.ticket_id == own, AuditEvent.event == "ticket.follow-up"))
            if e.detail.get("deferred")]
        assert deferred and deferred[0]["tickets"] == [after.id]
    store.dispose()
