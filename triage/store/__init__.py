"""The ticket store: tickets, where they were seen, drafts, the audit trail, mailbox state.

SQLAlchemy 2 over SQLite by default (a file under the data directory, nothing to install) or
PostgreSQL for several instances. Writing an outcome is the one place where triage acts on the
database; it is idempotent on the message's identity.
"""

from triage.store.identity import content_digest, identity
from triage.store.models import (
    Agent,
    AuditEvent,
    DraftRow,
    Elimination,
    Instance,
    LoginAttempt,
    MailboxLease,
    MailboxState,
    MailboxWork,
    OutboxItem,
    Ticket,
    TicketSource,
    Transfer,
    WebSession,
)
from triage.store.store import Store

__all__ = ["Agent", "AuditEvent", "DraftRow", "Elimination", "Instance", "LoginAttempt",
           "MailboxLease", "MailboxState", "MailboxWork",
           "OutboxItem", "Store", "Ticket", "TicketSource", "Transfer", "WebSession",
           "content_digest", "identity"]
