"""The store's named queries: pages, commands and the decision chain's port call these, and
none of them builds SQL of its own.

The queue is filtered, counted, ordered and paged in the database, on thread heads, with the
partial indexes ``ix_tickets_queue`` (department, state, time) and ``ix_tickets_heads``
(state, time); a page of rows never loads a message's bytes and costs two queries whatever
the size of the store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Subquery,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, sessionmaker

from triage import lifecycle  # a module reference: lifecycle imports the models too
from triage.store.models import (
    Agent,
    AuditEvent,
    DraftRow,
    OutboxItem,
    Ticket,
    TicketSource,
    Transfer,
)

PER_PAGE = 50
DAY = timedelta(days=1)


# -- the queue ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """Whose queue: every ticket (``departments`` None, an admin) or some departments'.

    A ticket with no decided department belongs to the departments of the mailboxes that
    received it, so that someone can route it: ``mailboxes`` are those departments' ones.
    """

    departments: frozenset[str] | None
    mailboxes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class QueueQuery:
    scope: Scope
    action: str | None = None
    intent: str | None = None
    statuses: tuple[str, ...] | None = None  # None: what is left to do (lifecycle.TODO)
    oldest_first: bool = False
    page: int = 1
    per_page: int = PER_PAGE
    search: str = ""  # a ticket number, an address, an identifier or words of the subject
    before: datetime | None = None  # only requests received before this (the age filter)


@dataclass(frozen=True)
class QueueRow:
    id: int
    created_at: datetime
    department: str | None
    action: str
    intent: str
    sender: str
    subject: str
    status: str
    held_by: str | None = None
    held_at: datetime | None = None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    counts: dict[str, int] = field(default_factory=dict)  # by action, for the chosen states
    total: int = 0  # rows matching every filter, over all pages (at most COUNT_CAP + 1)
    page: int = 1
    pages: int = 1
    capped: bool = False  # more than COUNT_CAP rows: counts and pages are lower bounds


#: Counts stop at this many rows: past it the page says « plus de 10 000 » rather than scan
#: a department's whole history on every page load.
COUNT_CAP = 10_000


def _branches(q: QueueQuery, searched: ColumnElement[bool] | None = None
              ) -> list[list[ColumnElement[bool]]]:
    """The visible thread heads as disjoint sets of conditions, each with equalities only.

    Kept apart rather than joined with OR or IN, so that each set is read in time order from
    an index whose prefix it fixes (department or none, state) and a page stops after its
    rows: per state asked for, the department's tickets, and the undecided ones that reached
    one of the scope's mailboxes.
    """
    base: list[ColumnElement[bool]] = [Ticket.parent_id.is_(None)]
    if q.intent:
        base.append(Ticket.intent == q.intent)
    if q.statuses is None and q.action != "ignore":
        base.append(Ticket.action != "ignore")  # ignored mail is not work to do
    if q.before is not None:
        base.append(Ticket.created_at < q.before)
    if searched is not None:
        base.append(searched)
    statuses = lifecycle.TODO if q.statuses is None else q.statuses
    per_state = [[*base, Ticket.status == str(v)] for v in statuses] if statuses else [base]
    scope = q.scope
    if scope.departments is None:
        return per_state
    branches = [[*b, Ticket.department == code] for b in per_state
                for code in sorted(scope.departments)]
    if scope.mailboxes:
        # A probe per undecided head (an index lookup by ticket), not EXISTS: as a semi-join
        # the planner may hash every source of the mailbox (all its mail) to find a few.
        reached = (select(literal(1)).where(TicketSource.ticket_id == Ticket.id,
                                            TicketSource.mailbox.in_(sorted(scope.mailboxes)))
                   .limit(1).correlate(Ticket).scalar_subquery())
        branches += [[*b, Ticket.department.is_(None), reached.is_not(None)] for b in per_state]
    return branches


_NUMBER = re.compile(r"[#tT]?(\d{1,9})")
_IDENTIFIER = re.compile(r"[\w.-]+-xt", re.IGNORECASE)


def _searched(s: Session, term: str) -> ColumnElement[bool] | None:
    """The search as a condition of the queue's branches. Words of the subject are looked up
    first, alone, from the full-text index, up to COUNT_CAP + 1 tickets: within the queue's
    ordered branches the planner would rather walk the time index and test every row (seconds
    on a million tickets for a rare word); ids from an index lookup keep the page fast."""
    term = term.strip()
    if not term:
        return None
    postgres = s.get_bind().dialect.name == "postgresql"
    found = _matching(term, postgres)
    if _NUMBER.fullmatch(term) or "@" in term or _IDENTIFIER.fullmatch(term.lower()):
        return found  # an equality on an indexed column
    ids = list(s.scalars(select(Ticket.id).where(found, Ticket.parent_id.is_(None))
                         .limit(COUNT_CAP + 1)))
    return Ticket.id.in_(ids)


def _matching(term: str, postgres: bool) -> ColumnElement[bool]:
    """What the search box finds: ``#123``/``T123`` a ticket, an address its sender (the
    requester index), ``jdupont-xt`` an identifier (its index), else words of the subject
    (PostgreSQL full text in French, with its GIN index; a LIKE scan on SQLite)."""
    number = _NUMBER.fullmatch(term)
    if number:
        return Ticket.id == int(number.group(1))
    lowered = term.lower()[:320]
    if "@" in lowered:
        return Ticket.requester == lowered
    if _IDENTIFIER.fullmatch(lowered):
        return Ticket.identifier == lowered
    return _words(lowered[:200], postgres)


def escape_like(term: str) -> str:
    """``term`` as a literal in a LIKE pattern with ``escape="\\"``: its ``%`` and ``_``
    match only themselves."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _words(term: str, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        return func.to_tsvector(literal_column("'french'"), Ticket.subject).bool_op("@@")(
            func.plainto_tsquery(literal_column("'french'"), term))
    return and_(*[Ticket.subject.ilike(f"%{escape_like(w)}%", escape="\\")
                  for w in term.split()])


def _union(selects: Sequence[Any]) -> Subquery:
    """``UNION ALL`` of selects that each keep their own ORDER BY and LIMIT (each is wrapped
    in a subquery: SQLite refuses them on the members of a compound select)."""
    parts: list[Subquery] = [sel.subquery() for sel in selects]
    if len(parts) == 1:
        return parts[0]
    return union_all(*[select(*p.c) for p in parts]).subquery()


def queue(s: Session, q: QueueQuery) -> QueuePage:
    """One page of the queue, the counts by action and the number of matching rows.

    A few statements whatever the store's size: the counts (by action, per branch, stopping
    at :data:`COUNT_CAP` rows in all) and the page (each branch read in order up to the
    page's end from its index, merged, then the page's rows fetched by id). The message
    bytes are never read.
    """
    branches = _branches(q, _searched(s, q.search))
    counts: dict[str, int] = {}
    for branch in branches:  # a later branch only when the earlier ones left room
        room = COUNT_CAP + 1 - sum(counts.values())
        if room <= 0:
            break
        limited = select(Ticket.action.label("action")).where(*branch).limit(room).subquery()
        for action, n in s.execute(select(limited.c.action, func.count())
                                   .group_by(limited.c.action)):
            counts[str(action)] = counts.get(str(action), 0) + int(n)
    capped = sum(counts.values()) > COUNT_CAP
    total = counts.get(q.action, 0) if q.action else sum(counts.values())
    if q.action:
        branches = [[*b, Ticket.action == q.action] for b in branches]
    # Pages stop with the counts: past COUNT_CAP rows, narrow the filters.
    pages = max(1, -(-min(total, COUNT_CAP) // q.per_page))
    page = min(max(1, q.page), pages)
    end = page * q.per_page
    if q.oldest_first:
        def order(c: Any) -> tuple[Any, Any]:
            return c.created_at.asc(), c.id.asc()
    else:
        def order(c: Any) -> tuple[Any, Any]:
            return c.created_at.desc(), c.id.desc()
    # The page's ids first, from the indexes alone (time and id are in them), then the 50
    # rows' columns: the rows skipped or sorted away are never read from the table.
    keys = _union([select(Ticket.id, Ticket.created_at).where(*b).order_by(*order(Ticket))
                   .limit(end) for b in branches])
    ids = select(keys.c.id).order_by(*order(keys.c)).limit(q.per_page).offset(
        end - q.per_page).subquery()
    rows = [QueueRow(**r._mapping) for r in s.execute(
        select(Ticket.id, Ticket.created_at, Ticket.department, Ticket.action, Ticket.intent,
               Ticket.sender, Ticket.subject, Ticket.status, Ticket.held_by, Ticket.held_at)
        .join(ids, ids.c.id == Ticket.id).order_by(*order(Ticket)))]
    return QueuePage(rows, counts, total, page, pages, capped)


def status_counts(s: Session) -> dict[str, int]:
    return {str(k): int(n) for k, n in s.execute(
        select(Ticket.status, func.count(Ticket.id)).group_by(Ticket.status))}


# -- one ticket ---------------------------------------------------------------------------
def head_of(s: Session, ticket: Ticket) -> Ticket:
    """The thread's head: actions on a follow-up act on its ticket."""
    while ticket.parent_id is not None:
        parent = s.get(Ticket, ticket.parent_id)
        if parent is None:
            break
        ticket = parent
    return ticket


def thread(s: Session, ticket: Ticket) -> list[Ticket]:
    """The ticket and its follow-ups, oldest first."""
    children = list(s.scalars(select(Ticket).where(Ticket.parent_id == ticket.id)
                              .order_by(Ticket.id)))
    return [ticket, *children]


def history(s: Session, ids: Sequence[int]) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).where(AuditEvent.ticket_id.in_(list(ids)))
                          .order_by(AuditEvent.at, AuditEvent.id)))


def outbox_of(s: Session, ids: Sequence[int]) -> list[OutboxItem]:
    return list(s.scalars(select(OutboxItem).where(OutboxItem.ticket_id.in_(list(ids)))
                          .order_by(OutboxItem.id)))


def mailboxes_of(s: Session, ticket_id: int) -> list[str]:
    return list(s.scalars(select(TicketSource.mailbox).where(
        TicketSource.ticket_id == ticket_id).distinct()))


@dataclass(frozen=True)
class EarlierRequest:
    id: int
    created_at: datetime
    subject: str
    status: str
    action: str
    identifier: str | None
    requester: str | None


def earlier_requests(s: Session, ticket: Ticket, limit: int = 20) -> list[EarlierRequest]:
    """The sender's other requests (same address or same identifier), newest first, with
    their state: how an agent spots a repeat or a pattern. Both lookups use an index."""
    same: list[ColumnElement[bool]] = []
    if ticket.requester:
        same.append(Ticket.requester == ticket.requester)
    if ticket.identifier:
        same.append(Ticket.identifier == ticket.identifier)
    if not same:
        return []
    return [EarlierRequest(*r) for r in s.execute(
        select(Ticket.id, Ticket.created_at, Ticket.subject, Ticket.status, Ticket.action,
               Ticket.identifier, Ticket.requester)
        .where(or_(*same), Ticket.id != ticket.id, Ticket.parent_id.is_(None))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit))]


def viewed_since(s: Session, ticket_id: int, actor: str, since: datetime) -> bool:
    """Whether ``actor``'s view of the ticket is already in the audit since ``since``."""
    return s.scalar(select(AuditEvent.id).where(
        AuditEvent.ticket_id == ticket_id, AuditEvent.actor == actor,
        AuditEvent.event == "ticket.viewed", AuditEvent.at >= since).limit(1)) is not None


def agents_of(s: Session, department: str | None) -> list[Agent]:
    """The enabled agents who work for ``department`` (a lead gives a hold to one of them)."""
    found = s.scalars(select(Agent).where(Agent.disabled.is_(False)).order_by(Agent.login))
    return [a for a in found if department is None or department in a.departments]


def has_transfer(s: Session, ticket_id: int, target: str) -> bool:
    return s.scalar(select(Transfer.id).where(Transfer.ticket_id == ticket_id,
                                              Transfer.target == target)) is not None


def find_ticket(s: Session, identity: str, message_id: str | None) -> Ticket | None:
    """The ticket of a message: by its identity, else the latest with its Message-ID."""
    found = s.scalar(select(Ticket).where(Ticket.identity == identity))
    if found is None and message_id:
        found = s.scalar(select(Ticket).where(Ticket.message_id == message_id)
                         .order_by(Ticket.id.desc()).limit(1))
    return found


def outbox_item(s: Session, message_id: str) -> OutboxItem | None:
    """The outbox item of the reply whose Message-ID is ``message_id``."""
    return s.scalar(select(OutboxItem).where(OutboxItem.message_id == message_id))


# -- the audit trail and past decisions -------------------------------------------------------
def audit_trail(s: Session, ticket: int | None = None, actor: str | None = None
                ) -> list[AuditEvent]:
    """The audit entries, oldest first: of a ticket and its follow-ups, of an actor, or all."""
    query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if ticket is not None:
        children = select(Ticket.id).where(Ticket.parent_id == ticket)
        query = query.where(or_(AuditEvent.ticket_id == ticket,
                                AuditEvent.ticket_id.in_(children)))
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    return list(s.scalars(query))


def created_since(s: Session, since: datetime) -> list[int]:
    """The tickets created since ``since``, oldest first."""
    return list(s.scalars(select(Ticket.id).where(Ticket.created_at >= since)
                          .order_by(Ticket.id)))


def first_mailbox(s: Session, ticket_id: int) -> str | None:
    """One mailbox the ticket reached (the first by name), the one to decide it again for."""
    return s.scalar(select(func.min(TicketSource.mailbox))
                    .where(TicketSource.ticket_id == ticket_id))


def decided_at_arrival(s: Session, ticket_id: int) -> dict[str, Any]:
    """The decision recorded when the ticket was created (its ``ticket.created`` audit entry's
    detail), before any agent's action; empty when the audit no longer holds it."""
    detail = s.scalar(select(AuditEvent.detail).where(
        AuditEvent.ticket_id == ticket_id, AuditEvent.event == "ticket.created")
        .order_by(AuditEvent.id).limit(1))
    return detail if isinstance(detail, dict) else {}


# -- the sender-history port of the decision chain --------------------------------------------
class StoreHistory:
    """:class:`triage.decision.SenderHistory` read from the store.

    Counts the drafts prepared for an address for the messages received in the 24 hours up to
    ``at``: all stored ones, or, with ``before`` (deciding again a message the store holds, as
    of its arrival), only those its decision counted: the drafts of older tickets recorded no
    later than its own ticket. A batch records its tickets and the drafts decided with them at
    one moment (:meth:`triage.store.Store.record_batch`), so that takes in the drafts of
    earlier batches and of the older tickets of its own batch, which the batch's port counted
    through :meth:`drafted`, and leaves out a draft an agent prepared later on an older
    ticket. Drafts decided in the current batch and not yet stored are added by
    :meth:`drafted`, so a batch decides as the same messages would one by one.
    """

    def __init__(self, sessions: sessionmaker[Session], before: int | None = None) -> None:
        self.sessions = sessions
        self.before = before
        # By address: a dry run over a whole archive shares one port, and a scan of every
        # draft of the run for each message would make it quadratic.
        self.batch: dict[str, list[datetime]] = {}

    def drafts_before(self, address: str, at: datetime) -> int:
        where = [DraftRow.to_addr == address, Ticket.received_at > at - DAY,
                 Ticket.received_at <= at]
        if self.before is not None:
            recorded = select(Ticket.created_at).where(Ticket.id == self.before)
            where += [Ticket.id < self.before,
                      DraftRow.created_at <= recorded.scalar_subquery()]
        with self.sessions() as s:
            stored = int(s.scalar(select(func.count(DraftRow.id))
                                  .join(Ticket, Ticket.id == DraftRow.ticket_id)
                                  .where(*where)) or 0)
        return stored + sum(1 for t in self.batch.get(address, ()) if at - DAY < t <= at)

    def drafted(self, address: str, at: datetime) -> None:
        self.batch.setdefault(address, []).append(at)
