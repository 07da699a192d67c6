"""The :class:`Store`: open (creating or checking the schema) and record outcomes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from triage.config import Settings
from triage.errors import StoreError
from triage.pipeline import Outcome
from triage.store.identity import content_digest, identity
from triage.store.models import (
    AuditEvent,
    DraftRow,
    MailboxState,
    OutboxItem,
    Ticket,
    TicketSource,
)

SYSTEM = "triage"
TICKET_REF = re.compile(r"\[réf\. T(\d+)\]")


@dataclass(frozen=True)
class Seen:
    """Where a message was found on an IMAP server."""

    mailbox: str
    uidvalidity: int
    uid: int
    folder: str | None = None


def make_engine(url: str) -> Engine:
    """An engine for ``url``: the SQLite file's folder created, its pragmas set."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers (web, status) never block the daemon
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    def __init__(self, engine: Engine, max_drafts_per_day: int = 3) -> None:
        self.engine = engine
        self.max_drafts_per_day = max_drafts_per_day
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings) -> Store:
        store = cls.from_url(settings.store_url)
        store.max_drafts_per_day = settings.max_drafts_per_sender_per_day
        return store

    @classmethod
    def from_url(cls, url: str, create: bool = True) -> Store:
        try:
            store = cls(make_engine(url))
            store._prepare(create)
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open the store at {_safe_url(url)}: {exc}") from exc
        return store

    def _prepare(self, create: bool) -> None:
        """Create the schema of an empty database; refuse one at another revision."""
        from triage.store import migrate

        migrate.check(self.engine, create=create)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s

    # -- recording outcomes ----------------------------------------------------------------
    def record(self, outcome: Outcome, raw: bytes, *, origin: str, mailbox: str | None = None,
               seen: Seen | None = None) -> tuple[Ticket, bool]:
        """Store ``outcome`` as a ticket (with its draft and audit entry), once.

        Returns the ticket and whether it was created. A message already recorded (same
        Message-ID and content digest) is not recorded again: the new place it was seen is
        added to the existing ticket. Safe to call again after a crash.
        """
        with self.session() as s:
            ticket, created = self.record_in(s, outcome, raw, origin=origin, seen=seen)
            try:
                s.commit()
            except IntegrityError:
                # Another writer recorded the same message between our read and our write.
                s.rollback()
                ticket, created = self.record_in(s, outcome, raw, origin=origin, seen=seen)
                s.commit()
            return ticket, created

    def record_in(self, s: Session, outcome: Outcome, raw: bytes, *, origin: str,
                  seen: Seen | None = None) -> tuple[Ticket, bool]:
        """:meth:`record` inside the caller's transaction (the daemon batches many)."""
        message = outcome.message
        message_id = message.message_id if message else None
        digest = content_digest(raw)
        ident = identity(message_id, digest)
        ticket = s.scalar(select(Ticket).where(Ticket.identity == ident))
        created = ticket is None
        if ticket is None:
            d = outcome.decision
            ticket = Ticket(
                identity=ident, message_id=message_id, digest=digest, origin=origin[:300],
                subject=(message.subject if message else "")[:2000],
                sender=(str(message.from_addresses[0]) if message and message.from_addresses
                        else (message.from_header if message else ""))[:400],
                action=d.action.value, template=d.template, intent=d.intent,
                department=d.department, nominative=d.nominative, identifier=d.identifier,
                authenticated=d.authenticated, reasons=[str(r) for r in d.reasons],
                error=outcome.error, raw=raw, raw_size=len(raw),
                status="quarantined" if d.action.value == "quarantine" else "open",
            )
            if message is not None:
                ticket.in_reply_to = (message.header("In-Reply-To") or "")[:998] or None
                ticket.references = (message.header("References") or "")[:8000] or None
                parent = self._thread_parent(s, message.subject, ticket.in_reply_to,
                                             ticket.references)
                if parent is not None and d.action.value != "ignore":
                    ticket.parent_id = parent.id
                    parent.status = "open"
                    s.add(AuditEvent(ticket_id=parent.id, actor=SYSTEM, event="ticket.follow-up",
                                     detail={"message_id": message_id}))
            s.add(ticket)
            dr = outcome.draft
            if dr is not None and self._too_many_drafts(s, dr.to):
                # Loop protection: a sender (or a responder) that keeps writing gets an agent,
                # not yet another drafted reply.
                ticket.action, ticket.template = "human", None
                ticket.reasons = [*ticket.reasons,
                                  f"loop: déjà {self.max_drafts_per_day} brouillons préparés "
                                  f"pour {dr.to} depuis 24 h : à traiter par un agent"]
                dr = None
            if dr is not None:
                ticket.drafts.append(DraftRow(
                    template=dr.template, department=dr.department, to_addr=dr.to,
                    subject=dr.subject, body=dr.body, in_reply_to=dr.in_reply_to))
            s.flush()
            s.add(AuditEvent(ticket_id=ticket.id, actor=SYSTEM, event="ticket.created",
                             detail={"origin": origin[:300], "action": d.action.value,
                                     "template": d.template, "department": d.department}))
        if seen is not None:
            exists = s.scalar(select(TicketSource).where(
                TicketSource.mailbox == seen.mailbox,
                TicketSource.uidvalidity == seen.uidvalidity, TicketSource.uid == seen.uid))
            if exists is None:
                s.add(TicketSource(ticket_id=ticket.id, mailbox=seen.mailbox,
                                   uidvalidity=seen.uidvalidity, uid=seen.uid, folder=seen.folder))
                if not created:
                    s.add(AuditEvent(ticket_id=ticket.id, actor=SYSTEM, event="ticket.seen-again",
                                     detail={"mailbox": seen.mailbox, "uid": seen.uid}))
        s.flush()
        return ticket, created

    def _too_many_drafts(self, s: Session, address: str) -> bool:
        since = datetime.now(UTC) - timedelta(days=1)
        count = s.scalar(select(func.count(DraftRow.id)).where(
            DraftRow.to_addr == address, DraftRow.created_at >= since))
        return int(count or 0) >= self.max_drafts_per_day

    def _thread_parent(self, s: Session, subject: str, in_reply_to: str | None,
                       references: str | None) -> Ticket | None:
        """The ticket a follow-up belongs to: by our reply's Message-ID, the original's, or
        the ticket reference we put in the subject of our replies."""
        ids = re.findall(r"<([^<>\s]+)>", f"{in_reply_to or ''} {references or ''}")
        for mid in reversed(ids):
            item = s.scalar(select(OutboxItem).where(OutboxItem.message_id == mid))
            if item is not None:
                return _root(s, s.get(Ticket, item.ticket_id))
            ticket = s.scalar(select(Ticket).where(Ticket.message_id == mid).limit(1))
            if ticket is not None:
                return _root(s, ticket)
        match = TICKET_REF.search(subject or "")
        if match:
            return _root(s, s.get(Ticket, int(match.group(1))))
        return None

    # -- queries ---------------------------------------------------------------------------
    def source_of(self, s: Session, mailbox: str, uidvalidity: int, uid: int
                  ) -> TicketSource | None:
        return s.scalar(select(TicketSource).where(
            TicketSource.mailbox == mailbox, TicketSource.uidvalidity == uidvalidity,
            TicketSource.uid == uid))

    def mailbox_state(self, s: Session, mailbox: str) -> MailboxState:
        state = s.get(MailboxState, mailbox)
        if state is None:
            state = MailboxState(mailbox=mailbox, highest_uid=0, tickets_created=0)
            s.add(state)
            s.flush()
        return state

    def count_tickets(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count(Ticket.id))) or 0)

    def audit(self, s: Session, event_name: str, detail: dict[str, Any], *,
              ticket_id: int | None = None, actor: str = SYSTEM) -> None:
        s.add(AuditEvent(ticket_id=ticket_id, actor=actor, event=event_name, detail=detail))

    def dispose(self) -> None:
        self.engine.dispose()


def _root(s: Session, ticket: Ticket | None) -> Ticket | None:
    while ticket is not None and ticket.parent_id is not None:
        ticket = s.get(Ticket, ticket.parent_id)
    return ticket


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


__all__ = ["Seen", "Store"]
