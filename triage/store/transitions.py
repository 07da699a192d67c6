"""The statements :mod:`triage.lifecycle` runs, and only it: the row lock of a transition,
the rows of a thread a move reads, and the compare-and-set of an outbox item's state.

The lifecycle decides every move (which states, which event, what is allowed); these
functions only read and write what they are told, so the SQL lives in the store and the
decisions stay in one module. Nothing else calls them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, select, text, update
from sqlalchemy.orm import Session

from triage.store.models import AuditEvent, DraftRow, OutboxItem, Ticket


def lock_row(s: Session, ticket_id: int) -> None:
    """Lock the ticket's row for the rest of the transaction.

    PostgreSQL: ``SELECT … FOR UPDATE`` (a concurrent transition waits, then reads ours).
    SQLite: a write to the row takes the database's write lock, which serialises writers the
    same way; the statement changes nothing.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(Ticket.id).where(Ticket.id == ticket_id).with_for_update())
    else:
        s.execute(text("UPDATE tickets SET status = status WHERE id = :id"), {"id": ticket_id})


def follow_ups(s: Session, ticket_id: int) -> list[int]:
    """The follow-ups of a thread's head."""
    return list(s.scalars(select(Ticket.id).where(Ticket.parent_id == ticket_id)))


def audit_entries(s: Session, ticket_id: int, events: Sequence[str]) -> list[AuditEvent]:
    """The ticket's audit entries of ``events``, in the order they were written (by id)."""
    return list(s.scalars(select(AuditEvent).where(AuditEvent.ticket_id == ticket_id,
                                                   AuditEvent.event.in_(list(events)))
                          .order_by(AuditEvent.id)))


def drafts(s: Session, ticket_ids: Sequence[int], states: Sequence[str],
           but: int | None = None) -> list[DraftRow]:
    """The drafts of these tickets in one of ``states`` (but draft ``but``), oldest first."""
    where: list[ColumnElement[bool]] = [DraftRow.ticket_id.in_(list(ticket_ids)),
                                        DraftRow.status.in_(list(states))]
    if but is not None:
        where.append(DraftRow.id != but)
    return list(s.scalars(select(DraftRow).where(*where).order_by(DraftRow.id)))


def latest_draft(s: Session, ticket_ids: Sequence[int], state: str) -> DraftRow | None:
    """The newest draft of these tickets in ``state``."""
    return s.scalar(select(DraftRow).where(DraftRow.ticket_id.in_(list(ticket_ids)),
                                           DraftRow.status == state)
                    .order_by(DraftRow.id.desc()).limit(1))


def outbox_items(s: Session, ticket_id: int, states: Sequence[str]) -> list[OutboxItem]:
    """The ticket's outbox items in one of ``states``."""
    return list(s.scalars(select(OutboxItem).where(OutboxItem.ticket_id == ticket_id,
                                                   OutboxItem.state.in_(list(states)))))


def set_outbox_state(s: Session, item_id: int, before: str, after: str) -> bool:
    """Write ``after`` on the item only if its committed state is still ``before``: whether
    this writer won."""
    won = s.execute(update(OutboxItem).where(  # type: ignore[attr-defined]
        OutboxItem.id == item_id, OutboxItem.state == before)
        .values(state=after)).rowcount
    return bool(won)
