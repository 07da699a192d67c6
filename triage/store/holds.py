"""Holds: an agent says « Je m'en occupe » on a thread's head; others see who and since when.

The one writer of ``tickets.held_by``/``held_at``. A hold is advisory (anyone may still act,
after a confirmation step on the page) and expires ``hold_minutes`` after it was taken or
last renewed by an action of its holder; an expired hold reads as no hold, nothing sweeps it.
Every take, release and reassignment of a hold writes an audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from triage.store.models import AuditEvent, Ticket


@dataclass(frozen=True)
class Hold:
    login: str
    since: datetime


def current(ticket: Ticket, minutes: int, now: datetime | None = None) -> Hold | None:
    """The live hold on ``ticket``, or None (none taken, or expired)."""
    return live(ticket.held_by, ticket.held_at, minutes, now)


def live(login: str | None, since: datetime | None, minutes: int,
         now: datetime | None = None) -> Hold | None:
    """The hold ``login`` took at ``since``, unless there is none or it has expired."""
    if not login or since is None:
        return None
    at = since if since.tzinfo else since.replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) - at > timedelta(minutes=minutes):
        return None
    return Hold(login, at)


def take(s: Session, ticket: Ticket, login: str, actor: str | None = None) -> str | None:
    """``login`` holds ``ticket`` from now (``actor`` when a lead gives it); returns the
    previous live holder's login, if any, for the audit and the page."""
    before = ticket.held_by
    ticket.held_by, ticket.held_at = login, datetime.now(UTC)
    s.add(AuditEvent(ticket_id=ticket.id, actor=actor or login, event="ticket.taken",
                     detail={"before": before, "after": login}))
    return before


def release(s: Session, ticket: Ticket, actor: str) -> None:
    before = ticket.held_by
    ticket.held_by, ticket.held_at = None, None
    s.add(AuditEvent(ticket_id=ticket.id, actor=actor, event="ticket.released-hold",
                     detail={"before": before}))


def renew(ticket: Ticket, login: str) -> None:
    """An action by the holder keeps the hold alive."""
    if ticket.held_by == login:
        ticket.held_at = datetime.now(UTC)
