"""The tables of the store (SQLAlchemy 2 declarative models).

A ticket is one message, whatever mailboxes it reached: its identity is the Message-ID plus a
digest of its content (trace headers excluded), unique in the database, so that two copies of
one message are one ticket and two different messages that reuse a Message-ID are two. Where a
ticket was seen (mailbox, UIDVALIDITY, UID) is recorded in ``ticket_sources``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """The one timestamp type: stored as UTC, always read back timezone-aware.

    PostgreSQL keeps the zone (``timestamptz``); SQLite keeps text without one, so values are
    converted to UTC on the way in and marked UTC on the way out. A naive value written by
    older code is taken as UTC, which is what every writer of this project means.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect
                             ) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON,
                                                     datetime: UtcDateTime}


_UNDECIDED = "parent_id IS NULL AND department IS NULL"


#: Ticket ids are 32-bit in every database the store supports: a larger number names no ticket
#: (and would make the database refuse the query rather than find nothing).
MAX_TICKET_ID = 2**31 - 1


class Ticket(Base):
    __tablename__ = "tickets"
    # The queue reads thread heads by department and state, newest or oldest first; the
    # sender-history port reads a requester's recent tickets (triage.store.queries).
    __table_args__ = (
        # The queue reads each (department, state) in time order, and counts by action from
        # the index alone; the same for admins (every department).
        Index("ix_tickets_queue", "department", "status", "created_at", "id",
              postgresql_where=text("parent_id IS NULL"), sqlite_where=text("parent_id IS NULL")),
        Index("ix_tickets_queue_counts", "department", "status", "action", "intent",
              postgresql_where=text("parent_id IS NULL"), sqlite_where=text("parent_id IS NULL")),
        Index("ix_tickets_heads", "status", "created_at", "id",
              postgresql_where=text("parent_id IS NULL"), sqlite_where=text("parent_id IS NULL")),
        Index("ix_tickets_heads_counts", "status", "action", "intent",
              postgresql_where=text("parent_id IS NULL"), sqlite_where=text("parent_id IS NULL")),
        # Undecided heads (no department, 5 % of mail, seen by the departments whose mailbox
        # received them): their own small indexes, or the planner wades through every
        # department's heads looking for the rare undecided ones.
        Index("ix_tickets_undecided", "status", "created_at", "id",
              postgresql_where=text(_UNDECIDED), sqlite_where=text(_UNDECIDED)),
        Index("ix_tickets_undecided_time", "created_at", "id",
              postgresql_where=text(_UNDECIDED), sqlite_where=text(_UNDECIDED)),
        # Every state ("tous"): a department's heads, and all heads, in time order.
        Index("ix_tickets_department_time", "department", "created_at", "id",
              postgresql_where=text("parent_id IS NULL"), sqlite_where=text("parent_id IS NULL")),
        Index("ix_tickets_time", "created_at", "id",
              postgresql_where=text("parent_id IS NULL"), sqlite_where=text("parent_id IS NULL")),
        Index("ix_tickets_requester", "requester", "received_at"),
        # The desk's search: by identifier, by address (requester above), by subject words
        # (PostgreSQL full text; SQLite scans with LIKE).
        Index("ix_tickets_identifier", "identifier"),
        Index("ix_tickets_subject_fts", text("to_tsvector('french', subject)"),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow,
                                                 onupdate=utcnow)
    origin: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(400), default="")
    # The From address alone, lower-cased: who may add to this ticket, who replies go to.
    requester: Mapped[str | None] = mapped_column(String(320))
    # When the message arrived (the daemon) or was dated (replayed archives): the moment the
    # per-sender daily limit is counted from.
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Written by triage.lifecycle only.
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    action: Mapped[str] = mapped_column(String(20), index=True)
    template: Mapped[str | None] = mapped_column(String(60))
    intent: Mapped[str] = mapped_column(String(40))
    department: Mapped[str | None] = mapped_column(String(3), index=True)
    nominative: Mapped[bool] = mapped_column(Boolean, default=False)
    identifier: Mapped[str | None] = mapped_column(String(100))
    authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Who said « Je m'en occupe », and when (triage.store.holds writes them).
    held_by: Mapped[str | None] = mapped_column(String(100))
    held_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    raw_size: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The attachment manifest triage.parse made at intake (triage.parse.manifest); the page
    #: and the download both read it. None for tickets recorded before it existed.
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)

    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"),
                                                  index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    # A ticket this message refers to (``[réf. Tn]``, In-Reply-To) but may not join: shown to
    # agents as « mentionne la demande Tn ».
    mentions_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))

    sources: Mapped[list[TicketSource]] = relationship(back_populates="ticket",
                                                       cascade="all, delete-orphan")
    drafts: Mapped[list[DraftRow]] = relationship(back_populates="ticket",
                                                  cascade="all, delete-orphan")


class TicketSource(Base):
    """Where a ticket's message was found: one row per mailbox copy."""

    __tablename__ = "ticket_sources"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    mailbox: Mapped[str] = mapped_column(String(320))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    folder: Mapped[str | None] = mapped_column(String(300))
    moved_to: Mapped[str | None] = mapped_column(String(300))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="sources")


class DraftRow(Base):
    __tablename__ = "drafts"
    __table_args__ = (Index("ix_drafts_to_addr", "to_addr"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    template: Mapped[str] = mapped_column(String(60))
    department: Mapped[str] = mapped_column(String(3))
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    # Written by triage.lifecycle only.
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow,
                                                 onupdate=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="drafts")


class AuditEvent(Base):
    """Who did what, when (UTC): the system's decisions and every agent action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"),
                                                  index=True)
    actor: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MailboxState(Base):
    """Per watched mailbox: the UIDVALIDITY known and the highest UID fully done."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(320), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    highest_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    tickets_created: Mapped[int] = mapped_column(Integer, default=0)


class Transfer(Base):
    """A copy of a ticket's message owed to another department's mailbox (``Triage/Transféré``).

    Written in the same transaction as the ticket; done by the target mailbox's worker, which
    first looks for the Message-ID in the folder so that a crash never leaves two copies.
    """

    __tablename__ = "transfers"
    __table_args__ = (UniqueConstraint("ticket_id", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(320), index=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Agent(Base):
    """A person who reviews drafts, for some departments, as agent or admin."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    role: Mapped[str] = mapped_column(String(20), default="agent")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped to end every session of the agent (disable, password change).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class LoginAttempt(Base):
    """Failed and successful logins, for rate limiting across processes."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(100))
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


_ONE_PER_DRAFT = "state IN ('approved', 'sending', 'committing', 'sent')"


class WebSession(Base):
    """A signed-in session of the web application: logout or an admin ends it for good.

    The cookie names the session; this row says whether it still stands. ``id`` is a digest of
    the cookie's session id, so the table alone cannot be replayed as cookies.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"),
                                          index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    client: Mapped[str] = mapped_column(String(100), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))


class OutboxItem(Base):
    """An approved reply on its way: approved -> sending -> committing -> sent, or failed.

    ``committing`` is written just before the final dot of the SMTP DATA: a crash after it
    means the relay may have accepted the message, so it is never sent again (RFC 1047).
    """

    __tablename__ = "outbox"
    # At most one reply per draft queued, on its way or sent: a second approve, from any
    # process, cannot queue another (the states of triage.lifecycle.ONE_PER_DRAFT).
    __table_args__ = (
        Index("uq_outbox_one_reply_per_draft", "draft_id", unique=True,
              postgresql_where=text(_ONE_PER_DRAFT), sqlite_where=text(_ONE_PER_DRAFT)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(3))
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    from_addr: Mapped[str] = mapped_column(String(320))
    to_addr: Mapped[str] = mapped_column(String(320))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Written by triage.lifecycle only.
    state: Mapped[str] = mapped_column(String(20), default="approved", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(100))
    approved_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    filed: Mapped[bool] = mapped_column(Boolean, default=False)  # Sent copy + original moved


class Elimination(Base):
    """The record of a purge: what was removed, how much, when, under which setting and
    which authorisation of the archive service (« visa d'élimination »). Never purged."""

    __tablename__ = "eliminations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    authorisation: Mapped[str | None] = mapped_column(String(300))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Instance(Base):
    """A running daemon, seen through its heartbeat (for sharing the mailboxes fairly)."""

    __tablename__ = "instances"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class MailboxLease(Base):
    """Who works a mailbox, until when. Taken and renewed by compare-and-set updates."""

    __tablename__ = "mailbox_leases"

    mailbox: Mapped[str] = mapped_column(String(320), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acquired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MailboxWork(Base):
    """One batch of work on a mailbox by one instance: the record that shows exclusivity."""

    __tablename__ = "mailbox_work"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(320), index=True)
    owner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: cut short
    messages: Mapped[int] = mapped_column(Integer, default=0)
