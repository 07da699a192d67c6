"""A thread acts as one ticket: who may act on it, which reference joins it, which draft and
which state it offers after a reply, and the sender's daily count that decided it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from triage import lifecycle
from triage.lifecycle import Event, OutboxState
from triage.pipeline import triage_bytes
from triage.review.moderation import handle
from triage.send import outbox
from triage.store import Agent, AuditEvent, DraftRow, OutboxItem, Ticket
from triage.store.store import Recording

from .conftest import login, ticket_id

FROM = ("From: Claire Bouvier <claire.bouvier@ville-crolles.fr>\r\n"
        "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n")
RESET = ("Bonjour, mon mot de passe Chorus Pro a expiré, identifiant cbouvier-xt, merci de le "
         "réinitialiser. Claire Bouvier, mairie de Crolles 38920\r\n")


def _record(store, settings, subject, mid, body, history=False):
    raw = (FROM + f"Subject: {subject}\r\nMessage-ID: <{mid}@test>\r\n\r\n{body}").encode()
    outcome = triage_bytes(raw, settings, history=store.history() if history else None)
    ticket, _ = store.record(outcome, raw, origin=f"test:{mid}")
    return ticket, raw


def _deliver(store):
    with store.session() as s:
        for item in s.scalars(select(OutboxItem).where(OutboxItem.state == OutboxState.QUEUED)):
            outbox.set_state(s, item, OutboxState.SENDING)
            outbox.set_state(s, item, OutboxState.COMMITTING)
            outbox.delivered(s, item, "test")


def _approve(store, settings, ticket_id_):
    with store.session() as s:
        agent = s.scalar(select(Agent).where(Agent.login == "agent38"))
        handle(s, settings, agent, s.get(Ticket, ticket_id_), Event.APPROVE,
               {"address_confirmed": "yes", "reset_confirmed": "yes"})
        s.commit()


def test_a_follow_up_id_gives_no_access_to_another_departments_thread(store, settings, client):
    """Reading or approving through a follow-up's id is refused when the thread's head belongs
    to another department: visibility is the thread's, not the follow-up's."""
    first = ticket_id(store, "063.eml")
    child, _ = _record(store, settings, f"Re: Chorus Pro [réf. T{first}]", "fu",
                       "Merci de votre retour, toujours bloquée.\r\n")
    assert child.parent_id == first
    with store.session() as s:
        admin = s.scalar(select(Agent).where(Agent.login == "admin"))
        handle(s, settings, admin, s.get(Ticket, first), Event.REASSIGN, {"department": "73"})
        s.commit()
    csrf = login(client, "agent38")
    assert client.get(f"/tickets/{child.id}").status_code == 403
    refused = client.post(f"/tickets/{child.id}/approve",
                          data={"csrf": csrf, "address_confirmed": "yes", "reset_confirmed": "yes"},
                          follow_redirects=False)
    assert refused.status_code == 403
    assert client.get(f"/tickets/{child.id}/attachments/0").status_code == 403
    with store.session() as s:
        assert s.scalars(select(OutboxItem)).all() == []
        assert s.get(Ticket, first).status == lifecycle.TicketState.OPEN


@pytest.mark.parametrize("ref", ["99999999999999999999", "3000000000", "2147483648"])
def test_an_out_of_range_subject_reference_is_no_reference(store, settings, ref):
    """A `[réf. Tn]` beyond the 32-bit id range is recorded as a new ticket, not an error that
    would stop the mailbox at every poll."""
    ticket, _ = _record(store, settings, f"Re: [réf. T{ref}]", f"big{ref}", "Bonjour\r\n")
    assert ticket.id is not None and ticket.parent_id is None and ticket.mentions_id is None


def test_a_stale_draft_is_never_offered_after_the_reply(store, settings):
    """Approving a thread's draft discards its older pending drafts (audited), so a later
    follow-up without a draft of its own cannot get a second reply approved."""
    first = ticket_id(store, "063.eml")
    c1, _ = _record(store, settings, f"Re: Chorus Pro [réf. T{first}]", "fa",
                    "Mon mot de passe Chorus Pro a expiré, identifiant cbouvier-xt, merci de le "
                    "réinitialiser.\r\n")
    assert c1.parent_id == first
    _approve(store, settings, first)
    _deliver(store)
    c2, _ = _record(store, settings, f"Re: Chorus Pro [réf. T{first}]", "fb",
                    "Je n'arrive pas à me connecter au portail depuis ce matin.\r\n")
    assert c2.parent_id == first
    with store.session() as s:
        head = s.get(Ticket, first)
        assert head.status == lifecycle.TicketState.OPEN
        assert lifecycle.pending_draft(s, head) is None
        assert lifecycle.Event.APPROVE not in lifecycle.allowed(s, head, admin=True)
        discarded = s.scalars(select(DraftRow).where(DraftRow.status == "discarded")).all()
        assert len(discarded) == 1
        assert s.scalar(select(AuditEvent).where(AuditEvent.event == "draft.discarded",
                                                 AuditEvent.ticket_id == first)) is not None
    with pytest.raises(Exception, match="brouillon"):
        _approve(store, settings, first)
    with store.session() as s:
        assert len(s.scalars(select(OutboxItem)).all()) == 1


def test_a_follow_up_while_the_reply_is_queued_reopens_the_ticket(store, settings):
    """A follow-up that joins the thread while its reply is queued leaves the ticket open,
    with its draft to approve, once the reply is delivered."""
    first = ticket_id(store, "063.eml")
    _approve(store, settings, first)
    child, _ = _record(store, settings, f"Re: Chorus Pro [réf. T{first}]", "fu2",
                       "Pardon, mon identifiant est cbouvier-xt et mon mot de passe a expiré, "
                       "merci de le réinitialiser.\r\n")
    assert child.parent_id == first
    _deliver(store)
    with store.session() as s:
        head = s.get(Ticket, first)
        assert head.status == lifecycle.TicketState.OPEN
        draft = lifecycle.pending_draft(s, head)
        assert draft is not None and draft.ticket_id == child.id
        assert lifecycle.Event.APPROVE in lifecycle.allowed(s, head, admin=False)


def test_explain_history_counts_the_drafts_the_decision_saw(store, settings):
    """Deciding a stored message again counts only the drafts that existed when it was
    decided: a draft an agent prepares later on an older ticket does not change the result."""
    for i in range(settings.max_drafts_per_sender_per_day - 2):
        _record(store, settings, "mdp", f"r{i}", RESET, history=True)
    other, _ = _record(store, settings, "ajout utilisateur", "o",
                       "Bonjour, je n'arrive pas à ajouter un utilisateur dans la structure "
                       "Chorus Pro, merci. Claire Bouvier, mairie de Crolles 38920\r\n",
                       history=True)
    last, raw = _record(store, settings, "mdp", "last", RESET, history=True)
    with store.session() as s:
        admin = s.scalar(select(Agent).where(Agent.login == "admin"))
        handle(s, settings, admin, s.get(Ticket, other.id), Event.TEMPLATE,
               {"template": "reset_password"})
        s.commit()
    history, at = store.history_of(raw)
    again = triage_bytes(raw, settings, history=history, at=at)
    assert again.decision.action.value == last.action


def test_explain_history_counts_an_intake_batch_as_the_daemon_did(store, settings):
    """A message decided in an intake batch is decided again with the drafts of the batch's
    older tickets, not with a draft an agent prepared later on one of them: the audit, the
    stored decision and `explain --history` agree."""
    address = "claire.bouvier@ville-crolles.fr"
    stored = store.history().drafts_before(address, datetime.now(UTC))
    resets = settings.max_drafts_per_sender_per_day - 1 - stored
    assert resets >= 1
    mails = [("ajout utilisateur", "b-other",
              "Bonjour, je n'arrive pas à ajouter un utilisateur dans la structure Chorus Pro, "
              "merci. Claire Bouvier, mairie de Crolles 38920\r\n")]
    mails += [("mdp", f"b-r{i}", RESET) for i in range(resets)] + [("mdp", "b-last", RESET)]
    raws = [(FROM + f"Subject: {subject}\r\nMessage-ID: <{mid}@test>\r\n\r\n{body}").encode()
            for subject, mid, body in mails]
    shared = store.history()  # the daemon's port: one for the batch, counting it as it goes
    outcomes = [triage_bytes(raw, settings, history=shared) for raw in raws]
    with store.session() as s:
        recorded = store.record_batch(s, [Recording(o, raw, "test:batch")
                                          for o, raw in zip(outcomes, raws, strict=True)])
        s.commit()
        other, last = recorded[0][0].id, recorded[-1][0].id
    assert [o.decision.action.value for o in outcomes] == ["human"] + ["draft"] * (resets + 1)
    with store.session() as s:
        admin = s.scalar(select(Agent).where(Agent.login == "admin"))
        handle(s, settings, admin, s.get(Ticket, other), Event.TEMPLATE,
               {"template": "reset_password"})
        s.commit()
    history, at = store.history_of(raws[-1])
    assert history.drafts_before(address, at) == stored + resets
    again = triage_bytes(raws[-1], settings, history=history, at=at)
    with store.session() as s:
        ticket = s.get(Ticket, last)
        audit = s.scalar(select(AuditEvent.detail).where(
            AuditEvent.ticket_id == last, AuditEvent.event == "ticket.created"))
    assert again.decision.action.value == ticket.action == audit["action"] == "draft"
