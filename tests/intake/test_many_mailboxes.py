"""Many mailboxes on few threads: one IDLE hub, polls that skip a pass when nothing is new,
IDLE only on the mailboxes held, and leases shared fairly between instances on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from triage.mailbox.daemon import Daemon
from triage.mailbox.lease import LeaseKeeper, SoleInstance
from triage.mailbox.worker import MailboxWorker
from triage.store import Instance, MailboxLease, Store, Ticket
from triage.testing import DovecotServer
from triage.testing.imapdouble import ImapDoubleServer
from triage.testing.intake import deploy

from .conftest import DEV, wait_for
from .test_double import with_id

#: No scheduled poll during these tests: only IDLE news (or the start-up pass) brings mail in.
NEVER = 3600.0


def tickets(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count(Ticket.id))) or 0)


def test_one_idle_thread_serves_every_mailbox(dovecot: DovecotServer, tmp_path: Path) -> None:
    """Twelve mailboxes, polls off: one IDLE hub thread (no thread per mailbox) sees the mail
    appended to each of them, and each message gets its ticket."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, extra_mailboxes=7, imap={"poll_interval": NEVER})
    store = Store.open(dep.settings)
    daemon = Daemon(dep.settings, dep.config_path, store)
    daemon.start()
    try:
        assert daemon.hub is not None
        hub = daemon.hub
        wait_for(lambda: all(hub.watching(a) for a in dep.accounts), 30)
        names = [t.name for t in threading.enumerate()]
        assert names.count("idle-hub") == 1
        assert not [n for n in names if n.startswith("idle-") and n != "idle-hub"
                    and not n.startswith("idle-open")]
        raw = (DEV / "020.eml").read_bytes()
        for i, account in enumerate(dep.accounts.values()):
            with dovecot.client(account.user) as imap:
                imap.append("INBOX", with_id(raw, f"hub-{i}@test"))
        wait_for(lambda: tickets(store) == len(dep.accounts), 60)
        with store.session() as s:
            seen = set(s.scalars(select(Ticket.message_id)))
        assert seen == {f"hub-{i}@test" for i in range(len(dep.accounts))}
    finally:
        daemon.stop()
        store.dispose()


class CountingGate(SoleInstance):
    """Every mailbox held; counts the passes begun."""

    def __init__(self) -> None:
        self.passes = 0

    def begin_work(self, mailbox: str) -> int:
        self.passes += 1
        return 0


def test_poll_without_new_mail_does_no_pass(tmp_path: Path) -> None:
    """A scheduled poll that finds the folder's UIDNEXT unchanged does no pass; one that finds
    a new message does, and the message gets its ticket."""
    server = ImapDoubleServer()
    dep = deploy(server, tmp_path, codes=("38",))
    store = Store.open(dep.settings)
    box = dep.settings.mailboxes[0]
    gate = CountingGate()
    worker = MailboxWorker(lambda: dep.settings, box, store, server.connect, gate)
    try:
        worker.poll()
        first = gate.passes
        assert first >= 1
        worker.poll()
        worker.poll()
        assert gate.passes == first
        server.deliver(dep.account_of("38").user,
                       with_id((DEV / "020.eml").read_bytes(), "probe-1@test"))
        worker.poll()
        assert gate.passes > first
        assert tickets(store) == 1
    finally:
        worker.disconnect()
        store.dispose()


def test_idle_only_on_the_mailboxes_held(dovecot: DovecotServer, tmp_path: Path,
                                         pg_url: str) -> None:
    """When a second instance comes, this one gives up half of the mailboxes and closes both
    of its connections to each of them (IDLE and work): three instances sharing the
    mailboxes do not each keep connections to all of them."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, extra_mailboxes=5, store_url=pg_url,
                 imap={"poll_interval": NEVER, "lease_seconds": 600})
    store = Store.open(dep.settings)
    addresses = sorted(dep.accounts)
    daemon = Daemon(dep.settings, dep.config_path, store)
    daemon.start()
    other = LeaseKeeper(store, addresses, 600, name="elsewhere:1:other")  # another machine
    try:
        assert daemon.leases is not None and daemon.hub is not None
        leases, hub = daemon.leases, daemon.hub
        assert set(leases.held) == set(addresses)
        wait_for(lambda: all(hub.watching(a) for a in addresses)
                 and all(w.conn is not None for w in daemon.workers.values()), 30)
        for _ in range(3):  # two live instances now: this one gives up half, the other takes it
            other.heartbeat()
            daemon._renew_leases()
        mine = set(leases.held)
        assert len(mine) == len(addresses) // 2
        assert mine.isdisjoint(other.held) and mine | set(other.held) == set(addresses)
        wait_for(lambda: {a for a in addresses if hub.watching(a)} == mine, 30)
        assert set(hub.watches) == mine
        wait_for(lambda: {a for a, w in daemon.workers.items() if w.conn is not None} <= mine,
                 30)

        def sessions(address: str) -> int:
            out = dovecot.doveadm("who", "-1", dep.accounts[address].user)
            return len(out.strip().splitlines()[1:])
        wait_for(lambda: all(sessions(a) == 0 for a in set(addresses) - mine), 30)
    finally:
        daemon.stop()
        other.release_all()
        store.dispose()


def settle(keepers: list[LeaseKeeper], rounds: int = 6) -> list[set[str]]:
    for _ in range(rounds):
        for keeper in keepers:
            keeper.heartbeat()
    return [set(k.held) for k in keepers]


def test_three_instances_share_fairly_and_take_over(tmp_path: Path, pg_url: str) -> None:
    """Three instances started one after the other on PostgreSQL end with 10 of 30 mailboxes
    each, none held twice; when one dies (its heartbeat and leases expire) the two others
    take its mailboxes and hold 15 each."""
    server = ImapDoubleServer()
    dep = deploy(server, tmp_path, codes=("38",), store_url=pg_url)
    store = Store.open(dep.settings)
    mailboxes = [f"box{n:02d}@example.org" for n in range(30)]
    # Names of another machine: only time (here, the rows' expiry) says such an instance died.
    keepers = [LeaseKeeper(store, mailboxes, 60, name=f"elsewhere:{n}:k") for n in (1, 2, 3)]
    try:
        keepers[0].heartbeat()
        assert len(keepers[0].held) == 30  # alone, it takes them all
        held = settle(keepers)
        assert [len(h) for h in held] == [10, 10, 10]
        assert set().union(*held) == set(mailboxes)
        dead = keepers.pop(0)
        past = datetime.now(UTC) - timedelta(seconds=120)
        with store.session() as s:
            s.execute(update(Instance).where(Instance.name == dead.name)
                      .values(heartbeat_at=past))
            s.execute(update(MailboxLease).where(MailboxLease.owner == dead.name)
                      .values(expires_at=past))
            s.commit()
        held = settle(keepers)
        assert [len(h) for h in held] == [15, 15]
        assert held[0] | held[1] == set(mailboxes) and not held[0] & held[1]
    finally:
        for keeper in keepers:
            keeper.release_all()
        store.dispose()
