"""The :class:`Store`: open (creating or checking the schema) and record outcomes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
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
_MESSAGE_IDS = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Recording:
    """One message for :meth:`Store.record_batch`: its outcome, bytes, origin and place."""

    outcome: Outcome
    raw: bytes
    origin: str
    seen: Seen | None = None


@dataclass(frozen=True)
class Seen:
    """Where a message was found on an IMAP server."""

    mailbox: str
    uidvalidity: int
    uid: int
    folder: str | None = None


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine for ``url``: the SQLite file's folder created, its pragmas set.

    With ``create=False`` a SQLite file that does not exist is an error instead of a new,
    empty store: readers such as ``replay --dry-run`` must write nothing at all.
    """
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not path.is_file():
            raise StoreError(f"no store at {path} (nothing has been recorded there yet)")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
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
    def open(cls, settings: Settings, create: bool = True) -> Store:
        """The configured store; ``create=False`` opens an existing one only, read as it is."""
        store = cls.from_url(settings.store_url, create)
        store.max_drafts_per_day = settings.max_drafts_per_sender_per_day
        return store

    @classmethod
    def from_url(cls, url: str, create: bool = True) -> Store:
        try:
            store = cls(make_engine(url, create))
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
        """:meth:`record` inside the caller's transaction."""
        return self.record_batch(s, [Recording(outcome, raw, origin, seen)])[0]

    def record_batch(self, s: Session, items: Sequence[Recording]
                     ) -> list[tuple[Ticket, bool]]:
        """:meth:`record_in` for many messages, in the caller's transaction (the daemon's batch).

        The result is the one of :meth:`record_in` called for each item in turn: a message
        found twice in the batch is one ticket, a follow-up finds a parent recorded earlier in
        the batch, the loop protection counts the batch's own drafts. The work is not: what
        the items need from the database is read in a few queries for the whole batch, and
        written in two flushes, instead of half a dozen statements per message.
        """
        if not items:
            return []
        since = datetime.now(UTC) - timedelta(days=1)
        keys = []
        for item in items:
            message_id = item.outcome.message.message_id if item.outcome.message else None
            digest = content_digest(item.raw)
            keys.append((message_id, digest, identity(message_id, digest)))
        with s.no_autoflush:  # what this batch adds is tracked here, not read back
            known = {t.identity: t for t in _in_chunks(
                s, lambda chunk: select(Ticket).where(Ticket.identity.in_(chunk)),
                {k[2] for k in keys})}
            sources = _known_sources(s, [i.seen for i in items if i.seen is not None])
            threads = _Threads(s, [_references(i.outcome) for i in items])
            drafts = _DraftCounts(s, {i.outcome.draft.to for i in items
                                      if i.outcome.draft is not None}, since)
            results: list[tuple[Ticket, bool]] = []
            events: list[tuple[Ticket, str, dict[str, Any]]] = []
            for item, (message_id, digest, ident) in zip(items, keys, strict=True):
                ticket = known.get(ident)
                created = ticket is None
                if ticket is None:
                    ticket = self._new_ticket(s, item, message_id, digest, ident, threads,
                                              drafts, events)
                    known[ident] = ticket
                seen = item.seen
                if seen is not None and (seen.mailbox, seen.uidvalidity, seen.uid) not in sources:
                    sources.add((seen.mailbox, seen.uidvalidity, seen.uid))
                    s.add(TicketSource(ticket=ticket, mailbox=seen.mailbox,
                                       uidvalidity=seen.uidvalidity, uid=seen.uid,
                                       folder=seen.folder))
                    if not created:
                        events.append((ticket, "ticket.seen-again",
                                       {"mailbox": seen.mailbox, "uid": seen.uid}))
                results.append((ticket, created))
            s.flush()  # the tickets get their ids
            for child, parent in threads.links:
                child.parent_id = parent.id
            s.add_all([AuditEvent(ticket_id=t.id, actor=SYSTEM, event=name, detail=detail)
                       for t, name, detail in events])
            s.flush()
        return results

    def _new_ticket(self, s: Session, item: Recording, message_id: str | None, digest: str,
                    ident: str, threads: _Threads, drafts: _DraftCounts,
                    events: list[tuple[Ticket, str, dict[str, Any]]]) -> Ticket:
        outcome, message, d = item.outcome, item.outcome.message, item.outcome.decision
        ticket = Ticket(
            identity=ident, message_id=message_id, digest=digest, origin=item.origin[:300],
            subject=(message.subject if message else "")[:2000],
            sender=(str(message.from_addresses[0]) if message and message.from_addresses
                    else (message.from_header if message else ""))[:400],
            action=d.action.value, template=d.template, intent=d.intent,
            department=d.department, nominative=d.nominative, identifier=d.identifier,
            authenticated=d.authenticated, reasons=[str(r) for r in d.reasons],
            error=outcome.error, raw=item.raw, raw_size=len(item.raw),
            status="quarantined" if d.action.value == "quarantine" else "open",
        )
        if message is not None:
            ticket.in_reply_to = (message.header("In-Reply-To") or "")[:998] or None
            ticket.references = (message.header("References") or "")[:8000] or None
            parent = threads.parent(message.subject, ticket.in_reply_to, ticket.references)
            if parent is not None and d.action.value != "ignore":
                threads.link(ticket, parent)
                parent.status = "open"
                events.append((parent, "ticket.follow-up", {"message_id": message_id}))
            threads.add(ticket)
        s.add(ticket)
        dr = outcome.draft
        if dr is not None and drafts.count(dr.to) >= self.max_drafts_per_day:
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
            drafts.added(dr.to)
        events.append((ticket, "ticket.created",
                       {"origin": item.origin[:300], "action": d.action.value,
                        "template": d.template, "department": d.department}))
        return ticket

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


_CHUNK = 500  # values per IN list: far below every database's limit on bound parameters


def _in_chunks(s: Session, query: Callable[[list[Any]], Any], values: Iterable[Any]
               ) -> list[Any]:
    """The rows of ``query(chunk)`` for ``values`` cut into chunks."""
    ordered = sorted(values)
    out: list[Any] = []
    for i in range(0, len(ordered), _CHUNK):
        out += s.scalars(query(ordered[i:i + _CHUNK])).all()
    return out


def _references(outcome: Outcome) -> list[str]:
    """The Message-IDs a message refers to (In-Reply-To, References)."""
    message = outcome.message
    if message is None:
        return []
    in_reply_to = (message.header("In-Reply-To") or "")[:998]
    references = (message.header("References") or "")[:8000]
    return _MESSAGE_IDS.findall(f"{in_reply_to} {references}")


def _known_sources(s: Session, seen: list[Seen]) -> set[tuple[str, int, int]]:
    """The (mailbox, UIDVALIDITY, UID) of ``seen`` already recorded."""
    places: dict[tuple[str, int], set[int]] = {}
    for where in seen:
        places.setdefault((where.mailbox, where.uidvalidity), set()).add(where.uid)
    out: set[tuple[str, int, int]] = set()
    for (mailbox, uidvalidity), uids in places.items():
        def query(chunk: list[Any], m: str = mailbox, v: int = uidvalidity) -> Any:
            return select(TicketSource.uid).where(
                TicketSource.mailbox == m, TicketSource.uidvalidity == v,
                TicketSource.uid.in_(chunk))
        out.update((mailbox, uidvalidity, int(uid)) for uid in _in_chunks(s, query, uids))
    return out


class _Threads:
    """Which ticket a follow-up belongs to, for a whole batch, in two queries.

    By our reply's Message-ID (the outbox), else by the Message-ID of a ticket (the oldest one,
    in the database or earlier in the batch), looked up from the last reference back, else by
    the ticket reference we put in the subject of our replies; always the thread's root.
    """

    def __init__(self, s: Session, references: list[list[str]]) -> None:
        self.s = s
        wanted = {mid for refs in references for mid in refs}
        self.outbox: dict[str, int] = {}
        self.tickets: dict[str, Ticket] = {}
        if wanted:
            for item in _in_chunks(s, lambda chunk: select(OutboxItem).where(
                    OutboxItem.message_id.in_(chunk)), wanted):
                self.outbox[item.message_id] = item.ticket_id
            found = _in_chunks(s, lambda chunk: select(Ticket).where(
                Ticket.message_id.in_(chunk)), wanted)
            for ticket in sorted(found, key=lambda t: t.id):
                self.tickets.setdefault(ticket.message_id or "", ticket)
        self.links: list[tuple[Ticket, Ticket]] = []  # (follow-up, root) to set after the flush
        self._linked: dict[int, Ticket] = {}

    def parent(self, subject: str, in_reply_to: str | None, references: str | None
               ) -> Ticket | None:
        ids = _MESSAGE_IDS.findall(f"{in_reply_to or ''} {references or ''}")
        for mid in reversed(ids):
            if mid in self.outbox:
                return self.root(self.s.get(Ticket, self.outbox[mid]))
            if mid in self.tickets:
                return self.root(self.tickets[mid])
        match = TICKET_REF.search(subject or "")
        if match:
            return self.root(self.s.get(Ticket, int(match.group(1))))
        return None

    def root(self, ticket: Ticket | None) -> Ticket | None:
        if ticket is not None and id(ticket) in self._linked:  # a follow-up of this batch
            return self._linked[id(ticket)]
        return _root(self.s, ticket)

    def link(self, child: Ticket, root: Ticket) -> None:
        if root.id is not None:
            child.parent_id = root.id
        else:  # a ticket of this batch: its id comes with the flush
            self.links.append((child, root))
        self._linked[id(child)] = root

    def add(self, ticket: Ticket) -> None:
        """A ticket of this batch, found by its Message-ID by the follow-ups after it."""
        if ticket.message_id:
            self.tickets.setdefault(ticket.message_id, ticket)


class _DraftCounts:
    """Drafts prepared for each address since ``since``: the database's and this batch's."""

    def __init__(self, s: Session, addresses: set[str], since: datetime) -> None:
        self.counts: dict[str, int] = {}
        ordered = sorted(addresses)
        for i in range(0, len(ordered), _CHUNK):
            self.counts.update((str(a), int(n)) for a, n in s.execute(
                select(DraftRow.to_addr, func.count(DraftRow.id))
                .where(DraftRow.to_addr.in_(ordered[i:i + _CHUNK]),
                       DraftRow.created_at >= since)
                .group_by(DraftRow.to_addr)))

    def count(self, address: str) -> int:
        return self.counts.get(address, 0)

    def added(self, address: str) -> None:
        self.counts[address] = self.count(address) + 1


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


__all__ = ["Recording", "Seen", "Store"]
