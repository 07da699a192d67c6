"""A restart of the workers after a configuration edit publishes a complete scheduler."""

from __future__ import annotations

import time

import yaml

from triage.testing.intake import deploy

from .conftest import wait_for


def test_restarted_scheduler_is_published_with_its_jobs(dovecot, tmp_path, monkeypatch):
    """Whoever sees the new scheduler after a restart finds every mailbox's poll job in it,
    even when the lease heartbeat of the restart is slow (slowed here on purpose, as a slow
    disk makes SQLite's commits: the window the revert of 594e31c fell into)."""
    from triage.mailbox.daemon import Daemon
    from triage.mailbox.lease import LeaseKeeper
    from triage.store import Store

    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("73",))
    store = Store.open(dep.settings)
    daemon = Daemon(dep.settings, dep.config_path, store, watch_interval=0.2)
    daemon.start()
    heartbeat = LeaseKeeper.heartbeat

    def slow_heartbeat(self: LeaseKeeper) -> set[str]:
        time.sleep(0.5)
        return heartbeat(self)

    try:
        first = daemon.scheduler
        monkeypatch.setattr(LeaseKeeper, "heartbeat", slow_heartbeat)
        data = yaml.safe_load(dep.config_path.read_text("utf-8"))
        data["imap"]["poll_interval"] = 0.7
        dep.config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                   "utf-8")
        wait_for(lambda: daemon.scheduler is not first, 10, step=0.01)
        job = daemon.scheduler.get_job("poll:ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr")
        assert job is not None
        assert job.trigger.interval.total_seconds() == 0.7
    finally:
        daemon.stop()
        store.dispose()
