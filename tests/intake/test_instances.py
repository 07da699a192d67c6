"""Several daemons on one PostgreSQL store: shared mailboxes, no duplicates, no loss."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from triage.lifecycle import Event
from triage.review.agents import add_agent
from triage.review.moderation import handle
from triage.store import Agent, MailboxWork, OutboxItem, Store, Ticket
from triage.testing import DovecotServer
from triage.testing.intake import deploy
from triage.testing.smtp import SmtpRelay

from .conftest import DEV, wait_for
from .test_intake import folder_counts, with_id

LEASE = 6.0


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "triage", "run", "--log-json", "--config",
                             str(config)], stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def count(store: Store, what) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func

    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(what)) or 0)


@pytest.mark.slow
def test_three_instances_ten_mailboxes_one_killed(tmp_path, pg_url):
    """3 daemons, 10 mailboxes, 2,000 messages, one daemon SIGKILLed mid-way: every message has
    exactly one ticket, and each mailbox was worked by one instance at a time."""
    files = sorted(DEV.glob("*.eml"))
    with DovecotServer() as server:
        dep = deploy(server, tmp_path, store_url=pg_url, extra_mailboxes=5,
                     imap={"lease_seconds": LEASE, "batch_size": 50})
        store = Store.open(dep.settings)
        procs = [start(dep.config_path, tmp_path / f"run-{i}.log") for i in range(3)]
        try:
            # Let the three meet and share the mailboxes, then the mail arrives.
            wait_for(lambda: _leases_spread(store, 3), 60, step=0.5)
            n = 0
            for acc in dep.accounts.values():
                with server.client(acc.user) as imap:
                    for _ in range(200):
                        imap.append("INBOX", with_id(files[n % len(files)].read_bytes(),
                                                     f"multi-{n}@test"))
                        n += 1
            assert n == 2000 and len(dep.accounts) == 10
            wait_for(lambda: count(store, Ticket) >= 300, 120)
            victim = procs[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_at = time.time()
            wait_for(lambda: count(store, Ticket) >= 2000, 240, step=0.5)
        finally:
            stop(procs)
        with store.session() as s:
            ids = s.scalars(select(Ticket.message_id)).all()
            work = list(s.scalars(select(MailboxWork).order_by(MailboxWork.mailbox,
                                                               MailboxWork.started_at)))
        assert len(ids) == 2000 and len(set(ids)) == 2000
        for acc in dep.accounts.values():
            assert folder_counts(server, acc.user)["INBOX"] == 0
        owners = {w.owner for w in work}
        assert len(owners) >= 3  # the three shared the work
        by_box: dict[str, list[MailboxWork]] = {}
        for w in work:
            by_box.setdefault(w.mailbox, []).append(w)
        def ended(w: MailboxWork) -> float:
            # A pass cut short by the SIGKILL ended, at the latest, when the process died.
            return w.ended_at.timestamp() if w.ended_at is not None else killed_at

        for mailbox, rows in by_box.items():
            for a, b in itertools.pairwise(rows):
                if a.owner != b.owner:
                    assert ended(a) <= b.started_at.timestamp(), (mailbox, a.owner, b.owner)
        victim_name = next((o for o in owners if f":{victim.pid}:" in o), "")
        victims_boxes = {w.mailbox for w in work if w.owner == victim_name}
        after = [w for w in work if w.mailbox in victims_boxes and w.owner != victim_name
                 and w.started_at.timestamp() >= killed_at]
        if after:  # its remaining mailboxes were taken over within the lease time
            first = min(w.started_at.timestamp() for w in after)
            assert first - killed_at <= LEASE + 5
        store.dispose()


@pytest.mark.slow
def test_two_senders_one_killed_send_each_reply_once(tmp_path, pg_url, dovecot):
    """Two daemons share an outbox of 200 approved replies; one is killed mid-way: the relay
    receives 200 replies, each exactly once."""
    if not dovecot.running:
        dovecot.start()
    with SmtpRelay() as relay:
        dep = deploy(dovecot, tmp_path, codes=("38",), store_url=pg_url, smtp_port=relay.port)
        store = Store.open(dep.settings)
        from triage.pipeline import triage_bytes

        raw = (DEV / "065.eml").read_bytes()
        with store.session() as s:
            add_agent(s, dep.settings, "agent38", "correct horse battery", ["38"])
            s.commit()
        store.max_drafts_per_day = 10_000
        for i in range(200):
            one = with_id(raw, f"out-{i}@test").replace(b"aurelie.martin@", f"a{i}.martin@"
                                                          .encode())
            store.record(triage_bytes(one, dep.settings), one, origin=f"test:{i}")
        with store.session() as s:
            agent = s.scalar(select(Agent))
            for ticket in s.scalars(select(Ticket)):
                handle(s, dep.settings, agent, ticket, Event.APPROVE,
                       {"address_confirmed": "yes", "reset_confirmed": "yes"})
            s.commit()
        assert count(store, OutboxItem) == 200
        procs = [start(dep.config_path, tmp_path / f"send-{i}.log") for i in range(2)]
        try:
            wait_for(lambda: len(relay.messages) >= 40, 120)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            wait_for(lambda: _sent(store) == 200, 180, step=0.5)
        finally:
            stop(procs)
        ids = [m.data.split(b"Message-ID: <", 1)[1].split(b">", 1)[0] for m in relay.messages]
        assert len(ids) == 200 and len(set(ids)) == 200
        store.dispose()


def _leases_spread(store: Store, instances: int) -> bool:
    from triage.store import MailboxLease

    with store.session() as s:
        owners = [o for o in s.scalars(select(MailboxLease.owner)) if o]
    return len(set(owners)) == instances and len(owners) == 10


def _sent(store: Store) -> int:
    with store.session() as s:
        return len(s.scalars(select(OutboxItem.id).where(OutboxItem.state == "sent")).all())
