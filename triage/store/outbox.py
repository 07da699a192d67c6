"""Named queries of the outbox's senders (:mod:`triage.send.outbox`): which replies are due,
and the claim of one, a compare-and-set on its row. The states themselves move only through
:mod:`triage.lifecycle`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from triage import lifecycle  # a module reference: lifecycle imports the models too
from triage.store.models import OutboxItem


def due(s: Session, at: datetime, limit: int = 50) -> list[OutboxItem]:
    """The items a sender may have work on, oldest first: queued and due at ``at``, caught
    mid-way (their sender may have died), sent but not filed yet. On PostgreSQL the rows are
    locked, skipping those another sender's transaction holds."""
    state = lifecycle.OutboxState
    query = select(OutboxItem).where(or_(
        (OutboxItem.state == state.QUEUED) & (OutboxItem.next_attempt_at <= at),
        OutboxItem.state.in_((state.SENDING, state.COMMITTING)),
        (OutboxItem.state == state.SENT) & (OutboxItem.filed.is_(False)),
    )).order_by(OutboxItem.id).limit(limit)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(s.scalars(query))


def claim(s: Session, item: OutboxItem, worker: str, at: datetime) -> bool:
    """Claim ``item`` for ``worker`` unless its state or claim changed since it was read.

    A compare-and-set on (state, claimant, claim time): one sender wins the row even without
    row locks (SQLite), and a claim renewed meanwhile is not stolen.
    """
    won = s.execute(update(OutboxItem).where(  # type: ignore[attr-defined]
        OutboxItem.id == item.id, OutboxItem.state == item.state,
        OutboxItem.claimed_by.is_(None) if item.claimed_by is None
        else OutboxItem.claimed_by == item.claimed_by,
        OutboxItem.claimed_at.is_(None) if item.claimed_at is None
        else OutboxItem.claimed_at == item.claimed_at,
    ).values(claimed_by=worker, claimed_at=at)).rowcount
    return bool(won)
