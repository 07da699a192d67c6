"""The work on one mailbox: fetch → commit ticket, decision and draft → move to the outcome folder.

The order is what makes a crash harmless. A message is moved out of the watched folder only
after its ticket is committed; a restart finds it still there, sees its (mailbox, UIDVALIDITY,
UID) already recorded and only moves it. A ticket is unique on the message's identity
(Message-ID + content digest), so a message seen again (a second mailbox, a changed
UIDVALIDITY) adds a sighting to its ticket, never a second ticket. Nothing is ever deleted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from imapclient.exceptions import IMAPClientError
from sqlalchemy import select

from triage.config import Mailbox, Settings
from triage.mailbox.connection import Connection, MailboxError, Selected
from triage.mailbox.fetch import Fetched, fetch_batch
from triage.pipeline import triage_bytes
from triage.store import Store, Ticket, TicketSource, Transfer
from triage.store.store import Recording, Seen

log = logging.getLogger("triage.mailbox")

NETWORK_ERRORS = (MailboxError, IMAPClientError, OSError)

#: After a pass that found mail, look again after these pauses (seconds) before leaving it to
#: IDLE. Servers hold IDLE news back (Dovecot by 0.5 s, to group changes) and mail comes in
#: bursts: while it flows, a quick look finds the next message sooner. A quiet mailbox costs
#: these few extra passes once per burst.
FOLLOW_UP = (0.1, 0.1, 0.2, 0.4)


@dataclass(frozen=True)
class Batch:
    done: dict[int, str]  # UIDs that have a ticket already, with its action
    fetched: list[Fetched]


@dataclass
class Counts:
    seen: int = 0
    created: int = 0
    moved: int = 0
    matched: int = 0  # messages found to have a ticket already (by identity)
    transferred: int = 0
    by_folder: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Backoff:
    """Exponential backoff with jitter; one log line per retry is written by the caller."""

    def __init__(self, cap: float, base: float = 1.0) -> None:
        self.cap, self.base = cap, base
        self.attempt = 0
        self.until = 0.0

    def failed(self) -> float:
        self.attempt += 1
        delay = min(self.cap, self.base * 2.0 ** (self.attempt - 1)) * random.uniform(0.5, 1.0)
        self.until = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.attempt, self.until = 0, 0.0

    @property
    def waiting(self) -> bool:
        return time.monotonic() < self.until


class MailboxWorker:
    def __init__(self, settings: Callable[[], Settings], box: Mailbox, store: Store,
                 stopping: threading.Event | None = None) -> None:
        self.settings = settings
        self.box = box
        self.store = store
        self.stopping = stopping or threading.Event()
        self.conn: Connection | None = None
        self.lock = threading.Lock()
        self.dirty = threading.Event()
        self.backoff = Backoff(settings().imap.max_backoff)
        self.state = "disconnected"
        self.last_error: str | None = None

    # -- the scheduled job -----------------------------------------------------------------
    def poll(self) -> None:
        """One scheduled or IDLE-triggered run; repeats while new mail keeps arriving."""
        if self.stopping.is_set() or self.backoff.waiting:
            return
        if not self.lock.acquire(timeout=1):
            self.dirty.set()  # the running pass will go round once more
            return
        try:
            follow_up = len(FOLLOW_UP)  # none, unless a pass finds mail
            while not self.stopping.is_set():
                self.dirty.clear()
                try:
                    counts = self.process_once()
                except NETWORK_ERRORS as exc:
                    self._failed(exc)
                    return
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

    def _failed(self, exc: BaseException) -> None:
        self.disconnect()
        delay = self.backoff.failed()
        self.state, self.last_error = "error", f"{type(exc).__name__}: {exc}"
        log.warning("mailbox unreachable: %s; retry in %.1f s", self.last_error, delay,
                    extra={"mailbox": self.box.address, "attempt": self.backoff.attempt,
                           "retry_in": round(delay, 1), "event": "imap.retry"})
        try:
            with self.store.session() as s:
                state = self.store.mailbox_state(s, self.box.address)
                state.last_error = self.last_error[:2000]
                s.commit()
        except Exception:  # the store being down must not hide the IMAP error
            log.exception("cannot record the mailbox error", extra={"mailbox": self.box.address})

    def connection(self) -> Connection:
        if self.conn is None or self.conn.client is None:
            self.conn = Connection(self.settings(), self.box).open()
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

    # -- one pass --------------------------------------------------------------------------
    def process_once(self) -> Counts:
        """Triage everything in the watched folder; raises on network errors."""
        settings = self.settings()
        folders = settings.mailbox_folders(self.box)
        conn = self.connection()
        selected = conn.select(folders.watch)
        counts = Counts()
        previous = self._check_uidvalidity(selected)
        uids = conn.uids()
        size = settings.imap.batch_size
        self._batches(conn, settings, selected, [uids[i:i + size]
                                                 for i in range(0, len(uids), size)], counts)
        self._transfers(conn, settings, counts)
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
        return counts

    def _check_uidvalidity(self, selected: Selected) -> int | None:
        with self.store.session() as s:
            state = self.store.mailbox_state(s, self.box.address)
            known = state.uidvalidity
            s.commit()
        return known if known is not None and known != selected.uidvalidity else None

    def _batches(self, conn: Connection, settings: Settings, selected: Selected,
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
            ahead = helper.submit(self._imap_step, conn, settings, selected, {}, batches[0])
            committed: dict[int, str] = {}
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

    def _imap_step(self, conn: Connection, settings: Settings, selected: Selected,
                   committed: dict[int, str], following: list[int] | None
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

    def _fetch(self, conn: Connection, settings: Settings, selected: Selected,
               uids: list[int]) -> Batch:
        """The batch's messages not yet triaged, fetched; those already done, with their action."""
        with self.store.session() as s:
            rows = s.execute(
                select(TicketSource.uid, Ticket.action)
                .join(Ticket, TicketSource.ticket_id == Ticket.id)
                .where(TicketSource.mailbox == self.box.address,
                       TicketSource.uidvalidity == selected.uidvalidity,
                       TicketSource.uid.in_(uids)))
            done = {int(uid): str(action) for uid, action in rows}
        todo = [u for u in uids if u not in done]
        return Batch(done, fetch_batch(conn, todo, settings.imap.full_fetch_bytes,
                                       settings.limits.max_message_bytes,
                                       4 * settings.limits.max_text_chars))

    def _commit(self, settings: Settings, selected: Selected, batch: Batch,
                counts: Counts) -> dict[int, str]:
        """Triage the batch and commit its tickets in one transaction; the action of every UID."""
        mailbox = self.box.address
        history = self.store.history()  # the sender-history port, counting this batch too
        outcomes = [(f, triage_bytes(f.raw, settings, mailbox, size=f.size, history=history,
                                     partial=f.partial))
                    for f in batch.fetched]
        targets: dict[int, str] = dict(batch.done)
        with self.store.session() as s:
            recorded = self.store.record_batch(s, [
                Recording(outcome, f.raw, f"imap:{mailbox}",
                          Seen(mailbox, selected.uidvalidity, f.uid, selected.folder))
                for f, outcome in outcomes])
            for (f, _outcome), (ticket, created) in zip(outcomes, recorded, strict=True):
                counts.seen += 1
                counts.created += int(created)
                counts.matched += int(not created)
                targets[f.uid] = ticket.action
                if created:
                    self._owe_transfer(s, settings, ticket)
                log.info("ticket %s: %s", ticket.id, ticket.action if created else "seen again",
                         extra={"mailbox": mailbox, "uid": f.uid, "ticket": ticket.id,
                                "message_id": ticket.message_id, "action": ticket.action,
                                "department": ticket.department,
                                "event": "ticket.created" if created else "ticket.seen-again"})
            s.commit()
        return targets

    def _move(self, conn: Connection, settings: Settings, selected: Selected,
              targets: dict[int, str]) -> dict[str, int]:
        """Move committed messages to their outcome folders: one UID MOVE per folder."""
        if not targets:
            return {}
        folders = settings.mailbox_folders(self.box)
        by_folder: dict[str, list[int]] = defaultdict(list)
        for uid, action in targets.items():
            by_folder[folders.for_action(action)].append(uid)
        moved: dict[str, int] = {}
        for folder, moving in by_folder.items():
            conn.move(sorted(moving), folder)
            moved[folder] = len(moving)
        with self.store.session() as s:
            for src in s.scalars(select(TicketSource).where(
                    TicketSource.mailbox == self.box.address,
                    TicketSource.uidvalidity == selected.uidvalidity,
                    TicketSource.uid.in_(list(targets)))):
                src.moved_to = folders.for_action(targets[src.uid])
            s.commit()
        return moved

    def _owe_transfer(self, s: object, settings: Settings, ticket: Ticket) -> None:
        """A ticket placed in another department: its mailbox gets a copy in Transféré."""
        home = settings.department_of_mailbox(self.box.address)
        if ticket.department is None or home is None or ticket.department == home.code:
            return
        target = settings.department(ticket.department)
        if target is None or not any(m.address == target.mailbox for m in settings.mailboxes):
            return
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        s.add(Transfer(ticket_id=ticket.id, target=target.mailbox))

    def _transfers(self, conn: Connection, settings: Settings, counts: Counts) -> None:
        """Copy into this mailbox the messages other mailboxes routed to this department."""
        folder = settings.mailbox_folders(self.box).transferred
        with self.store.session() as s:
            pending = list(s.scalars(select(Transfer).where(
                Transfer.target == self.box.address, Transfer.done_at.is_(None))))
            if not pending:
                return
            # The folder stays open (read-only) for the whole run: a search per message, no
            # LIST and SELECT each time.
            conn.examine(folder)
            for transfer in pending:
                if self.stopping.is_set():
                    break
                ticket = s.get(Ticket, transfer.ticket_id)
                if ticket is None:
                    continue
                if not (ticket.message_id and conn.selected_has_message_id(ticket.message_id)):
                    conn.append(folder, ticket.raw)
                transfer.done_at = datetime.now(UTC)
                s.commit()
                counts.transferred += 1
                log.info("ticket %s copied to %s", ticket.id, folder,
                         extra={"mailbox": self.box.address, "ticket": ticket.id,
                                "message_id": ticket.message_id, "event": "ticket.transferred"})
