"""Named queries of personal data's retention (:mod:`triage.retention` decides the periods):
what is past its period, erasing it, and everything held about one person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from triage.store.models import AuditEvent, DraftRow, OutboxItem, Ticket
from triage.store.queries import escape_like

#: What an erased field holds: the marker also tells a purge what is done already.
ERASED = "(effacé)"


@dataclass(frozen=True)
class Cutoffs:
    """Records older than these are past their period."""

    raw_messages: datetime
    drafts: datetime  # drafts and outgoing copies
    audit: datetime


def past_period(s: Session, cut: Cutoffs) -> dict[str, int]:
    """How many records of each kind are past their period and not erased yet."""
    return {
        "raw_messages": int(s.scalar(select(func.count(Ticket.id)).where(
            Ticket.created_at < cut.raw_messages, Ticket.sender != ERASED)) or 0),
        "drafts": int(s.scalar(select(func.count(DraftRow.id)).where(
            DraftRow.created_at < cut.drafts, DraftRow.to_addr != ERASED)) or 0),
        "outgoing": int(s.scalar(select(func.count(OutboxItem.id)).where(
            OutboxItem.approved_at < cut.drafts, OutboxItem.to_addr != ERASED)) or 0),
        "audit": int(s.scalar(select(func.count(AuditEvent.id)).where(
            AuditEvent.at < cut.audit)) or 0),
    }


def erase_past_period(s: Session, cut: Cutoffs) -> None:
    """Erase the raw messages and senders' details, drafts and outgoing copies past their
    period, delete the audit entries past theirs; the caller commits."""
    s.execute(update(Ticket).where(Ticket.created_at < cut.raw_messages,
                                   Ticket.sender != ERASED)
              .values(raw=b"", subject=ERASED, sender=ERASED, requester=None, identifier=None,
                      reasons=[], references=None, in_reply_to=None, attachments=[]))
    s.execute(update(DraftRow).where(DraftRow.created_at < cut.drafts,
                                     DraftRow.to_addr != ERASED)
              .values(body=ERASED, to_addr=ERASED, subject=ERASED))
    s.execute(update(OutboxItem).where(OutboxItem.approved_at < cut.drafts,
                                       OutboxItem.to_addr != ERASED)
              .values(raw=b"", to_addr=ERASED))
    s.execute(delete(AuditEvent).where(AuditEvent.at < cut.audit))


@dataclass(frozen=True)
class PersonRecords:
    tickets: list[Ticket]
    drafts: list[DraftRow]
    outgoing: list[OutboxItem]
    audit: list[AuditEvent]


def person_records(s: Session, address: str) -> PersonRecords:
    """Everything held about ``address`` (lower case): the tickets it sent, their drafts,
    replies and audit entries, and the drafts and replies addressed to it."""
    # The requester column holds the address whole; the sender column (display name and
    # address, cut at 400 characters) finds the tickets stored before it existed. The address
    # is a literal there: a ``%`` or ``_`` in it (both valid in an address) matches only
    # itself, not any text (someone else's tickets).
    tickets = list(s.scalars(select(Ticket).where(or_(
        Ticket.requester == address,
        func.lower(Ticket.sender).like(f"%<{escape_like(address)}>%", escape="\\"),
        func.lower(Ticket.sender) == address)).order_by(Ticket.id)))
    ids = [t.id for t in tickets]
    drafts = list(s.scalars(select(DraftRow).where(or_(DraftRow.ticket_id.in_(ids),
                                                       DraftRow.to_addr == address))))
    outgoing = list(s.scalars(select(OutboxItem).where(or_(OutboxItem.ticket_id.in_(ids),
                                                           OutboxItem.to_addr == address))))
    audit = list(s.scalars(select(AuditEvent).where(AuditEvent.ticket_id.in_(ids))
                           .order_by(AuditEvent.at)))
    return PersonRecords(tickets, drafts, outgoing, audit)
