"""The outbox: approved replies and their states, claimed by one sender at a time.

States: ``approved`` (waiting, maybe after a retry) → ``sending`` (written before the SMTP
transaction) → ``committing`` (written just before the final dot of DATA) → ``sent``; or
``failed`` (the relay refused with 5xx: the ticket goes back to an agent). A claim is a
compare-and-set on the row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two senders never
take the same reply.
"""

from __future__ import annotations

import os
import random
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.send.compose import compose, new_message_id
from triage.store import AuditEvent, DraftRow, OutboxItem, Ticket

CLAIM_LEASE = timedelta(minutes=5)


def now() -> datetime:
    return datetime.now(UTC)


def enqueue(s: Session, settings: Settings, ticket: Ticket, draft: DraftRow, actor: str,
            body: str) -> OutboxItem:
    """Approve ``draft`` with ``body``: compose the reply and put it in the outbox."""
    department = settings.department(draft.department)
    if department is None:
        raise ValueError(f"unknown department {draft.department}")
    message_id = new_message_id(settings.message_id_domain)
    outgoing = compose(department=department, to=draft.to_addr, subject=draft.subject, body=body,
                       ticket_id=ticket.id, in_reply_to=ticket.message_id,
                       references=ticket.references, message_id=message_id,
                       loop_token=settings.message_id_domain)
    item = OutboxItem(ticket_id=ticket.id, draft_id=draft.id, department=department.code,
                      message_id=message_id, from_addr=outgoing.from_addr,
                      to_addr=outgoing.to_addr, raw=outgoing.raw, state="approved",
                      approved_by=actor, next_attempt_at=now())
    s.add(item)
    draft.status = "approved"
    draft.body = body
    ticket.status = "approved"
    s.flush()
    s.add(AuditEvent(ticket_id=ticket.id, actor=actor, event="outbox.queued",
                     detail={"outbox": item.id, "message_id": message_id, "to": item.to_addr}))
    return item


def _claimant_gone(claimed_by: str | None, claimed_at: datetime | None, t: datetime) -> bool:
    """True when nobody is working on a claimed item any more.

    The claim is free when its lease ran out, or at once when the claimant was a process of
    this machine that no longer exists (a restart after a crash need not wait for the lease).
    """
    if claimed_by is None or claimed_at is None:
        return True
    if claimed_at.tzinfo is None:
        claimed_at = claimed_at.replace(tzinfo=UTC)
    if claimed_at < t - CLAIM_LEASE:
        return True
    host, _sep, pid = claimed_by.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


def claim(s: Session, worker: str) -> OutboxItem | None:
    """Take the next reply due for sending, or one whose sender died mid-way."""
    t = now()
    due = or_(
        (OutboxItem.state == "approved") & (OutboxItem.next_attempt_at <= t),
        OutboxItem.state.in_(("sending", "committing")),
        (OutboxItem.state == "sent") & (OutboxItem.filed.is_(False)),
    )
    query = select(OutboxItem).where(due).order_by(OutboxItem.id).limit(50)
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for item in s.scalars(query):
        if not _claimant_gone(item.claimed_by, item.claimed_at, t):
            continue  # another live sender has it in hand
        # Compare-and-set on (state, claimant, claim time): one sender wins the row even
        # without row locks (SQLite), and a claim renewed meanwhile is not stolen.
        won = s.execute(update(OutboxItem).where(  # type: ignore[attr-defined]
            OutboxItem.id == item.id, OutboxItem.state == item.state,
            OutboxItem.claimed_by.is_(None) if item.claimed_by is None
            else OutboxItem.claimed_by == item.claimed_by,
            OutboxItem.claimed_at.is_(None) if item.claimed_at is None
            else OutboxItem.claimed_at == item.claimed_at,
        ).values(claimed_by=worker, claimed_at=t)).rowcount
        s.commit()
        if won:
            s.refresh(item)
            return item
    s.commit()
    return None


def set_state(s: Session, item: OutboxItem, state: str, **values: object) -> None:
    item.state = state
    for key, value in values.items():
        setattr(item, key, value)
    s.commit()


def retry_later(s: Session, settings: Settings, item: OutboxItem, error: str) -> float:
    """A temporary failure (relay down, 4xx): back to ``approved`` with a later attempt time."""
    item.attempts += 1
    delay = min(settings.smtp.retry_max_backoff, 2.0 ** item.attempts) * random.uniform(0.5, 1)
    item.state = "approved"
    item.next_attempt_at = now() + timedelta(seconds=delay)
    item.last_error = error[:2000]
    item.claimed_by = None
    s.add(AuditEvent(ticket_id=item.ticket_id, actor="triage", event="outbox.retry",
                     detail={"outbox": item.id, "error": error[:500], "retry_in": round(delay)}))
    s.commit()
    return delay


def refused(s: Session, item: OutboxItem, error: str) -> None:
    """A permanent refusal (5xx): not resent; the ticket goes back to an agent with the error."""
    item.state = "failed"
    item.last_error = error[:2000]
    ticket = s.get(Ticket, item.ticket_id)
    draft = s.get(DraftRow, item.draft_id)
    if ticket is not None:
        ticket.status = "open"
        ticket.error = f"envoi refusé par le relais : {error}"[:2000]
    if draft is not None:
        draft.status = "pending"
    s.add(AuditEvent(ticket_id=item.ticket_id, actor="triage", event="outbox.refused",
                     detail={"outbox": item.id, "error": error[:500]}))
    s.commit()


def delivered(s: Session, item: OutboxItem, how: str) -> None:
    item.state = "sent"
    item.sent_at = item.sent_at or now()
    ticket = s.get(Ticket, item.ticket_id)
    draft = s.get(DraftRow, item.draft_id)
    if ticket is not None:
        ticket.status = "sent"
    if draft is not None:
        draft.status = "sent"
    s.add(AuditEvent(ticket_id=item.ticket_id, actor="triage", event="outbox.sent",
                     detail={"outbox": item.id, "message_id": item.message_id, "how": how}))
    s.commit()
