"""Named queries of the intake (the mailbox worker and ``triage status``): where each message
of a mailbox was seen and where it went, the copies owed to other departments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from triage.store.models import AuditEvent, Ticket, TicketSource, Transfer


@dataclass(frozen=True)
class Sighting:
    uid: int
    action: str
    message_id: str | None
    moved_to: str | None = None


def sightings(s: Session, mailbox: str, uidvalidity: int, uids: Iterable[int]
              ) -> dict[int, Sighting]:
    """The UIDs of ``uids`` that already have a ticket, with its action and Message-ID."""
    wanted = sorted(set(uids))
    out: dict[int, Sighting] = {}
    for i in range(0, len(wanted), 500):
        for uid, action, message_id, moved_to in s.execute(
                select(TicketSource.uid, Ticket.action, Ticket.message_id, TicketSource.moved_to)
                .join(Ticket, TicketSource.ticket_id == Ticket.id)
                .where(TicketSource.mailbox == mailbox, TicketSource.uidvalidity == uidvalidity,
                       TicketSource.uid.in_(wanted[i:i + 500]))):
            out[int(uid)] = Sighting(int(uid), str(action), message_id, moved_to)
    return out


def not_moved(s: Session, mailbox: str, uidvalidity: int) -> list[Sighting]:
    """Messages seen in the watched folder whose move is not recorded (yet)."""
    return [Sighting(int(uid), str(action), message_id) for uid, action, message_id in s.execute(
        select(TicketSource.uid, Ticket.action, Ticket.message_id)
        .join(Ticket, TicketSource.ticket_id == Ticket.id)
        .where(TicketSource.mailbox == mailbox, TicketSource.uidvalidity == uidvalidity,
               TicketSource.moved_to.is_(None)))]


def record_moved(s: Session, mailbox: str, uidvalidity: int, folders: dict[int, str]) -> None:
    """Record where messages went (UID -> configured folder); the caller commits."""
    by_folder: dict[str, list[int]] = {}
    for uid, folder in folders.items():
        by_folder.setdefault(folder, []).append(uid)
    for folder, uids in by_folder.items():
        for i in range(0, len(uids), 500):
            s.execute(update(TicketSource).where(
                TicketSource.mailbox == mailbox, TicketSource.uidvalidity == uidvalidity,
                TicketSource.uid.in_(uids[i:i + 500])).values(moved_to=folder))


def owed_transfers(s: Session, target: str) -> list[tuple[Transfer, str | None]]:
    """The copies owed to ``target``'s Transféré folder, oldest first, with the Message-ID."""
    return [(transfer, message_id) for transfer, message_id in s.execute(
        select(Transfer, Ticket.message_id).join(Ticket, Ticket.id == Transfer.ticket_id)
        .where(Transfer.target == target, Transfer.done_at.is_(None)).order_by(Transfer.id))]


def owed_transfer_summary(s: Session, target: str) -> tuple[int, datetime | None]:
    """How many copies ``target`` is owed, and when the oldest one's ticket was created."""
    count, oldest = s.execute(
        select(func.count(Transfer.id), func.min(Ticket.created_at))
        .join(Ticket, Ticket.id == Transfer.ticket_id)
        .where(Transfer.target == target, Transfer.done_at.is_(None))).one()
    return int(count or 0), oldest  # aware: the aggregate keeps the column's type


def targets_owed(s: Session) -> set[str]:
    """The mailboxes that are owed at least one copy."""
    return set(s.scalars(select(Transfer.target).where(Transfer.done_at.is_(None)).distinct()))


def tickets_created(s: Session, mailbox: str) -> int:
    """Tickets created from this mailbox's mail (a message seen again elsewhere counts once)."""
    return int(s.scalar(select(func.count(Ticket.id)).where(
        Ticket.origin == f"imap:{mailbox}")) or 0)


def by_folder(s: Session, mailbox: str, uidvalidity: int | None) -> dict[str | None, int]:
    """Messages per folder as the store knows them: ``None`` is the watched folder (sightings
    of the current UIDVALIDITY not moved), else the configured outcome folder."""
    out: dict[str | None, int] = {}
    for moved_to, validity, n in s.execute(
            select(TicketSource.moved_to, TicketSource.uidvalidity, func.count(TicketSource.id))
            .where(TicketSource.mailbox == mailbox)
            .group_by(TicketSource.moved_to, TicketSource.uidvalidity)):
        if moved_to is None and validity != uidvalidity:
            continue  # seen under an older UIDVALIDITY: seen again under the new one
        out[moved_to] = out.get(moved_to, 0) + int(n)
    return out


def done_now(transfers: Iterable[Transfer]) -> None:
    """Mark copies made; the caller commits."""
    moment = datetime.now(UTC)
    for transfer in transfers:
        transfer.done_at = moment


def record_filed(s: Session, mailbox: str, ticket_id: int, source: str | None,
                 target: str) -> None:
    """The sender moved a ticket's message from ``source`` to ``target``; the caller commits.

    ``source`` None is the watched folder (a message answered before the worker moved it:
    its sighting has no ``moved_to`` yet).
    """
    where = [TicketSource.mailbox == mailbox, TicketSource.ticket_id == ticket_id,
             TicketSource.moved_to.is_(None) if source is None
             else TicketSource.moved_to == source]
    s.execute(update(TicketSource).where(*where).values(moved_to=target))


def transfers_done(s: Session, target: str) -> int:
    """Copies made into ``target``'s Transféré folder."""
    return int(s.scalar(select(func.count(Transfer.id)).where(
        Transfer.target == target, Transfer.done_at.is_not(None))) or 0)


IDLE_EVENT = "mailbox.idle"


def record_idle_verdict(s: Session, mailbox: str, verdict: str, detail: str) -> None:
    """The daemon's judgement of IDLE on a mailbox (``effective`` or ``ineffective``)."""
    s.add(AuditEvent(ticket_id=None, actor="triage", event=IDLE_EVENT,
                     detail={"mailbox": mailbox, "verdict": verdict, "why": detail}))


def idle_verdict(s: Session, mailbox: str) -> str | None:
    """The latest judgement of IDLE on ``mailbox``, if any."""
    for detail in s.scalars(select(AuditEvent.detail).where(AuditEvent.event == IDLE_EVENT)
                            .order_by(AuditEvent.id.desc()).limit(200)):
        if isinstance(detail, dict) and detail.get("mailbox") == mailbox:
            return str(detail.get("verdict"))
    return None
