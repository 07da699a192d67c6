"""The work on one mailbox: fetch → commit ticket, decision and draft → move to the outcome folder.

The order is what makes a crash harmless. A message is moved out of the watched folder only
after its ticket is committed; a restart finds it still there, sees its (mailbox, UIDVALIDITY,
UID) already recorded and only moves it. A ticket is unique on the message's identity
(Message-ID + content digest), so a message seen again (a second mailbox, a changed
UIDVALIDITY, another instance recording it at the same moment) adds a sighting to its ticket,
never a second ticket. Nothing is ever deleted.

A crash between a move and the commit that records it is repaired by the next pass
(:mod:`triage.mailbox.repair`). On a server without MOVE, a message copied and flagged before
a crash is not copied again (its target folder is searched first) and flagged originals are
expunged only when the store shows their copy.

The worker is composed: it is given a connection factory (a real IMAP connection, or the
in-memory double of the tests), a lease gate (the instance's leases, confirmed before each
pass, each pass recorded) and an observer (the process's metrics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from triage.config import Mailbox, Settings
from triage.errors import PeerError, Permanent, describe
from triage.mailbox import transfers
from triage.mailbox.fetch import Fetched, fetch_batch
from triage.mailbox.idle import IdleJudge
from triage.mailbox.protocol import ConnectionFactory, MailboxConnection, Selected
from triage.mailbox.repair import repair_moves
from triage.pipeline import Outcome, triage_bytes
from triage.retry import Backoff
from triage.store import Store, Ticket
from triage.store import intake as queries
from triage.store.store import Recording, Seen

log = logging.getLogger("triage.mailbox")

#: After a pass that found mail, look again after these pauses (seconds) before leaving it to
#: IDLE. Servers hold IDLE news back (Dovecot by 0.5 s, to group changes) and mail comes in
#: bursts: while it flows, a quick look finds the next message sooner. A quiet mailbox costs
#: these few extra passes once per burst.
FOLLOW_UP = (0.1, 0.1, 0.2, 0.4)
#: A scheduled poll that finds the watched folder as the last pass found it (same UIDVALIDITY
#: and UIDNEXT: nothing arrived since) does no pass, unless the last one is this old (seconds).
#: Measured with 100 mailboxes and a 5 s poll: full passes for nothing cost 9 % of a core;
#: a SELECT on the open connection costs a round trip and almost no CPU.
FULL_PASS_EVERY = 300.0
#: Such a poll still records that the mailbox was polled, at most this often (seconds): well
#: within ``triage.metrics.STALE_AFTER`` (120 s), after which ``/readyz`` fails.
RECORD_POLL_EVERY = 60.0
#: A refusal (login, folder) is retried this slowly (seconds): an admin may fix it meanwhile.
PERMANENT_BACKOFF = 300.0
#: Attempts at committing a batch that collides with another writer's ticket.
COMMIT_ATTEMPTS = 3


class LeaseGate(Protocol):
    """What a worker asks of the instance's leases (:class:`triage.mailbox.lease.LeaseKeeper`)."""

    def confirm(self, mailbox: str) -> bool: ...
    def begin_work(self, mailbox: str) -> int: ...
    def end_work(self, work_id: int, messages: int) -> None: ...


class PassObserver(Protocol):
    """Told about each pass (:class:`triage.metrics.IntakeMetrics`)."""

    def passed(self, mailbox: str, messages: int, seconds: float) -> None: ...
    def failed(self, mailbox: str, error: PeerError) -> None: ...


class Unobserved:
    """An observer that keeps nothing."""

    def passed(self, mailbox: str, messages: int, seconds: float) -> None:
        return None

    def failed(self, mailbox: str, error: PeerError) -> None:
        return None


@dataclass(frozen=True)
class Batch:
    done: dict[int, queries.Sighting]  # UIDs that have a ticket already
    fetched: list[Fetched]


@dataclass
class Committed:
    """Messages whose tickets are committed, to move: UID -> action; ``earlier``: those that
    had their ticket before this pass (a copy may exist already: UID -> Message-ID)."""

    targets: dict[int, str] = field(default_factory=dict)
    earlier: dict[int, str | None] = field(default_factory=dict)


@dataclass
class Counts:
    seen: int = 0
    created: int = 0
    moved: int = 0
    matched: int = 0  # messages found to have a ticket already (by identity)
    transferred: int = 0
    repaired: int = 0  # moves found done on the server but not recorded (a crash)
    skipped: bool = False  # the lease was not confirmed: nothing done
    by_folder: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class MailboxWorker:
    def __init__(self, settings: Callable[[], Settings], box: Mailbox, store: Store,
                 connection_factory: ConnectionFactory, leases: LeaseGate,
                 observer: PassObserver | None = None,
                 stopping: threading.Event | None = None) -> None:
        self.settings = settings
        self.box = box
        self.store = store
        self.connect = connection_factory
        self.leases = leases
        self.observer: PassObserver = observer or Unobserved()
        self.stopping = stopping or threading.Event()
        self.conn: MailboxConnection | None = None
        self.lock = threading.Lock()
        self.dirty = threading.Event()
        self.backoff = Backoff(settings().imap.max_backoff)
        self.state = "disconnected"
        self.last_error: str | None = None
        self.idle_news = threading.Event()  # set by the IDLE watcher's wake-ups
        self.idle = IdleJudge(store, box.address)
        # (UIDVALIDITY, UIDNEXT) of the watched folder when the last complete pass selected it,
        # and when that pass ended (monotonic): what a scheduled poll compares with.
        self.mark: tuple[int, int] | None = None
        self.passed_at = self.recorded_at = 0.0

    # -- the scheduled job -----------------------------------------------------------------
    def poll(self) -> None:
        """One scheduled or IDLE-triggered run; repeats while new mail keeps arriving."""
        if self.stopping.is_set() or self.backoff.waiting:
            return
        if not self.lock.acquire(timeout=1):
            self.dirty.set()  # the running pass will go round once more
            return
        try:
            # (dirty again after the look: a wake-up that came meanwhile left it to us)
            if not self.dirty.is_set() and self._unchanged() and not self.dirty.is_set():
                return
            follow_up = len(FOLLOW_UP)  # none, unless a pass finds mail
            first = True
            while not self.stopping.is_set():
                self.dirty.clear()
                announced = self.idle_news.is_set()
                self.idle_news.clear()
                try:
                    counts = self.process_once()
                except PeerError as exc:
                    self.record_failure(exc)
                    return
                self.idle.judge(announced, first, counts.created > 0)
                first = False
                if counts.seen or counts.moved:
                    follow_up = 0
                if self.dirty.is_set():
                    continue
                if follow_up >= len(FOLLOW_UP):
                    return
                self.dirty.wait(FOLLOW_UP[follow_up])  # IDLE news ends the pause early
                follow_up += 1
        finally:
            self.lock.release()

    def _unchanged(self) -> bool:
        """True when nothing arrived in the watched folder since the last complete pass began
        (its UIDNEXT and UIDVALIDITY unchanged), that pass is recent, and the connection is
        open: a scheduled poll then needs no pass. Anything else (no pass yet, a server
        without UIDNEXT, a lost connection) says False and the pass runs as always."""
        conn, mark = self.conn, self.mark
        if conn is None or not conn.connected or mark is None \
                or time.monotonic() - self.passed_at > FULL_PASS_EVERY:
            return False
        try:
            selected = conn.select(self.settings().mailbox_folders(self.box).watch)
        except PeerError:
            self.disconnect()  # the pass reconnects, and reports the error if it lasts
            return False
        if (selected.uidvalidity, selected.uidnext) != mark:
            return False
        if time.monotonic() - self.recorded_at > RECORD_POLL_EVERY:
            with self.store.session() as s:
                self.store.mailbox_state(s, self.box.address).last_poll_at = datetime.now(UTC)
                s.commit()
            self.recorded_at = time.monotonic()
        return True

    def record_failure(self, exc: PeerError) -> None:
        self.disconnect()
        permanent = isinstance(exc, Permanent)
        delay = self.backoff.failed(
            max(PERMANENT_BACKOFF, self.backoff.cap) if permanent else None)
        self.state, self.last_error = "error", describe(exc)
        log.log(logging.ERROR if permanent else logging.WARNING,
                "mailbox %s: %s; retry in %.1f s",
                "refused (an admin must act)" if permanent else "unreachable", exc, delay,
                extra={"mailbox": self.box.address, "attempt": self.backoff.attempt,
                       "retry_in": round(delay, 1), "kind": exc.kind, "command": exc.command,
                       "folder": exc.folder,
                       "event": "imap.refused" if permanent else "imap.retry"})
        try:
            with self.store.session() as s:
                state = self.store.mailbox_state(s, self.box.address)
                state.last_error = self.last_error[:2000]
                s.commit()
        except Exception:  # the store being down must not hide the IMAP error
            log.exception("cannot record the mailbox error", extra={"mailbox": self.box.address})

    def connection(self) -> MailboxConnection:
        if self.conn is None or not self.conn.connected:
            self.conn = self.connect(self.box).open()
            if self.backoff.attempt:
                log.info("mailbox reconnected after %d failed attempt(s)", self.backoff.attempt,
                         extra={"mailbox": self.box.address, "event": "imap.reconnected"})
            self.state = "connected"
        return self.conn

    def disconnect(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
        self.state = "disconnected"

    def let_go(self) -> None:
        """The mailbox is another instance's now: close the connection, unless a pass is using
        it (the daemon calls this again when that pass ends)."""
        if self.conn is not None and self.lock.acquire(blocking=False):
            try:
                self.disconnect()
            finally:
                self.lock.release()

    # -- one pass, under the lease ---------------------------------------------------------
    def process_once(self) -> Counts:
        """Triage everything in the watched folder; raises :class:`PeerError` on IMAP errors.

        Does nothing (``skipped``) unless the database confirms this instance's lease; a pass
        that did work is recorded with its owner and times.
        """
        if not self.leases.confirm(self.box.address):
            log.info("pass skipped: lease not held", extra={"mailbox": self.box.address,
                                                            "event": "lease.skipped"})
            return Counts(skipped=True)
        started = time.perf_counter()
        work = self.leases.begin_work(self.box.address)
        try:
            counts = self._pass()
        except PeerError as exc:
            self.observer.failed(self.box.address, exc)
            self.leases.end_work(work, 1)  # it may have moved mail: keep the record
            raise
        self.leases.end_work(work, counts.seen or counts.moved or counts.transferred)
        self.observer.passed(self.box.address, counts.seen, time.perf_counter() - started)
        return counts

    def copy_owed(self) -> Counts:
        """Only the copies owed to this mailbox (``run --once`` after every mailbox's pass)."""
        counts = Counts()
        if not self.leases.confirm(self.box.address):
            return Counts(skipped=True)
        counts.transferred = transfers.copy_owed(self.connection(), self.store,
                                                 self.settings(), self.box, self.stopping)
        return counts

    def _pass(self) -> Counts:
        settings = self.settings()
        folders = settings.mailbox_folders(self.box)
        conn = self.connection()
        self.mark = None  # set again only if this pass completes
        selected = conn.select(folders.watch)
        counts = Counts()
        previous = self._check_uidvalidity(selected)
        if not conn.has("MOVE"):
            self._expunge_copied(conn, selected)
        uids = conn.uids()
        size = settings.imap.batch_size
        self._batches(conn, settings, selected, [uids[i:i + size]
                                                 for i in range(0, len(uids), size)], counts)
        counts.repaired = repair_moves(conn, self.store, self.box.address,
                                       settings.mailbox_folders(self.box), selected)
        counts.transferred = transfers.copy_owed(conn, self.store, settings, self.box,
                                                 self.stopping)
        with self.store.session() as s:
            state = self.store.mailbox_state(s, self.box.address)
            state.uidvalidity = selected.uidvalidity
            if uids:
                state.highest_uid = max(state.highest_uid or 0, uids[-1])
            state.last_poll_at = datetime.now(UTC)
            state.last_error = None
            state.tickets_created = (state.tickets_created or 0) + counts.created
            if previous is not None:
                self.store.audit(s, "mailbox.uidvalidity-changed", {
                    "mailbox": self.box.address, "old": previous, "new": selected.uidvalidity,
                    "messages": counts.seen, "matched": counts.matched,
                    "created": counts.created})
            s.commit()
        if previous is not None:
            log.warning("UIDVALIDITY changed from %d to %d: resynchronised %d messages by "
                        "Message-ID and digest (%d already had a ticket, %d new)",
                        previous, selected.uidvalidity, counts.seen, counts.matched,
                        counts.created, extra={"mailbox": self.box.address,
                                               "event": "imap.uidvalidity-changed"})
        self.backoff.succeeded()
        self.state, self.last_error = "connected", None
        if selected.uidnext is not None and not self.stopping.is_set():
            self.mark = (selected.uidvalidity, selected.uidnext)
            self.passed_at = self.recorded_at = time.monotonic()
        return counts

    def _check_uidvalidity(self, selected: Selected) -> int | None:
        with self.store.session() as s:
            state = self.store.mailbox_state(s, self.box.address)
            known = state.uidvalidity
            s.commit()
        return known if known is not None and known != selected.uidvalidity else None

    def _expunge_copied(self, conn: MailboxConnection, selected: Selected) -> None:
        """Without MOVE: expunge the originals flagged ``\\Deleted`` whose copy is recorded."""
        deleted = conn.deleted_uids()
        if not deleted:
            return
        with self.store.session() as s:
            known = queries.sightings(s, self.box.address, selected.uidvalidity, deleted)
        conn.expunge(sorted(u for u, seen in known.items() if seen.moved_to))

    def _batches(self, conn: MailboxConnection, settings: Settings, selected: Selected,
                 batches: list[list[int]], counts: Counts) -> None:
        """Fetch, triage and commit, then move, batch after batch, the IMAP work overlapped.

        While batch *k* is triaged and committed (CPU and database), a helper thread moves batch
        *k - 1* (committed already) and fetches batch *k + 1* on the same connection, so the
        server's work and the round trips hide behind the parsing. The connection is used by one
        thread at a time: the main thread touches it only between two helper jobs. A stop
        request is honoured between batches: the committed batch is still moved, the fetched
        one is dropped (a later pass triages it).
        """
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=1,
                                thread_name_prefix=f"imap-{self.box.address}") as helper:
            ahead = helper.submit(self._imap_step, conn, settings, selected, Committed(),
                                  batches[0])
            committed = Committed()
            for k in range(len(batches)):
                moved, batch = ahead.result()
                self._count_moves(counts, moved)
                if self.stopping.is_set() or batch is None:
                    break
                following = batches[k + 1] if k + 1 < len(batches) else None
                ahead = helper.submit(self._imap_step, conn, settings, selected, committed,
                                      following)
                committed = self._commit(settings, selected, batch, counts)
            else:
                moved, _ = ahead.result()
                self._count_moves(counts, moved)
            # Only now, with their tickets committed, do the last messages leave the folder.
            self._count_moves(counts, self._move(conn, settings, selected, committed))

    def _imap_step(self, conn: MailboxConnection, settings: Settings, selected: Selected,
                   committed: Committed, following: list[int] | None
                   ) -> tuple[dict[str, int], Batch | None]:
        """The helper's job: move the committed batch, then fetch the next one."""
        moved = self._move(conn, settings, selected, committed)
        batch = self._fetch(conn, settings, selected, following) if following else None
        return moved, batch

    @staticmethod
    def _count_moves(counts: Counts, moved: dict[str, int]) -> None:
        for folder, n in moved.items():
            counts.moved += n
            counts.by_folder[folder] += n

    def _fetch(self, conn: MailboxConnection, settings: Settings, selected: Selected,
               uids: list[int]) -> Batch:
        """The batch's messages not yet triaged, fetched; those already done, with their action."""
        with self.store.session() as s:
            done = queries.sightings(s, self.box.address, selected.uidvalidity, uids)
        todo = [u for u in uids if u not in done]
        return Batch(done, fetch_batch(conn, todo, settings.imap.full_fetch_bytes,
                                       settings.limits.max_message_bytes,
                                       4 * settings.limits.max_text_chars))

    def _commit(self, settings: Settings, selected: Selected, batch: Batch,
                counts: Counts) -> Committed:
        """Triage the batch and commit its tickets in one transaction; the action of every UID.

        Another instance may record one of these messages (the same message in its mailbox) at
        the same moment: the commit then fails on the ticket's identity, and the batch is
        recorded again, finding that ticket: the ordinary "seen again" case.
        """
        mailbox = self.box.address
        history = self.store.history()  # the sender-history port, counting this batch too
        outcomes = [(f, triage_bytes(f.raw, settings, mailbox, size=f.size, history=history,
                                     partial=f.partial))
                    for f in batch.fetched]
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                return self._record(settings, selected, batch, outcomes, counts)
            except IntegrityError:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                log.info("a message of the batch was recorded by another writer meanwhile: "
                         "recording the batch again", extra={"mailbox": mailbox,
                                                             "event": "ticket.concurrent"})
        raise AssertionError("unreachable")

    def _record(self, settings: Settings, selected: Selected, batch: Batch,
                outcomes: list[tuple[Fetched, Outcome]], counts: Counts) -> Committed:
        mailbox = self.box.address
        committed = Committed({u: seen.action for u, seen in batch.done.items()},
                              {u: seen.message_id for u, seen in batch.done.items()})
        logs: list[tuple[int, Ticket, bool]] = []
        with self.store.session() as s:
            recorded = self.store.record_batch(s, [
                Recording(outcome, f.raw, f"imap:{mailbox}",
                          Seen(mailbox, selected.uidvalidity, f.uid, selected.folder))
                for f, outcome in outcomes])
            for (f, _outcome), (ticket, created) in zip(outcomes, recorded, strict=True):
                committed.targets[f.uid] = ticket.action
                if created:
                    transfers.owe(s, settings, mailbox, ticket)
                logs.append((f.uid, ticket, created))
            s.commit()
        for uid, ticket, created in logs:  # counted and logged once committed
            counts.seen += 1
            counts.created += int(created)
            counts.matched += int(not created)
            log.info("ticket %s: %s", ticket.id, ticket.action if created else "seen again",
                     extra={"mailbox": mailbox, "uid": uid, "ticket": ticket.id,
                            "message_id": ticket.message_id, "action": ticket.action,
                            "department": ticket.department,
                            "event": "ticket.created" if created else "ticket.seen-again"})
        return committed

    def _move(self, conn: MailboxConnection, settings: Settings, selected: Selected,
              committed: Committed) -> dict[str, int]:
        """Move committed messages to their outcome folders: one UID MOVE per folder."""
        if not committed.targets:
            return {}
        folders = settings.mailbox_folders(self.box)
        by_folder: dict[str, list[int]] = defaultdict(list)
        for uid, action in committed.targets.items():
            by_folder[folders.for_action(action)].append(uid)
        there = self._copied_before(conn, folders.watch, selected, by_folder, committed)
        moved: dict[str, int] = {}
        for folder, moving in by_folder.items():
            conn.move(sorted(moving), folder, skip_copy=there)
            moved[folder] = len(moving)
        with self.store.session() as s:
            queries.record_moved(s, self.box.address, selected.uidvalidity, {
                uid: folders.for_action(action) for uid, action in committed.targets.items()})
            s.commit()
        return moved

    def _copied_before(self, conn: MailboxConnection, watch: str, selected: Selected,
                       by_folder: dict[str, list[int]], committed: Committed) -> set[int]:
        """Without MOVE: the UIDs of earlier passes whose copy is in the target already."""
        if conn.has("MOVE") or not committed.earlier:
            return set()
        there: set[int] = set()
        for folder, moving in by_folder.items():
            ids = {m: u for u in moving if (m := committed.earlier.get(u))}
            if ids:
                there.update(ids[m] for m in conn.message_ids_in(folder, list(ids)))
        self._reselect(conn, watch, selected)
        return there

    @staticmethod
    def _reselect(conn: MailboxConnection, watch: str, selected: Selected) -> None:
        again = conn.select(watch)
        if again.uidvalidity != selected.uidvalidity:
            from triage.errors import ImapTransient

            raise ImapTransient(conn.box.address, "UIDVALIDITY changed during the pass",
                                command="SELECT", folder=again.folder)
