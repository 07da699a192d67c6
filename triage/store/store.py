"""The :class:`Store`: open (creating or checking the schema) and record outcomes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from triage import lifecycle  # a module reference: lifecycle imports the models too
from triage.config import Settings
from triage.errors import StoreError
from triage.pipeline import Outcome
from triage.store.identity import content_digest, identity
from triage.store.models import (
    AuditEvent,
    DraftRow,
    MailboxState,
    Ticket,
    TicketSource,
    utcnow,
)
from triage.store.queries import StoreHistory, find_ticket
from triage.store.threads import Threads, arrival, in_chunks, may_join, references

SYSTEM = "triage"


@dataclass(frozen=True)
class Recording:
    """One message for :meth:`Store.record_batch`: its outcome, bytes, origin and place."""

    outcome: Outcome
    raw: bytes
    origin: str
    seen: Seen | None = None
    mailbox: str | None = None  # where it arrived, when not ``seen`` (replay --mailbox)

    @property
    def place(self) -> str | None:
        return self.seen.mailbox if self.seen is not None else self.mailbox


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
    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        # The departments' mailboxes, for threading (a follow-up in the same department's
        # mailbox joins its ticket); without settings, only the mailboxes a ticket reached.
        self.settings = settings
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, create: bool = True) -> Store:
        """The configured store; ``create=False`` opens an existing one only, read as it is."""
        store = cls.from_url(settings.store_url, create)
        store.settings = settings
        return store

    def history(self, before: int | None = None) -> StoreHistory:
        """The sender-history port of the decision chain (see :class:`StoreHistory`)."""
        return StoreHistory(self.sessions, before)

    def history_of(self, raw: bytes) -> tuple[StoreHistory, datetime | None]:
        """The port for deciding ``raw`` again as it was decided: when the store holds the
        message, as of its arrival and with only the tickets before it; else (None) as of
        the caller's choice of time."""
        from triage.parse import parse_message

        message_id = parse_message(raw).message_id
        with self.session() as s:
            ticket = find_ticket(s, identity(message_id, content_digest(raw)), message_id)
            if ticket is None:
                return self.history(), None
            return self.history(before=ticket.id), ticket.received_at

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
        item = Recording(outcome, raw, origin, seen, mailbox)
        with self.session() as s:
            ticket, created = self.record_batch(s, [item])[0]
            try:
                s.commit()
            except IntegrityError:
                # Another writer recorded the same message between our read and our write.
                s.rollback()
                ticket, created = self.record_batch(s, [item])[0]
                s.commit()
            return ticket, created

    def record_in(self, s: Session, outcome: Outcome, raw: bytes, *, origin: str,
                  seen: Seen | None = None, mailbox: str | None = None) -> tuple[Ticket, bool]:
        """:meth:`record` inside the caller's transaction."""
        return self.record_batch(s, [Recording(outcome, raw, origin, seen, mailbox)])[0]

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
        # One recording time for the batch, on its tickets and the drafts decided with them:
        # deciding a message again counts the drafts recorded no later than its ticket
        # (StoreHistory), which are those the batch's port counted, and not a draft an agent
        # adds later to one of the batch's tickets.
        moment = utcnow()
        keys = []
        for item in items:
            message_id = item.outcome.message.message_id if item.outcome.message else None
            digest = content_digest(item.raw)
            keys.append((message_id, digest, identity(message_id, digest)))
        with s.no_autoflush:  # what this batch adds is tracked here, not read back
            known = {t.identity: t for t in in_chunks(
                s, lambda chunk: select(Ticket).where(Ticket.identity.in_(chunk)),
                {k[2] for k in keys})}
            sources = _known_sources(s, [i.seen for i in items if i.seen is not None])
            threads = Threads(s, [references(i.outcome) for i in items])
            results: list[tuple[Ticket, bool]] = []
            events: list[tuple[Ticket, str, dict[str, Any]]] = []
            for item, (message_id, digest, ident) in zip(items, keys, strict=True):
                ticket = known.get(ident)
                created = ticket is None
                if ticket is None:
                    ticket = self._new_ticket(s, item, message_id, digest, ident, threads,
                                              events, moment)
                    known[ident] = ticket
                threads.reached(ticket, item.place)
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
            threads.resolve()
            s.add_all([AuditEvent(ticket_id=t.id, actor=SYSTEM, event=name, detail=detail)
                       for t, name, detail in events])
            # Heads locked in id order: two batches reopening the same tickets cannot deadlock.
            for child, head in sorted(threads.links, key=lambda link: (link[1].id, link[0].id)):
                lifecycle.follow_up(s, head, SYSTEM, ticket=child.id,
                                    message_id=child.message_id)
            s.flush()
        return results

    def _new_ticket(self, s: Session, item: Recording, message_id: str | None, digest: str,
                    ident: str, threads: Threads,
                    events: list[tuple[Ticket, str, dict[str, Any]]], moment: datetime
                    ) -> Ticket:
        """A ticket holding the decision it is given: the chain decided, the store records."""
        outcome, message, d = item.outcome, item.outcome.message, item.outcome.decision
        sender = message.sender_address if message else None
        ticket = Ticket(
            identity=ident, message_id=message_id, digest=digest, origin=item.origin[:300],
            created_at=moment,
            subject=(message.subject if message else "")[:2000],
            sender=(str(message.from_addresses[0]) if message and message.from_addresses
                    else (message.from_header if message else ""))[:400],
            requester=sender.address[:320] if sender else None,
            received_at=outcome.received_at,
            action=d.action.value, template=d.template, intent=d.intent,
            department=d.department, nominative=d.nominative, identifier=d.identifier,
            authenticated=d.authenticated, reasons=[str(r) for r in d.reasons],
            error=outcome.error, raw=item.raw, raw_size=len(item.raw),
            attachments=[a.to_json() for a in message.attachments] if message else [],
            status=lifecycle.initial_state(d.action.value).value,
        )
        if message is not None:
            ticket.in_reply_to = (message.header("In-Reply-To") or "")[:998] or None
            ticket.references = (message.header("References") or "")[:8000] or None
            head = threads.referred(message.subject, ticket.in_reply_to, ticket.references)
            if head is not None and d.action.value != "ignore":
                if may_join(head.requester, self._places(threads, head),
                            arrival(outcome, item.place)):
                    threads.link(ticket, head)
                else:
                    threads.mention(ticket, head)
            threads.add(ticket)
        s.add(ticket)
        dr = outcome.draft
        if dr is not None:
            ticket.drafts.append(DraftRow(
                template=dr.template, department=dr.department, to_addr=dr.to,
                subject=dr.subject, body=dr.body, in_reply_to=dr.in_reply_to,
                created_at=moment))
        events.append((ticket, "ticket.created",
                       {"origin": item.origin[:300], "action": d.action.value,
                        "template": d.template, "department": d.department,
                        "link": d.link}))
        return ticket

    def _places(self, threads: Threads, head: Ticket) -> set[str]:
        """Where a follow-up of ``head`` may arrive: the mailboxes it reached, and its
        department's."""
        places = set(threads.places(head))
        department = (self.settings.department(head.department)
                      if self.settings is not None and head.department else None)
        if department is not None:
            places.add(department.mailbox)
        return places

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
        out.update((mailbox, uidvalidity, int(uid)) for uid in in_chunks(s, query, uids))
    return out


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


__all__ = ["Recording", "Seen", "Store"]
