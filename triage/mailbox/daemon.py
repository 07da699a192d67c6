"""``triage run``: the workers, their schedule, IDLE watchers, signals and reloads.

APScheduler runs one polling job per mailbox (``imap.poll_interval``; a poll that finds nothing
new since the last pass costs one SELECT, see :meth:`MailboxWorker.poll`), a job that wakes the
mailboxes owed copies, and a housekeeping job (the workers' heartbeat in the log, the purge of
sign-in records past their period), on a bounded pool of threads; one IDLE hub
(:class:`triage.mailbox.idle.IdleHub`) watches the mailboxes whose lease this instance holds and
wakes a mailbox's job as soon as mail arrives. SIGTERM and SIGINT stop the
daemon (the batch in hand is finished or abandoned, never half-done: its tickets commit before
its moves); SIGHUP or an edit of the configuration file reloads the configuration
(:class:`triage.live.LiveConfig`), and an invalid one is refused with one log line while the
previous one keeps running.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from triage.config import Settings
from triage.errors import PeerError
from triage.live import DEFAULT_INTERVAL, LiveConfig
from triage.mailbox.connection import opener
from triage.mailbox.idle import IdleHub
from triage.mailbox.lease import LeaseKeeper
from triage.mailbox.worker import Counts, MailboxWorker
from triage.metrics import IntakeMetrics
from triage.retry import process_name
from triage.store import Store
from triage.store import intake as queries

log = logging.getLogger("triage.daemon")

#: Threads that run the mailboxes' jobs. Measured with 100 mailboxes: a pool of 2 per mailbox
#: held 287 threads and 343 MB at peak; the work is CPU on two cores and round trips that
#: overlap, so a few threads serve many mailboxes (a job waits its turn, it is not lost).
POOL = 16


class Daemon:
    def __init__(self, settings: Settings, config_path: Path | None, store: Store,
                 watch_interval: float = DEFAULT_INTERVAL) -> None:
        # -- live configuration: file changes and SIGHUP (see triage.live) --
        self.live = LiveConfig(settings, config_path)
        self.live.subscribe(self._config_changed)
        self.watch_interval = watch_interval
        self.config_path = config_path
        self.store = store
        self.stopping = threading.Event()
        self.workers: dict[str, MailboxWorker] = {}
        self.hub: IdleHub | None = None
        self.scheduler: BackgroundScheduler | None = None
        self._reload_requested = threading.Event()
        self.leases: LeaseKeeper | None = None

    def settings(self) -> Settings:
        return self.live()

    def _make_workers(self, leases: LeaseKeeper) -> dict[str, MailboxWorker]:
        connect, metrics = opener(self.settings), IntakeMetrics()
        return {box.address: MailboxWorker(self.settings, box, self.store, connect, leases,
                                           metrics, self.stopping)
                for box in self.settings().mailboxes}

    # -- once ------------------------------------------------------------------------------
    def _lease_keeper(self) -> LeaseKeeper:
        settings = self.settings()
        return LeaseKeeper(self.store, [b.address for b in settings.mailboxes],
                           settings.imap.lease_seconds)

    def run_once(self) -> dict[str, Counts | str]:
        """Process every mailbox this instance may work until its watched folder is empty, then
        make every copy to other departments it owes, and send the replies that are due.

        The leases are renewed before each mailbox and every third of ``imap.lease_seconds``
        meanwhile (a long pass must neither make the later mailboxes look expired nor let
        another instance take its own mailbox over). Mailboxes leased by another running
        instance are left to it and reported as such.
        """
        self.leases = self._lease_keeper()
        self.workers = self._make_workers(self.leases)
        results: dict[str, Counts | str] = {}
        done = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(done,), daemon=True,
                                   name="lease-renewal")
        renewer.start()
        try:
            for address, worker in self.workers.items():
                results[address] = self._once(worker, worker.process_once)
            # Mailboxes worked early were not yet owed the copies later ones routed to them.
            with self.store.session() as s:
                owed = queries.targets_owed(s)
            for address in sorted(owed & set(self.workers)):
                worker = self.workers[address]
                result = self._once(worker, worker.copy_owed)
                counts = results.get(address)
                if isinstance(counts, Counts) and isinstance(result, Counts):
                    counts.transferred += result.transferred
                elif isinstance(result, str):
                    results[address] = result
        finally:
            done.set()
            renewer.join()
            self.leases.release_all()
        self.send_replies()
        return results

    def _renew_until(self, done: threading.Event) -> None:
        """``run --once``'s heartbeat: a single long pass must not outlive its lease."""
        assert self.leases is not None
        while not done.wait(max(1.0, self.settings().imap.lease_seconds / 3)):
            try:
                self.leases.heartbeat()
            except Exception:  # the store unreachable: the pass's own commits will fail
                log.exception("lease heartbeat failed", extra={"event": "lease.error"})

    def _once(self, worker: MailboxWorker, work: Any) -> Counts | str:
        """One step of ``run --once`` on a mailbox, under a lease renewed just before."""
        assert self.leases is not None
        address = worker.box.address
        if address not in self.leases.heartbeat():
            return "worked by another instance (lease held elsewhere)"
        try:
            counts: Counts = work()
            return counts
        except PeerError as exc:
            log.error("mailbox failed: %s", exc, extra={"mailbox": address, "kind": exc.kind,
                                                         "event": "imap.failed"})
            worker.record_failure(exc)
            return f"{exc.kind}: {exc}"
        finally:
            worker.disconnect()

    # -- forever ---------------------------------------------------------------------------
    def start(self) -> None:
        self._start_workers()
        self.live.watch(self.watch_interval)

    def _start_workers(self) -> None:
        settings = self.settings()
        leases = self._lease_keeper()
        leases.heartbeat()
        workers = self._make_workers(leases)
        scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": {
                "type": "threadpool", "max_workers": max(2, min(POOL, 2 * len(workers) + 1))}},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        scheduler.add_job(self._renew_leases, "interval",
                          seconds=max(1.0, settings.imap.lease_seconds / 3), id="leases")
        for address, worker in workers.items():
            scheduler.add_job(self._leased(worker), "interval",
                              seconds=settings.imap.poll_interval,
                              id=f"poll:{address}", next_run_time=datetime.now(UTC))
        scheduler.add_job(self._wake_owed, "interval", seconds=settings.imap.poll_interval,
                          id="owed")
        hub = IdleHub(self.settings, self._wake_idle, self.stopping) \
            if settings.imap.idle else None
        scheduler.add_job(self.send_replies, "interval", seconds=settings.smtp.poll_interval,
                          id="outbox", next_run_time=datetime.now(UTC))
        scheduler.add_job(self.housekeeping, "interval", minutes=10, id="housekeeping")
        # Published only once complete: a reader (a reload, a test, the web page) that sees
        # the new scheduler finds all its jobs. Publishing it first, then adding the jobs after
        # a lease heartbeat, let a reader find a scheduler without its poll jobs.
        self.leases, self.workers, self.hub = leases, workers, hub
        self.scheduler = scheduler
        scheduler.start()
        if hub is not None:
            hub.start()
            self._watch_held()
        log.info("daemon started with %d mailbox(es)", len(workers),
                 extra={"event": "daemon.start"})

    def _leased(self, worker: MailboxWorker) -> Any:
        """The worker's poll, run only while this instance holds the mailbox's lease."""
        def poll() -> None:
            if self.leases is not None and self.leases.holds(worker.box.address):
                worker.poll()
            if self.leases is not None and not self.leases.holds(worker.box.address):
                worker.let_go()  # lost while this pass ran: it closes the connection itself
        return poll

    def _renew_leases(self) -> None:
        if self.leases is None or self.stopping.is_set():
            return
        before = set(self.leases.held)
        try:
            held = self.leases.heartbeat()
        except Exception:  # the store unreachable: keep going on the leases still valid
            log.exception("lease heartbeat failed", extra={"event": "lease.error"})
            return
        for address in held - before:  # taken over: start on it at once
            wake = self._waker(address)
            wake()
        for address in before - held:  # now another instance's: close its connection
            worker = self.workers.get(address)
            if worker is not None:
                worker.let_go()
        self._watch_held()

    def _watch_held(self) -> None:
        """IDLE on the mailboxes this instance holds, and on no other: three instances sharing
        300 mailboxes open 300 IDLE connections, not 900."""
        if self.hub is not None and self.leases is not None:
            self.hub.watch([w.box for a, w in self.workers.items() if a in self.leases.held])

    def _wake_idle(self, address: str) -> None:
        self._waker(address, idle=True)()

    def _wake_owed(self) -> None:
        """Wake the mailboxes that are owed copies (routed to them by any instance's pass):
        their scheduled polls skip the pass when their own folder has nothing new."""
        if self.leases is None or self.stopping.is_set():
            return
        try:
            with self.store.session() as s:
                owed = queries.targets_owed(s)
        except Exception:  # the store unreachable: the next run tries again
            log.exception("could not read the copies owed", extra={"event": "transfer.error"})
            return
        for address in sorted(owed & set(self.leases.held)):
            self._waker(address)()

    def _waker(self, address: str, idle: bool = False) -> Any:
        def wake() -> None:
            worker = self.workers.get(address)
            if worker is None or self.scheduler is None or self.stopping.is_set():
                return
            if idle:
                worker.idle_news.set()
            worker.dirty.set()
            # A one-shot job: it waits for a running pass, which also sees the dirty flag.
            self.scheduler.add_job(self._leased(worker), "date", run_date=datetime.now(UTC),
                                   id=f"wake:{address}", replace_existing=True)
        return wake

    def send_replies(self) -> int:
        """Send the approved replies that are due (the outbox job)."""
        from triage.send.sender import send_due

        try:
            return send_due(self.settings(), self.store, self.worker_name)
        except Exception:  # the next run retries; one failure must not end the job
            log.exception("outbox run failed", extra={"event": "outbox.error"})
            return 0

    @property
    def worker_name(self) -> str:
        return process_name()

    def housekeeping(self) -> None:
        for address, worker in self.workers.items():
            log.info("mailbox %s: %s", address, worker.state,
                     extra={"mailbox": address, "event": "daemon.heartbeat",
                            "error": worker.last_error})
        self.purge_sign_ins()

    def purge_sign_ins(self) -> tuple[int, int]:
        """Remove the web sessions and login attempts past their period (the web processes
        write them; every instance may purge them, the deletes are idempotent)."""
        from triage.retention import housekeep

        try:
            with self.store.session() as s:
                removed = housekeep(s, self.settings())
                s.commit()
        except Exception:  # the next run retries; one failure must not end the job
            log.exception("housekeeping failed", extra={"event": "housekeeping.error"})
            return 0, 0
        if any(removed):
            log.info("removed %d web sessions and %d login attempts past retention.logs_days",
                     *removed, extra={"event": "housekeeping.purged"})
        return removed

    def stop(self) -> None:
        self.live.stop()
        if self.stopping.is_set():
            return
        log.info("stopping", extra={"event": "daemon.stop"})
        self._stop_workers()

    def _stop_workers(self) -> None:
        self.stopping.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.hub is not None:
            self.hub.close()
        for worker in self.workers.values():
            with worker.lock:
                worker.disconnect()
        if self.leases is not None:
            try:
                self.leases.release_all()
            except Exception:  # leases expire on their own if the store is unreachable
                log.exception("could not release the leases", extra={"event": "lease.error"})

    def reload(self) -> None:
        """Load the configuration again; keep the running one if the new one is invalid."""
        self.live.reload(force=True)

    def _config_changed(self, old: Settings, new: Settings) -> None:
        """After a reload: restart the mailbox workers if their settings changed."""
        if self.scheduler is None or self.stopping.is_set():
            return
        if new.mailboxes != old.mailboxes or new.imap != old.imap or new.smtp != old.smtp:
            log.info("mailbox settings changed: restarting the workers",
                     extra={"event": "config.restart-workers"})
            self._stop_workers()
            self.stopping = threading.Event()
            self.hub = None
            self._start_workers()

    def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads."""
        stop = threading.Event()

        def on_stop(_signum: int, _frame: object) -> None:
            stop.set()

        def on_hup(_signum: int, _frame: object) -> None:
            self._reload_requested.set()
            stop.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        self.start()
        try:
            while True:
                stop.wait()
                if self._reload_requested.is_set():
                    self._reload_requested.clear()
                    stop.clear()
                    self.reload()
                    continue
                break
        finally:
            self.stop()
