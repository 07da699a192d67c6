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

from sqlalchemy.orm import Session

from triage.retry import process_gone, process_name
from triage.store import Store
from triage.store import leases as queries

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
            queries.beat(s, self.name, now)
            queries.ensure_rows(s, self.mailboxes)
            live = queries.live(s, now - self.lease)
            gone = [n for n in live if n != self.name and process_gone(n)]
            if gone:
                queries.forget(s, gone)
            share = math.ceil(len(self.mailboxes) / max(1, len(live) - len(gone)))
            mine = queries.renew(s, self.name, self.mailboxes, until)
            if len(mine) > share:
                extra, mine = mine[share:], mine[:share]
                queries.release(s, self.name, extra, now)
                for mailbox in extra:
                    log.info("lease released to share the mailboxes", extra={
                        "mailbox": mailbox, "event": "lease.released"})
            if len(mine) < share:
                mine += self._take(s, now, until, share - len(mine))
        self.held = {m: until for m in mine}
        return set(mine)

    def _take(self, s: Session, now: datetime, until: datetime, wanted: int) -> list[str]:
        free = [(m, o, e) for m, o, e in queries.leases(s, self.mailboxes)
                if o is None or (_utc(e) or now) <= now or (o != self.name and process_gone(o))]
        random.shuffle(free)  # instances starting together do not all go for the same one
        taken: list[str] = []
        for mailbox, owner, expires in free:
            if len(taken) >= wanted:
                break
            if queries.take(s, mailbox, owner, expires, self.name, now, until):
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
            owner, expires = queries.lease_of(s, mailbox)
        return owner == self.name and (_utc(expires) or datetime.min.replace(tzinfo=UTC)) \
            > datetime.now(UTC)

    def begin_work(self, mailbox: str) -> int:
        """Record that this instance starts a pass on ``mailbox``; returns the record's id."""
        with self.store.session() as s:
            return queries.begin_work(s, mailbox, self.name, datetime.now(UTC))

    def end_work(self, work_id: int, messages: int) -> None:
        """Close the record; a pass with nothing to do leaves no record."""
        with self.store.session() as s:
            queries.end_work(s, work_id, messages, datetime.now(UTC))

    def release_all(self) -> None:
        with self.store.session() as s:
            queries.release_all(s, self.name, datetime.now(UTC))
        self.held = {}

    def live_instances(self) -> int:
        with self.store.session() as s:
            return queries.count_live(s, datetime.now(UTC) - self.lease)


class SoleInstance:
    """The lease gate of a process alone on its store (unit tests, one-off tools): every
    mailbox is held, and no work record is written."""

    def confirm(self, mailbox: str) -> bool:
        return True

    def begin_work(self, mailbox: str) -> int:
        return 0

    def end_work(self, work_id: int, messages: int) -> None:
        return None
