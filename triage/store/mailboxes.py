"""What the store knows of a watched mailbox, read for ``triage status``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from triage.store.models import MailboxState

__all__ = ["state_of"]


def state_of(s: Session, mailbox: str) -> MailboxState | None:
    """The mailbox's state row (last pass, last error), or None before its first pass."""
    return s.get(MailboxState, mailbox)
