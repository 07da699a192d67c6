"""IDLE: one thread waits on every watched mailbox's IDLE connection (RFC 2177).

Each mailbox this instance holds gets a second, read-only connection in IDLE; it only listens,
and when the server reports new mail the mailbox's worker is woken and does the work on its own
connection. One :class:`IdleHub` thread waits on all those sockets at once (``selectors``):
measured with 100 mailboxes, a thread per connection that looked at its stop flag every second
cost 100 threads and 100 wake-ups a second for nothing. Connections are opened by a small pool
(a server that does not answer must not hold the others up), IDLE is re-issued every
``imap.idle_renew`` seconds (servers end it after 29 minutes, NAT boxes sooner), a lost
connection is reopened after a backoff, and a stop request wakes the hub at once (a socket
pair). A server without IDLE is left to the scheduled polls.

NOTIFY (RFC 5465) was not chosen: it watches the folders of *one* account, and each helpdesk
mailbox is an account of its own, so it would not spare a connection.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from triage.config import Mailbox, Settings
from triage.errors import PeerError
from triage.mailbox.connection import Connection, classify
from triage.retry import Backoff
from triage.store import Store
from triage.store import intake as queries

log = logging.getLogger("triage.mailbox.idle")

#: IDLE news of new mail arriving this long (seconds) after a scheduled poll found that mail is
#: late; after :data:`LATE_TIMES` late ones in a row IDLE is judged not effective.
LATE, LATE_TIMES = (5.0, 120.0), 3
#: Threads that open IDLE connections (in parallel: 100 logins at 20 ms of round trip each).
OPENERS = 4
#: A socket reported readable this many times in a row with nothing to read has ended.
EMPTY_READS = 3


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


@dataclass
class _Watch:
    """One mailbox's IDLE connection, as the hub sees it."""

    box: Mailbox
    backoff: Backoff
    conn: Connection | None = None
    opening: bool = False
    renew_at: float = 0.0  # monotonic: when to re-issue IDLE
    retry_at: float = 0.0  # monotonic: when to reconnect after a failure
    unsupported: bool = False
    empty: int = 0  # readable in a row with nothing to read (a TLS socket's end of stream)


class IdleHub(threading.Thread):
    """One thread, one IDLE connection per watched mailbox; ``wake(address)`` on new mail.

    :meth:`watch` says which mailboxes to watch (those whose lease this instance holds): others
    are closed, new ones opened. Thread-safe; the connections themselves are touched by the hub
    thread only, once opened.
    """

    def __init__(self, settings: Callable[[], Settings], wake: Callable[[str], None],
                 stopping: threading.Event, openers: int = OPENERS) -> None:
        super().__init__(name="idle-hub", daemon=True)
        self.settings = settings
        self.wake = wake
        self.stopping = stopping
        self.watches: dict[str, _Watch] = {}
        self._wanted: dict[str, Mailbox] = {}
        self._opened: queue.SimpleQueue[tuple[str, Connection | PeerError | None]] = \
            queue.SimpleQueue()
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._bell, self._ring = socket.socketpair()
        self._bell.setblocking(False)
        # Daemon threads, not an executor: a connect that hangs must not hold the exit up.
        self._to_open: queue.SimpleQueue[Mailbox | None] = queue.SimpleQueue()
        self._openers = [threading.Thread(target=self._opener, name=f"idle-open-{n}",
                                          daemon=True) for n in range(openers)]

    # -- from any thread -------------------------------------------------------------------
    def watch(self, boxes: Iterable[Mailbox]) -> None:
        """Watch exactly these mailboxes from now on."""
        with self._lock:
            self._wanted = {box.address: box for box in boxes}
        self.poke()

    def poke(self) -> None:
        """Wake the hub (a stop request, a change of the watched mailboxes, an opened one)."""
        with contextlib.suppress(OSError):
            self._ring.send(b"!")

    def watching(self, address: str) -> bool:
        """True while ``address`` has an IDLE connection up."""
        watch = self.watches.get(address)
        return watch is not None and watch.conn is not None

    def close(self, timeout: float = 3.0) -> None:
        """Stop the hub (the caller has set ``stopping``) and wait for it."""
        self.poke()
        if self.is_alive():
            self.join(timeout)

    # -- the hub's thread ------------------------------------------------------------------
    def run(self) -> None:
        self._selector.register(self._bell, selectors.EVENT_READ, None)
        for opener in self._openers:
            opener.start()
        try:
            while not self.stopping.is_set():
                try:
                    self._round()
                except Exception:  # a bug must not end IDLE for every mailbox
                    log.exception("IDLE hub error", extra={"event": "imap.idle-error"})
                    self.stopping.wait(1.0)
        finally:
            for _ in self._openers:
                self._to_open.put(None)
            for watch in list(self.watches.values()):
                self._drop(watch, quick=True)
            self._take_opened(discard=True)
            self._selector.close()
            self._bell.close()
            self._ring.close()

    def _round(self) -> None:
        self._follow_wanted()
        self._take_opened()
        for key, _events in self._selector.select(self._timeout(time.monotonic())):
            if key.data is None:
                with contextlib.suppress(OSError):
                    while self._bell.recv(4096):
                        pass
            else:
                self._readable(key.data)
        self._renew_due()

    def _timeout(self, now: float) -> float:
        times = [w.renew_at for w in self.watches.values() if w.conn is not None] + [
            w.retry_at for w in self.watches.values()
            if w.conn is None and not w.opening and not w.unsupported]
        return max(0.0, min(times) - now) if times else 60.0

    def _follow_wanted(self) -> None:
        with self._lock:
            wanted = dict(self._wanted)
        for address in [a for a in self.watches if a not in wanted]:
            self._drop(self.watches.pop(address), quick=False)
        now = time.monotonic()
        for address, box in wanted.items():
            watch = self.watches.get(address)
            if watch is None:
                watch = self.watches[address] = _Watch(
                    box, Backoff(self.settings().imap.max_backoff))
            if watch.conn is None and not watch.opening and not watch.unsupported \
                    and now >= watch.retry_at:
                watch.opening = True
                self._to_open.put(box)

    def _opener(self) -> None:
        while (box := self._to_open.get()) is not None:
            if not self.stopping.is_set():
                self._open(box)

    def _open(self, box: Mailbox) -> None:
        """In the opening pool: connect, EXAMINE the watched folder, enter IDLE."""
        settings = self.settings()
        conn = Connection(settings, box, read_timeout=max(settings.imap.timeout, 5.0))
        result: Connection | PeerError | None
        try:
            conn.open()
            if not conn.has("IDLE"):
                conn.close()
                result = None
            else:
                conn.examine(settings.mailbox_folders(box).watch)
                with conn.guard("IDLE", conn.selected):
                    conn.imap.idle()
                result = conn
        except Exception as exc:  # whatever it is, the hub must hear of it and retry later
            conn.close()
            result = classify(conn.peer, exc, "IDLE")
        if self.stopping.is_set() and isinstance(result, Connection):
            self._shut(result)  # the hub has ended: nobody would close it
            return
        self._opened.put((box.address, result))
        self.poke()

    def _take_opened(self, discard: bool = False) -> None:
        while True:
            try:
                address, result = self._opened.get_nowait()
            except queue.Empty:
                return
            watch = self.watches.get(address)
            if discard or watch is None or self.stopping.is_set():
                if isinstance(result, Connection):
                    self._shut(result)
                continue
            watch.opening = False
            if result is None:
                watch.unsupported = True
                log.info("server does not announce IDLE; polling only",
                         extra={"mailbox": address})
            elif isinstance(result, PeerError):
                self._failed(watch, result)
            else:
                watch.conn = result
                watch.backoff.succeeded()
                watch.renew_at = time.monotonic() + self.settings().imap.idle_renew
                self._selector.register(result.imap.socket(), selectors.EVENT_READ, watch)
                self.wake(address)  # catch up with whatever arrived while we were away

    def _readable(self, watch: _Watch) -> None:
        conn = watch.conn
        if conn is None:
            return
        try:
            with conn.guard("IDLE", conn.selected):
                responses = conn.imap.idle_check(timeout=0)
                watch.empty = 0 if responses else watch.empty + 1
                if watch.empty >= EMPTY_READS or (not responses
                                                   and _at_eof(conn.imap.socket())):
                    raise ConnectionResetError("the server closed the IDLE connection")
        except PeerError as exc:
            self._failed(watch, exc)
            return
        if _new_mail(responses):
            self.wake(watch.box.address)

    def _renew_due(self) -> None:
        now = time.monotonic()
        for watch in list(self.watches.values()):
            conn = watch.conn
            if conn is None or now < watch.renew_at:
                continue
            try:
                with conn.guard("IDLE", conn.selected):
                    _text, responses = conn.imap.idle_done()
                    conn.imap.idle()
            except PeerError as exc:
                self._failed(watch, exc)
                continue
            watch.renew_at = now + self.settings().imap.idle_renew
            if _new_mail(responses):
                self.wake(watch.box.address)

    def _failed(self, watch: _Watch, exc: PeerError) -> None:
        self._drop(watch, quick=True)
        delay = watch.backoff.failed()
        watch.retry_at = time.monotonic() + delay
        log.warning("IDLE connection lost: %s; retry in %.1f s", exc, delay,
                    extra={"mailbox": watch.box.address, "attempt": watch.backoff.attempt,
                           "retry_in": round(delay, 1), "event": "imap.idle-retry"})

    def _drop(self, watch: _Watch, quick: bool) -> None:
        conn, watch.conn = watch.conn, None
        if conn is None:
            return
        with contextlib.suppress(KeyError, ValueError, OSError, PeerError):
            self._selector.unregister(conn.imap.socket())
        if quick:
            self._shut(conn)
            return
        with contextlib.suppress(Exception):  # a mailbox no longer ours: leave politely
            conn.imap.idle_done()
        conn.close()

    @staticmethod
    def _shut(conn: Connection) -> None:
        """Close without a word: a read-only connection in IDLE has nothing to save."""
        client, conn.client = conn.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()


def _new_mail(responses: list[Any]) -> bool:
    return any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses)


def _at_eof(sock: socket.socket) -> bool:
    """True when the peer has closed the socket (readable, yet nothing to read). A TLS
    socket cannot be peeked at: there, :data:`EMPTY_READS` empty reads in a row decide."""
    if isinstance(sock, ssl.SSLSocket):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
