"""The outbox: approved replies, claimed by one sender at a time.

States (:class:`triage.lifecycle.OutboxState`, moved only by :mod:`triage.lifecycle`):
``approved`` (waiting, maybe after a retry) → ``sending`` (written before the SMTP
transaction) → ``committing`` (written just before the final dot of DATA) → ``sent``; or
``failed`` (the relay refused with 5xx: the ticket goes back to an agent), or ``cancelled``
(the agent marked the ticket handled before the sender started). A claim is a compare-and-set
on the row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two senders never take the same
reply; starting to send is a compare-and-set on the state, so a cancelled reply never starts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from triage import lifecycle, retry
from triage.config import Settings
from triage.lifecycle import Event, OutboxState
from triage.retry import process_gone
from triage.send.compose import compose, new_message_id
from triage.store import AuditEvent, DraftRow, OutboxItem, Ticket
from triage.store import outbox as stored

CLAIM_LEASE = timedelta(minutes=5)


def now() -> datetime:
    return datetime.now(UTC)


def compose_item(settings: Settings, ticket: Ticket, draft: DraftRow, actor: str
                 ) -> OutboxItem:
    """The reply to ``ticket`` from ``draft``, composed and checked, as an outbox item that
    :func:`triage.lifecycle.transition` queues when the approve is allowed."""
    department = settings.department(draft.department)
    if department is None:
        raise ValueError(f"unknown department {draft.department}")
    message_id = new_message_id(settings.message_id_domain)
    outgoing = compose(department=department, to=draft.to_addr, subject=draft.subject,
                       body=draft.body, ticket_id=ticket.id, in_reply_to=ticket.message_id,
                       references=ticket.references, message_id=message_id,
                       loop_token=settings.message_id_domain)
    return OutboxItem(ticket_id=ticket.id, draft_id=draft.id, department=department.code,
                      message_id=message_id, from_addr=outgoing.from_addr,
                      to_addr=outgoing.to_addr, raw=outgoing.raw, approved_by=actor,
                      next_attempt_at=now())


def _claimant_gone(claimed_by: str | None, claimed_at: datetime | None, t: datetime) -> bool:
    """True when nobody is working on a claimed item any more.

    The claim is free when its lease ran out, or at once when the claimant was a process of
    this machine that no longer exists (a restart after a crash need not wait for the lease).
    """
    if claimed_by is None or claimed_at is None:
        return True
    if claimed_at < t - CLAIM_LEASE:
        return True
    return process_gone(claimed_by)


def claim(s: Session, worker: str) -> OutboxItem | None:
    """Take the next reply due for sending, or one whose sender died mid-way."""
    t = now()
    for item in stored.due(s, t):
        if not _claimant_gone(item.claimed_by, item.claimed_at, t):
            continue  # another live sender has it in hand
        won = stored.claim(s, item, worker, t)
        s.commit()
        if won:
            s.refresh(item)
            return item
    s.commit()
    return None


_STEPS = {OutboxState.SENDING: Event.START, OutboxState.COMMITTING: Event.COMMIT}


def set_state(s: Session, item: OutboxItem, state: OutboxState, **values: object) -> bool:
    """``sending`` or ``committing``, committed at once; False (nothing written) when the
    item's state no longer allows it, e.g. cancelled since it was claimed: do not send."""
    moved = lifecycle.outbox_step(s, item, _STEPS[OutboxState(state)], **values)
    s.commit()
    return moved


def retry_later(s: Session, settings: Settings, item: OutboxItem, error: str) -> float:
    """A temporary failure (relay down, 4xx): back to ``approved`` with a later attempt time."""
    attempts = item.attempts + 1
    delay = retry.delay(attempts, settings.smtp.retry_max_backoff, base=2.0)
    if lifecycle.outbox_step(s, item, Event.RETRY, attempts=attempts,
                             next_attempt_at=now() + timedelta(seconds=delay),
                             last_error=error[:2000], claimed_by=None):
        s.add(AuditEvent(ticket_id=item.ticket_id, actor="triage", event="outbox.retry",
                         detail={"outbox": item.id, "error": error[:500],
                                 "retry_in": round(delay)}))
    s.commit()
    return delay


def refused(s: Session, item: OutboxItem, error: str) -> None:
    """A permanent refusal (5xx): not resent; the ticket goes back to an agent with the error."""
    if lifecycle.outbox_step(s, item, Event.REFUSED, last_error=error[:2000]):
        ticket = s.get(Ticket, item.ticket_id)
        if ticket is not None:
            ticket.error = f"envoi refusé par le relais : {error}"[:2000]
        s.add(AuditEvent(ticket_id=item.ticket_id, actor="triage", event="outbox.refused",
                         detail={"outbox": item.id, "error": error[:500]}))
    s.commit()


def delivered(s: Session, item: OutboxItem, how: str) -> None:
    """The relay has (or may have) the reply: sent, with its draft and ticket."""
    if lifecycle.outbox_step(s, item, Event.DELIVERED, sent_at=item.sent_at or now()):
        s.add(AuditEvent(ticket_id=item.ticket_id, actor="triage", event="outbox.sent",
                         detail={"outbox": item.id, "message_id": item.message_id,
                                 "how": how}))
    s.commit()
