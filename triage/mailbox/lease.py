"""Mailbox leases: several daemons share the mailboxes, each worked by one at a time.

Every instance writes a heartbeat; the live instances split the mailboxes between them (each
takes up to its fair share, ``ceil(mailboxes / instances)``). A lease is a row with an owner
and an expiry, taken and renewed by compare-and-set updates, so the database decides who wins
on SQLite and PostgreSQL alike. An instance that dies stops renewing: its leases expire after
``imap.lease_seconds`` and the others take its mailboxes over. A dead process of this very
machine is recognised at once (its pid is gone), so a restart after a crash need not wait.
Workers confirm their lease before each batch, and every batch is recorded with its owner.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from triage.retry import process_gone, process_name
from triage.store import Instance, MailboxLease, MailboxWork, Store

log = logging.getLogger("triage.lease")


def instance_name() -> str:
    return f"{process_name()}:{secrets.token_hex(3)}"


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class LeaseKeeper:
    def __init__(self, store: Store, mailboxes: list[str], lease_seconds: float,
                 name: str | None = None) -> None:
        self.store = store
        self.mailboxes = sorted(mailboxes)
        self.lease = timedelta(seconds=lease_seconds)
        self.name = name or instance_name()
        self.held: dict[str, datetime] = {}  # mailbox -> local expiry

    # -- the heartbeat job -----------------------------------------------------------------
    def heartbeat(self) -> set[str]:
        """Renew, release or take leases; returns the mailboxes held now."""
        now = datetime.now(UTC)
        until = now + self.lease
        with self.store.session() as s:
            inst = s.get(Instance, self.name)
            if inst is None:
                s.add(Instance(name=self.name, started_at=now, heartbeat_at=now))
            else:
                inst.heartbeat_at = now
            s.commit()
            self._ensure_rows(s)
            live = [i.name for i in s.scalars(select(Instance).where(
                Instance.heartbeat_at >= now - self.lease))]
            gone = [n for n in live if n != self.name and process_gone(n)]
            if gone:
                s.execute(delete(Instance).where(Instance.name.in_(gone)))
                s.commit()
            share = math.ceil(len(self.mailboxes) / max(1, len(live) - len(gone)))
            s.execute(update(MailboxLease).where(
                MailboxLease.owner == self.name, MailboxLease.mailbox.in_(self.mailboxes))
                .values(expires_at=until))
            s.commit()
            mine = sorted(s.scalars(select(MailboxLease.mailbox).where(
                MailboxLease.owner == self.name, MailboxLease.mailbox.in_(self.mailboxes))))
            while len(mine) > share:
                extra = mine.pop()
                s.execute(update(MailboxLease).where(
                    MailboxLease.mailbox == extra, MailboxLease.owner == self.name)
                    .values(owner=None, expires_at=now))
                log.info("lease released to share the mailboxes", extra={
                    "mailbox": extra, "event": "lease.released"})
            s.commit()
            if len(mine) < share:
                mine += self._take(s, now, until, share - len(mine))
        self.held = {m: until for m in mine}
        return set(mine)

    def _ensure_rows(self, s: object) -> None:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        known = set(s.scalars(select(MailboxLease.mailbox).where(
            MailboxLease.mailbox.in_(self.mailboxes))))
        for mailbox in self.mailboxes:
            if mailbox not in known:
                try:
                    s.add(MailboxLease(mailbox=mailbox))
                    s.commit()
                except IntegrityError:  # another instance created it first
                    s.rollback()

    def _take(self, s: object, now: datetime, until: datetime, wanted: int) -> list[str]:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        rows = list(s.execute(select(MailboxLease.mailbox, MailboxLease.owner,
                                     MailboxLease.expires_at)
                              .where(MailboxLease.mailbox.in_(self.mailboxes))))
        free = [(m, o, e) for m, o, e in rows if o is None or (_utc(e) or now) <= now
                or (o != self.name and process_gone(o))]
        random.shuffle(free)  # instances starting together do not all go for the same one
        taken: list[str] = []
        for mailbox, owner, expires in free:
            if len(taken) >= wanted:
                break
            won = s.execute(update(MailboxLease).where(
                MailboxLease.mailbox == mailbox,
                MailboxLease.owner.is_(None) if owner is None else MailboxLease.owner == owner,
                or_(MailboxLease.expires_at.is_(None), MailboxLease.expires_at == expires),
            ).values(owner=self.name, expires_at=until, acquired_at=now)).rowcount  # type: ignore[attr-defined]
            s.commit()
            if won:
                taken.append(mailbox)
                log.info("lease taken%s", f" over from {owner}" if owner else "", extra={
                    "mailbox": mailbox, "event": "lease.taken"})
        return taken

    # -- checks for the workers ------------------------------------------------------------
    def holds(self, mailbox: str) -> bool:
        """Held, with enough time left to do a batch (a cheap local check)."""
        until = self.held.get(mailbox)
        return until is not None and until - datetime.now(UTC) > self.lease * 0.2

    def confirm(self, mailbox: str) -> bool:
        """Held according to the database, right now (checked before each batch)."""
        if not self.holds(mailbox):
            return False
        with self.store.session() as s:
            row = s.get(MailboxLease, mailbox)
            return bool(row and row.owner == self.name and (_utc(row.expires_at) or
                                                            datetime.min.replace(tzinfo=UTC))
                        > datetime.now(UTC))

    def begin_work(self, mailbox: str) -> int:
        """Record that this instance starts a pass on ``mailbox``; returns the record's id."""
        with self.store.session() as s:
            row = MailboxWork(mailbox=mailbox, owner=self.name, started_at=datetime.now(UTC),
                              messages=0)
            s.add(row)
            s.commit()
            return row.id

    def end_work(self, work_id: int, messages: int) -> None:
        """Close the record; a pass with nothing to do leaves no record."""
        with self.store.session() as s:
            row = s.get(MailboxWork, work_id)
            if row is None:
                return
            if messages:
                row.ended_at, row.messages = datetime.now(UTC), messages
            else:
                s.delete(row)
            s.commit()

    def release_all(self) -> None:
        with self.store.session() as s:
            s.execute(update(MailboxLease).where(MailboxLease.owner == self.name)
                      .values(owner=None, expires_at=datetime.now(UTC)))
            s.execute(delete(Instance).where(Instance.name == self.name))
            s.commit()
        self.held = {}

    def live_instances(self) -> int:
        with self.store.session() as s:
            since = datetime.now(UTC) - self.lease
            return int(s.scalar(select(func.count(Instance.name)).where(
                Instance.heartbeat_at >= since)) or 0)


class SoleInstance:
    """The lease gate of a process alone on its store (unit tests, one-off tools): every
    mailbox is held, and no work record is written."""

    def confirm(self, mailbox: str) -> bool:
        return True

    def begin_work(self, mailbox: str) -> int:
        return 0

    def end_work(self, work_id: int, messages: int) -> None:
        return None
