"""Live configuration: the running settings follow ``config/departments.yaml`` without a restart.

:class:`LiveConfig` holds the settings in force and loads the file again when it changes on disk
(a watcher thread compares its size, modification time and inode every ``interval`` seconds) or
when asked (SIGHUP). A valid edit replaces the settings at once and the listeners are told (the
daemon restarts its mailbox workers when the mailbox settings changed); an invalid edit is
refused with the configuration error (file, line, key), logged once per edit, and the previous
settings keep running.

Readers call the object (``live()``) and get the settings in force; that read takes no lock, so
it is safe from a signal handler or an event loop.

Before an edit goes live, :func:`decisions_that_change` decides again, with the candidate
settings, the messages the store archived over the last days and lists the decisions that would
differ from the ones taken when they arrived (``triage replay --dry-run --days N``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from triage.config import Settings, load_settings
from triage.errors import ConfigError

if TYPE_CHECKING:
    from triage.store import Store

log = logging.getLogger("triage.config")

#: Seconds between two looks at the configuration file.
DEFAULT_INTERVAL = 2.0

Listener = Callable[[Settings, Settings], None]
Signature = tuple[int, int, int] | None


def file_signature(path: Path) -> Signature:
    """What tells an edit of ``path`` apart: size, modification time (ns) and inode."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


class LiveConfig:
    """The settings in force, reloaded from their file on change or on request."""

    def __init__(self, settings: Settings, path: Path | str | None = None) -> None:
        self._settings = settings
        self.path = Path(path) if path is not None else Path(settings.source)
        self._signature = file_signature(self.path)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: ConfigError | None = None
        self._refused: Signature | None = None  # the file state last refused (logged once)
        self.generation = 0  # how many times a new configuration was put in force

    def __call__(self) -> Settings:
        return self._settings

    @property
    def settings(self) -> Settings:
        return self._settings

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(old, new)`` after each accepted reload (in the reloading thread)."""
        self._listeners.append(listener)

    # -- reloading -------------------------------------------------------------------------
    def changed(self) -> bool:
        """True when the file differs from the one last read (valid or not)."""
        return file_signature(self.path) != self._signature

    def reload(self, force: bool = False) -> bool:
        """Load the file again if it changed (or if ``force``); True if new settings are in force.

        An invalid file is refused: the error is logged (once per edit of the file) and kept in
        :attr:`last_error`; the settings in force do not change.
        """
        with self._lock:
            signature = file_signature(self.path)
            if not force and signature == self._signature:
                return False
            self._signature = signature
            try:
                new = load_settings(self.path)
            except ConfigError as exc:
                if self._refused is None or signature != self._refused:
                    log.error("configuration reload refused: %s", exc,
                              extra={"event": "config.refused", "error": str(exc)})
                self.last_error, self._refused = exc, signature
                return False
            old = self._settings
            self.last_error, self._refused = None, None
            if new == old:
                return False
            self._settings = new
            self.generation += 1
            log.info("configuration reloaded from %s", self.path,
                     extra={"event": "config.reloaded"})
            for listener in list(self._listeners):
                try:
                    listener(old, new)
                except Exception:  # a listener's failure must not undo the reload
                    log.exception("configuration listener failed",
                                  extra={"event": "config.listener-error"})
            return True

    # -- watching --------------------------------------------------------------------------
    def watch(self, interval: float = DEFAULT_INTERVAL) -> None:
        """Start the watcher thread (once); it reloads whenever the file changes."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,),
                                        name="config-watch", daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if self.changed():
                    self.reload()
            except Exception:  # the watcher must outlive any surprise; the next look retries
                log.exception("configuration watcher failed", extra={"event": "config.error"})

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def reload_on_sighup(self) -> None:
        """Reload when the process receives SIGHUP (main thread only).

        The handler only starts a thread: loading a file inside a signal handler could wait on
        a lock the interrupted code holds.
        """
        def on_hup(_signum: int, _frame: object) -> None:
            threading.Thread(target=self.reload, kwargs={"force": True},
                             name="config-sighup", daemon=True).start()

        signal.signal(signal.SIGHUP, on_hup)


# -- trying a change on archived mail ----------------------------------------------------------
COMPARED = ("action", "template", "intent", "department")


@dataclass(frozen=True)
class Change:
    """A message whose decision would differ under the candidate settings."""

    ticket_id: int
    origin: str
    subject: str
    before: dict[str, str | None]
    after: dict[str, str | None]

    def describe(self) -> str:
        diffs = "; ".join(f"{k} {self.before[k] or '-'} -> {self.after[k] or '-'}"
                          for k in COMPARED if self.before[k] != self.after[k])
        return f"T{self.ticket_id} {self.origin} ({self.subject[:60]!r}): {diffs}"


def decisions_that_change(candidate: Settings, store: Store, days: float,
                          now: datetime | None = None) -> Iterator[Change | None]:
    """Decide again the tickets created in the last ``days`` days with ``candidate``.

    Yields a :class:`Change` for each decision that would differ from the one taken at arrival
    (as the audit trail recorded it, before any agent's action), ``None`` for each that would
    not. Nothing is written.
    """
    from triage.pipeline import triage_bytes
    from triage.store import Ticket, queries

    since = (now or datetime.now(UTC)) - timedelta(days=days)
    with store.session() as s:
        ids = queries.created_since(s, since)
    for ticket_id in ids:
        with store.session() as s:
            ticket = s.get(Ticket, ticket_id)
            if ticket is None:  # purged meanwhile
                continue
            mailbox = queries.first_mailbox(s, ticket_id)
            created = queries.decided_at_arrival(s, ticket_id)
            before: dict[str, str | None] = {
                "action": created.get("action", ticket.action),
                "template": created.get("template", ticket.template),
                "intent": ticket.intent,
                "department": created.get("department", ticket.department)}
            raw, origin, subject = ticket.raw, ticket.origin, ticket.subject or ""
            received_at = ticket.received_at
        # As of its arrival, with the sender history before it: as the daemon decided.
        decision = triage_bytes(raw, candidate, mailbox, history=store.history(before=ticket_id),
                                at=received_at).decision
        after: dict[str, str | None] = {
            "action": decision.action.value, "template": decision.template,
            "intent": decision.intent, "department": decision.department}
        yield Change(ticket_id, origin, subject, before, after) if before != after else None


__all__ = ["COMPARED", "DEFAULT_INTERVAL", "Change", "LiveConfig", "decisions_that_change",
           "file_signature"]
