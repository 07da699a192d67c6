"""IDLE watchers: a second connection per mailbox that waits for new mail (RFC 2177).

The watcher only listens; when the server reports a new message it wakes the mailbox's worker,
which does the work on its own connection. IDLE is re-issued every ``imap.idle_renew`` seconds
(servers end it after 29 minutes, NAT boxes sooner) and the stop flag is checked every second,
so a stop request is honoured quickly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from triage.config import Mailbox, Settings
from triage.errors import PeerError
from triage.mailbox.connection import Connection
from triage.retry import Backoff
from triage.store import Store
from triage.store import intake as queries

log = logging.getLogger("triage.mailbox.idle")

#: IDLE news of new mail arriving this long (seconds) after a scheduled poll found that mail is
#: late; after :data:`LATE_TIMES` late ones in a row IDLE is judged not effective.
LATE, LATE_TIMES = (5.0, 120.0), 3


class IdleJudge:
    """Whether IDLE tells a mailbox's worker of new mail in time (Cyrus without idled, Courier
    without enhanced IDLE report it only after about a minute, so the polls do all the work).

    Told after each pass whether IDLE had announced mail, whether the pass was a scheduled
    one, and whether it found new mail. A scheduled pass that finds mail IDLE had not
    announced, followed by IDLE news 5 to 120 s later that finds nothing new, is a late
    notification; three in a row make IDLE "ineffective", mail announced in time makes it
    "effective". The verdict is written to the store when it changes; ``triage status``
    reports an ineffective IDLE.
    """

    def __init__(self, store: Store, mailbox: str) -> None:
        self.store, self.mailbox = store, mailbox
        self.unannounced: float | None = None  # when a scheduled poll found mail first
        self.late = 0
        self.verdict: str | None = None

    def judge(self, announced: bool, scheduled: bool, found: bool) -> None:
        now = time.monotonic()
        if announced and found:
            self.late, self.unannounced = 0, None
            self._record("effective", "new mail announced by IDLE")
        elif found and scheduled and not announced:
            self.unannounced = self.unannounced or now
        elif announced and not found and self.unannounced is not None:
            late, self.unannounced = now - self.unannounced, None
            if LATE[0] < late < LATE[1]:
                self.late += 1
                if self.late >= LATE_TIMES:
                    self._record("ineffective", f"IDLE news {late:.0f} s late, "
                                 f"{self.late} times in a row")

    def _record(self, verdict: str, why: str) -> None:
        if verdict == self.verdict:
            return
        self.verdict = verdict
        if verdict == "ineffective":
            log.warning("IDLE not effective: %s; new mail waits for the polls", why,
                        extra={"mailbox": self.mailbox, "event": "imap.idle-ineffective"})
        with self.store.session() as s:
            queries.record_idle_verdict(s, self.mailbox, verdict, why)
            s.commit()


class IdleWatcher(threading.Thread):
    def __init__(self, settings: Callable[[], Settings], box: Mailbox, wake: Callable[[], None],
                 stopping: threading.Event) -> None:
        super().__init__(name=f"idle-{box.address}", daemon=True)
        self.settings = settings
        self.box = box
        self.wake = wake
        self.stopping = stopping
        self.supported: bool | None = None

    def run(self) -> None:
        backoff = Backoff(self.settings().imap.max_backoff)
        while not self.stopping.is_set():
            try:
                self._watch(backoff)
                if self.supported is False:
                    return  # the server has no IDLE: the scheduled polls do the work
            except PeerError as exc:
                delay = backoff.failed()
                log.warning("IDLE connection lost: %s; retry in %.1f s", exc, delay,
                            extra={"mailbox": self.box.address, "attempt": backoff.attempt,
                                   "retry_in": round(delay, 1), "event": "imap.idle-retry"})
                self.stopping.wait(delay)

    def _watch(self, backoff: Backoff) -> None:
        settings = self.settings()
        renew = settings.imap.idle_renew
        conn = Connection(settings, self.box, read_timeout=max(settings.imap.timeout, 5.0))
        with conn:
            self.supported = conn.has("IDLE")
            if not self.supported:
                log.info("server does not announce IDLE; polling only",
                         extra={"mailbox": self.box.address})
                return
            conn.examine(settings.mailbox_folders(self.box).watch)
            backoff.succeeded()
            self.wake()  # catch up with whatever arrived while we were away
            while not self.stopping.is_set():
                self._idle_round(conn, renew)

    def _idle_round(self, conn: Connection, renew: float) -> None:
        """One IDLE command, ended after ``renew`` seconds or when new mail is reported."""
        with conn.guard("IDLE", conn.selected):
            conn.imap.idle()
            started = time.monotonic()
            woke = False
            while not self.stopping.is_set() and time.monotonic() - started < renew:
                responses = conn.imap.idle_check(timeout=1)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    woke = True
                    break
            conn.imap.idle_done()
        if woke:
            self.wake()
