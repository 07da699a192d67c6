"""The queries of the mailbox leases (:mod:`triage.mailbox.lease`): instances' heartbeats,
leases taken, renewed and released by compare-and-set updates, and the record of each pass.

Every function works in the caller's session; the ones that change rows commit, since a lease
is worth only what the database has agreed to.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from triage.store.models import Instance, MailboxLease, MailboxWork

__all__ = ["beat", "begin_work", "count_live", "end_work", "ensure_rows", "forget", "held_by",
           "lease_of", "leases", "live", "release", "release_all", "renew", "take"]


def beat(s: Session, name: str, now: datetime) -> None:
    """The instance ``name`` is alive at ``now``."""
    inst = s.get(Instance, name)
    if inst is None:
        s.add(Instance(name=name, started_at=now, heartbeat_at=now))
    else:
        inst.heartbeat_at = now
    s.commit()


def live(s: Session, since: datetime) -> list[str]:
    """The instances that beat since ``since``."""
    return list(s.scalars(select(Instance.name).where(Instance.heartbeat_at >= since)))


def forget(s: Session, names: Iterable[str]) -> None:
    """Instances known to be gone: they no longer count in the share."""
    s.execute(delete(Instance).where(Instance.name.in_(list(names))))
    s.commit()


def ensure_rows(s: Session, mailboxes: list[str]) -> None:
    """A lease row for every mailbox (another instance may be creating them too)."""
    known = set(s.scalars(select(MailboxLease.mailbox).where(
        MailboxLease.mailbox.in_(mailboxes))))
    for mailbox in mailboxes:
        if mailbox not in known:
            try:
                s.add(MailboxLease(mailbox=mailbox))
                s.commit()
            except IntegrityError:  # another instance created it first
                s.rollback()


def renew(s: Session, owner: str, mailboxes: list[str], until: datetime) -> list[str]:
    """Extend ``owner``'s leases among ``mailboxes`` to ``until``; returns them, sorted."""
    s.execute(update(MailboxLease).where(
        MailboxLease.owner == owner, MailboxLease.mailbox.in_(mailboxes))
        .values(expires_at=until))
    s.commit()
    return held_by(s, owner, mailboxes)


def held_by(s: Session, owner: str, mailboxes: list[str]) -> list[str]:
    return sorted(s.scalars(select(MailboxLease.mailbox).where(
        MailboxLease.owner == owner, MailboxLease.mailbox.in_(mailboxes))))


def release(s: Session, owner: str, mailboxes: Iterable[str], now: datetime) -> None:
    """Give up ``owner``'s leases of ``mailboxes`` (free for anyone from ``now``)."""
    s.execute(update(MailboxLease).where(
        MailboxLease.mailbox.in_(list(mailboxes)), MailboxLease.owner == owner)
        .values(owner=None, expires_at=now))
    s.commit()


def release_all(s: Session, owner: str, now: datetime) -> None:
    """An instance that stops: its leases are free and it no longer counts."""
    s.execute(update(MailboxLease).where(MailboxLease.owner == owner)
              .values(owner=None, expires_at=now))
    s.execute(delete(Instance).where(Instance.name == owner))
    s.commit()


def leases(s: Session, mailboxes: list[str]) -> list[tuple[str, str | None, datetime | None]]:
    """(mailbox, owner, expiry) of each of ``mailboxes``."""
    return [(m, o, e) for m, o, e in s.execute(
        select(MailboxLease.mailbox, MailboxLease.owner, MailboxLease.expires_at)
        .where(MailboxLease.mailbox.in_(mailboxes)))]


def take(s: Session, mailbox: str, owner: str | None, expires: datetime | None, name: str,
         now: datetime, until: datetime) -> bool:
    """Take ``mailbox`` for ``name`` if its row is still as read (``owner``, ``expires``):
    the compare-and-set that lets the database decide between two instances."""
    won = s.execute(update(MailboxLease).where(
        MailboxLease.mailbox == mailbox,
        MailboxLease.owner.is_(None) if owner is None else MailboxLease.owner == owner,
        or_(MailboxLease.expires_at.is_(None), MailboxLease.expires_at == expires),
    ).values(owner=name, expires_at=until, acquired_at=now)).rowcount  # type: ignore[attr-defined]
    s.commit()
    return bool(won)


def lease_of(s: Session, mailbox: str) -> tuple[str | None, datetime | None]:
    """(owner, expiry) of a mailbox's lease; (None, None) without a row."""
    row = s.get(MailboxLease, mailbox)
    return (row.owner, row.expires_at) if row is not None else (None, None)


def begin_work(s: Session, mailbox: str, owner: str, now: datetime) -> int:
    row = MailboxWork(mailbox=mailbox, owner=owner, started_at=now, messages=0)
    s.add(row)
    s.commit()
    return row.id


def end_work(s: Session, work_id: int, messages: int, now: datetime) -> None:
    """Close the record of a pass; a pass with nothing to do leaves no record."""
    row = s.get(MailboxWork, work_id)
    if row is None:
        return
    if messages:
        row.ended_at, row.messages = now, messages
    else:
        s.delete(row)
    s.commit()


def count_live(s: Session, since: datetime) -> int:
    return int(s.scalar(select(func.count(Instance.name)).where(
        Instance.heartbeat_at >= since)) or 0)
