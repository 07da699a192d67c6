"""Named queries of the service's figures: the dashboard of admins and team leads
(:mod:`triage.review.dashboard`) and the Prometheus metrics and readiness
(:mod:`triage.metrics`). Every time they return is timezone-aware (:class:`UtcDateTime`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from triage import lifecycle  # a module reference: lifecycle imports the models too
from triage.store.models import AuditEvent, DraftRow, MailboxState, OutboxItem, Ticket

#: The audit events of a sending attempt that failed, by the kind of failure.
FAILURE_EVENTS = {"outbox.retry": "temporary", "outbox.refused": "permanent"}


# -- the dashboard (a window of days) ----------------------------------------------------------
def tickets_since(s: Session, since: datetime) -> list[tuple[str | None, str | None, datetime]]:
    """(department, intent, created) of every ticket created since ``since``."""
    return [(dept, intent, created) for dept, intent, created in s.execute(
        select(Ticket.department, Ticket.intent, Ticket.created_at)
        .where(Ticket.created_at >= since))]


def drafts_since(s: Session, since: datetime) -> list[tuple[int, str, str]]:
    """(id, department, state) of every draft created since ``since``."""
    return [(int(i), dept, status) for i, dept, status in s.execute(
        select(DraftRow.id, DraftRow.department, DraftRow.status)
        .where(DraftRow.created_at >= since))]


def drafts_edited_since(s: Session, since: datetime, events: Iterable[str]) -> set[int]:
    """The drafts named by an audit entry of ``events`` (edits) since ``since``."""
    out: set[int] = set()
    for detail in s.scalars(select(AuditEvent.detail).where(
            AuditEvent.event.in_(list(events)), AuditEvent.at >= since)):
        if isinstance(detail, dict) and isinstance(detail.get("draft"), int):
            out.add(detail["draft"])
    return out


def replies_sent_since(s: Session, since: datetime) -> list[tuple[str, datetime, datetime]]:
    """(department, sent, ticket created) of every reply the relay accepted since ``since``."""
    return [(dept, sent, created) for dept, sent, created in s.execute(
        select(OutboxItem.department, OutboxItem.sent_at, Ticket.created_at)
        .join(Ticket, Ticket.id == OutboxItem.ticket_id)
        .where(OutboxItem.state == lifecycle.OutboxState.SENT, OutboxItem.sent_at >= since))
        if sent is not None]


@dataclass(frozen=True)
class WaitingDraft:
    ticket_id: int
    department: str
    subject: str | None
    created_at: datetime


def longest_waiting(s: Session, departments: Sequence[str], limit: int) -> list[WaitingDraft]:
    """The ``limit`` drafts of ``departments`` waiting for an agent the longest."""
    return [WaitingDraft(*row) for row in s.execute(
        select(DraftRow.ticket_id, DraftRow.department, Ticket.subject, DraftRow.created_at)
        .join(Ticket, Ticket.id == DraftRow.ticket_id)
        .where(DraftRow.status == lifecycle.DraftState.PENDING,
               DraftRow.department.in_(list(departments)))
        .order_by(DraftRow.created_at, DraftRow.id).limit(limit))]


# -- the metrics (the whole store, at each scrape) ---------------------------------------------
def ticket_counts(s: Session) -> list[tuple[str | None, str, str | None, int]]:
    """(department, action, intent, tickets) over the whole store."""
    return [(dept, action, intent, int(n)) for dept, action, intent, n in s.execute(
        select(Ticket.department, Ticket.action, Ticket.intent, func.count(Ticket.id))
        .group_by(Ticket.department, Ticket.action, Ticket.intent))]


def drafts_waiting(s: Session) -> dict[str, tuple[int, datetime]]:
    """Per department: how many drafts wait for an agent, and since when the oldest."""
    return {dept: (int(n), first) for dept, n, first in s.execute(
        select(DraftRow.department, func.count(DraftRow.id), func.min(DraftRow.created_at))
        .where(DraftRow.status == lifecycle.DraftState.PENDING)
        .group_by(DraftRow.department))}


def replies_sent(s: Session) -> dict[str, int]:
    """Per department: the replies the relay accepted."""
    return {dept: int(n) for dept, n in s.execute(
        select(OutboxItem.department, func.count(OutboxItem.id))
        .where(OutboxItem.state == lifecycle.OutboxState.SENT)
        .group_by(OutboxItem.department))}


def send_failures(s: Session) -> list[tuple[str | None, str, int]]:
    """(department, ``temporary`` or ``permanent``, failed attempts), from the audit trail."""
    return [(dept, FAILURE_EVENTS[event], int(n)) for dept, event, n in s.execute(
        select(Ticket.department, AuditEvent.event, func.count(AuditEvent.id))
        .join(Ticket, Ticket.id == AuditEvent.ticket_id)
        .where(AuditEvent.event.in_(list(FAILURE_EVENTS)))
        .group_by(Ticket.department, AuditEvent.event))]


def mailbox_states(s: Session) -> dict[str, MailboxState]:
    """Every watched mailbox's state as the daemon records it, by address."""
    return {m.mailbox: m for m in s.scalars(select(MailboxState))}


def answers(s: Session) -> bool:
    """Whether the database answers a statement (readiness); raises what the driver raises."""
    return s.scalar(select(literal(1))) == 1
