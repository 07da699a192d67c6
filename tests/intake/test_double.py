"""The worker's ordering, crash points and fallbacks, against the in-memory IMAP double.

The double (triage.testing.imapdouble) is a fake: it is used here because no real server can
crash a process between two chosen commands on demand, nor switch MOVE, UIDPLUS, a namespace
prefix or APPEND-while-examined off and on; the same properties are checked against Dovecot,
Cyrus and Courier in test_servers.py.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from triage.errors import LoginRefused
from triage.mailbox.lease import SoleInstance
from triage.mailbox.status import mailbox_status
from triage.mailbox.worker import MailboxWorker
from triage.store import Store, Ticket, TicketSource
from triage.store import intake as queries
from triage.testing.imapdouble import Crash, ImapDoubleServer
from triage.testing.intake import Deployment, deploy

from .conftest import DEV

FOLDERS = ("Triage/À valider", "Triage/Agent", "Triage/Ignoré", "Triage/Quarantaine")


def with_id(raw: bytes, message_id: str) -> bytes:
    return re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <{message_id}>".encode(), raw, count=1)


class World:
    """A deployment on a double server, its store, and workers made on demand."""

    def __init__(self, tmp_path: Path, codes: tuple[str, ...] = ("38",),
                 imap: dict[str, object] | None = None, **caps: object) -> None:
        self.server = ImapDoubleServer(**caps)  # type: ignore[arg-type]
        self.dep: Deployment = deploy(self.server, tmp_path, codes=codes, imap=imap)
        self.store = Store.open(self.dep.settings)

    def user(self, code: str = "38") -> str:
        return self.dep.account_of(code).user

    def worker(self, code: str = "38") -> MailboxWorker:
        """A fresh worker: a new process after a crash."""
        box = self.dep.settings.mailbox_of(f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr")
        assert box is not None
        return MailboxWorker(lambda: self.dep.settings, box, self.store, self.server.connect,
                             SoleInstance())

    def backlog(self, n: int, code: str = "38") -> None:
        files = sorted(DEV.glob("*.eml"))
        for i in range(n):
            self.server.deliver(self.user(code), with_id(files[i % len(files)].read_bytes(),
                                                          f"double-{code}-{i}@test"))

    def outcome_ids(self, code: str = "38") -> Counter[str]:
        """Message-IDs in the outcome folders (server names), with repeats."""
        user = self.user(code)
        found: Counter[str] = Counter()
        for name in self.server.mailboxes[user]:
            if name != "INBOX":
                found.update(self.server.message_ids(user, name))
        return found

    def tickets(self) -> int:
        with self.store.session() as s:
            return int(s.scalar(select(func.count(Ticket.id))) or 0)

    def waiting_in_store(self, code: str = "38") -> int:
        with self.store.session() as s:
            return int(s.scalar(select(func.count(TicketSource.id)).where(
                TicketSource.mailbox == f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr",
                TicketSource.moved_to.is_(None))) or 0)


@pytest.mark.parametrize("uidplus", [False, True])
def test_without_move_ten_passes_hold_each_message_once(tmp_path, uidplus):
    """Without MOVE (with or without UIDPLUS) ten passes leave each message once in its
    outcome folder and none in INBOX."""
    world = World(tmp_path, move=False, uidplus=uidplus)
    world.backlog(40)
    worker = world.worker()
    for _ in range(10):
        worker.process_once()
    ids = world.outcome_ids()
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert world.server.message_ids(world.user(), "INBOX", deleted=True) == []
    assert world.tickets() == 40


def test_another_clients_deleted_message_survives_without_uidplus(tmp_path):
    """Without MOVE and UIDPLUS, a message another client flagged \\Deleted is never expunged
    by us; ours stay flagged, are skipped, and are never copied twice."""
    world = World(tmp_path, move=False, uidplus=False)
    world.server.deliver(world.user(), with_id((DEV / "018.eml").read_bytes(), "theirs@x"),
                         flags=["\\Deleted"])
    world.backlog(10)
    worker = world.worker()
    for _ in range(10):
        worker.process_once()
    ids = world.outcome_ids()
    assert len(ids) == 10 and set(ids.values()) == {1}
    inbox = world.server.message_ids(world.user(), "INBOX", deleted=True)
    assert "<theirs@x>" in inbox
    assert world.tickets() == 10  # the other client's deleted message is not triaged


def test_tickets_are_committed_before_any_move(tmp_path):
    """A crash just before the first MOVE leaves every fetched message with its ticket and in
    INBOX; the next worker only moves them."""
    world = World(tmp_path)
    world.backlog(30)
    world.server.crash_before("MOVE")
    with pytest.raises(Crash):
        world.worker().process_once()
    assert world.tickets() == 30
    assert len(world.server.message_ids(world.user(), "INBOX")) == 30
    counts = world.worker().process_once()
    assert (counts.created, counts.moved) == (0, 30)
    assert set(world.outcome_ids().values()) == {1}


def test_crash_between_move_and_commit_is_repaired(tmp_path):
    """A crash after the MOVE and before its commit: the next pass records where the messages
    went, and status reconciles (exit-clean) with no message lost or doubled."""
    world = World(tmp_path)
    world.backlog(30)
    world.server.crash_after("MOVE")
    with pytest.raises(Crash):
        world.worker().process_once()
    inbox = len(world.server.message_ids(world.user(), "INBOX"))
    assert world.waiting_in_store() > inbox  # some recorded as waiting, although moved
    counts = world.worker().process_once()
    assert counts.repaired > 0 and world.waiting_in_store() == 0
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert rows[0].problems == [] and rows[0].tickets_created == 30
    assert len(world.outcome_ids()) == 30 and set(world.outcome_ids().values()) == {1}


def test_status_itself_repairs_after_a_crash(tmp_path):
    """`status` right after a crash between MOVE and commit finds the moves on the server."""
    world = World(tmp_path)
    world.backlog(12)
    world.server.crash_after("MOVE")
    with pytest.raises(Crash):
        world.worker().process_once()
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert rows[0].repaired > 0 and rows[0].problems == []


@pytest.mark.parametrize("uidplus", [False, True])
def test_crash_between_copy_and_flag_copies_once(tmp_path, uidplus):
    """Without MOVE, a crash after the COPY and before the \\Deleted flag: the next pass finds
    the copy in the target folder and does not copy the message again."""
    world = World(tmp_path, move=False, uidplus=uidplus)
    world.backlog(20)
    world.server.crash_after("COPY")
    with pytest.raises(Crash):
        world.worker().process_once()
    worker = world.worker()
    for _ in range(3):
        worker.process_once()
    ids = world.outcome_ids()
    assert len(ids) == 20 and set(ids.values()) == {1}
    assert world.server.message_ids(world.user(), "INBOX", deleted=True) == []


def test_namespace_prefix_puts_the_folders_under_it(tmp_path):
    """On a server whose personal namespace is "INBOX." (Courier, Debian's Cyrus), the
    configured Triage/… folders are made under INBOX. and the messages reach them."""
    world = World(tmp_path, prefix="INBOX.", delimiter=".", move=False)
    world.backlog(10)
    world.worker().process_once()
    names = set(world.server.mailboxes[world.user()])
    assert names >= {"INBOX"} and all(n == "INBOX" or n.startswith("INBOX.Triage.")
                                      for n in names), names
    assert len(world.outcome_ids()) == 10


def test_copies_reach_transferred_when_append_to_examined_is_refused(tmp_path):
    """A server that refuses APPEND to the examined mailbox (Courier) still gets the copy
    owed to another department, once, and the pass does not fail."""
    world = World(tmp_path, codes=("38", "73"), append_to_examined=False)
    world.server.deliver(world.user("38"), (DEV / "006.eml").read_bytes())  # routed to 73
    world.worker("38").process_once()
    for _ in range(3):
        world.worker("73").process_once()
    transferred = world.server.message_ids(world.user("73"), "Triage/Transféré")
    assert len(transferred) == 1
    assert ("APPEND", "Triage/Transféré") in world.server.commands
    with world.store.session() as s:
        assert queries.owed_transfer_summary(s, world.dep.settings.mailboxes[1].address)[0] == 0


def test_refused_login_is_permanent_and_status_names_it(tmp_path):
    """A refused login is a permanent error: the worker records it as such, and status says
    the mailbox is refused and needs an admin."""
    world = World(tmp_path)
    world.server.passwords[world.user()] = "changed"
    worker = world.worker()
    with pytest.raises(LoginRefused):
        worker.process_once()
    worker.poll()
    assert worker.last_error is not None and worker.last_error.startswith("permanent:")
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert any(p.startswith("refused") for p in rows[0].problems), rows[0].problems


def test_identity_collision_with_another_writer_is_the_duplicate_case(tmp_path, monkeypatch,
                                                                      caplog):
    """Another instance records the same message between our read and our commit: the batch
    is recorded again and finds its ticket, with no traceback and the pass complete. (The
    other writer is simulated by recording the message from a second session.)"""
    world = World(tmp_path)
    world.backlog(3)
    original = Store.record_batch
    raced = []

    def racing(self, s, items):  # type: ignore[no-untyped-def]
        if not raced:
            raced.append(True)
            item = items[0]
            self.record(item.outcome, item.raw, origin="imap:other")
        return original(self, s, items)

    monkeypatch.setattr(Store, "record_batch", racing)
    counts = world.worker().process_once()
    assert (counts.seen, counts.created, counts.matched) == (3, 2, 1)
    assert world.tickets() == 3
    assert "Traceback" not in caplog.text


def test_late_idle_news_makes_status_say_idle_is_not_effective(tmp_path, monkeypatch):
    """Mail found by the scheduled polls and announced by IDLE a minute later, three times in
    a row (Cyrus without idled, Courier without enhanced IDLE): status says IDLE is not
    effective; mail announced in time clears it. (The clock is simulated.)"""
    import triage.mailbox.idle as idle_module

    world = World(tmp_path)
    worker = world.worker()
    clock = [1000.0]
    monkeypatch.setattr(idle_module.time, "monotonic", lambda: clock[0])
    for _ in range(3):
        worker.idle.judge(announced=False, scheduled=True, found=True)
        clock[0] += 60
        worker.idle.judge(announced=True, scheduled=False, found=False)
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert any("IDLE not effective" in p for p in rows[0].problems), rows[0].problems
    worker.idle.judge(announced=True, scheduled=False, found=True)
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert rows[0].problems == []


def test_idle_news_in_time_is_never_judged_late(tmp_path, monkeypatch):
    """A poll that finds mail a moment before IDLE announces it (Dovecot) is not a miss."""
    import triage.mailbox.idle as idle_module

    world = World(tmp_path)
    worker = world.worker()
    clock = [1000.0]
    monkeypatch.setattr(idle_module.time, "monotonic", lambda: clock[0])
    for _ in range(10):
        worker.idle.judge(announced=False, scheduled=True, found=True)
        clock[0] += 1
        worker.idle.judge(announced=True, scheduled=False, found=False)
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert rows[0].problems == [] and rows[0].idle is None


def test_readyz_tells_a_refusal_from_an_outage(tmp_path):
    """/readyz's lines say « refused » for a permanent error (login refused) and
    « unreachable » for a transient one (the connection dropped)."""
    from triage.errors import ImapTransient
    from triage.metrics import readiness

    world = World(tmp_path, codes=("38", "73"))
    world.server.passwords[world.user("38")] = "changed"
    world.worker("38").poll()
    world.server.fail("SELECT", ImapTransient)
    world.worker("73").poll()
    ok, lines = readiness(world.dep.settings, world.store)
    assert not ok
    assert any("ddfip38" in line and ": refused: permanent:" in line for line in lines), lines
    assert any("ddfip73" in line and ": unreachable: transient:" in line for line in lines), lines


def test_a_refused_folder_names_the_folder_and_the_command(tmp_path):
    """Folders configured absolute ("/Triage/…") on a server that only accepts them under its
    namespace: the pass fails with a permanent error naming the command and the folder."""
    from triage.errors import FolderRefused

    absolute = {k: f"/Triage/{k}" for k in ("draft", "human", "ignore", "quarantine")}
    world = World(tmp_path, imap={"folders": absolute}, prefix="INBOX.", delimiter=".")
    world.backlog(2)
    with pytest.raises(FolderRefused) as refused:
        world.worker().process_once()
    assert refused.value.command == "CREATE" and refused.value.folder.startswith("Triage.")
    assert f"CREATE « {refused.value.folder} »" in str(refused.value)
    assert refused.value.kind == "permanent"


def test_status_says_when_mail_waits_too_long_and_copies_are_owed(tmp_path):
    """A message waiting an hour in INBOX and a copy owed for an hour: status names both."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    world = World(tmp_path, codes=("38", "73"))
    world.server.deliver(world.user("38"), (DEV / "006.eml").read_bytes())  # routed to 73
    world.worker("38").process_once()
    with world.store.session() as s:
        s.execute(update(Ticket).values(created_at=datetime.now(UTC) - timedelta(hours=1)))
        s.commit()
    uid = world.server.deliver(world.user("38"), (DEV / "018.eml").read_bytes())
    world.server.folder(world.user("38"), "INBOX").messages[uid].arrived -= timedelta(hours=1)
    rows = {r.address[:7]: r for r in mailbox_status(world.dep.settings, world.store,
                                                      world.server.connect)}
    assert any("waiting, the oldest for" in p for p in rows["ddfip38"].problems)
    assert any("owed" in p for p in rows["ddfip73"].problems)


def test_status_columns_fit_long_folder_names(tmp_path):
    """A long folder name (INBOX.Triage.Quarantaine) keeps the counts in one column."""
    from triage.mailbox.status import MailboxStatus, format_status

    row = MailboxStatus("a@b", "ok", None, None, 0, 0)
    row.folders = {"INBOX/Triage/Quarantaine/Longue": (3, 3), "INBOX": (0, 0)}
    lines = [line for line in format_status([row]).splitlines() if line.startswith("    ")]
    assert len({line.index(" / ") for line in lines}) == 1


@pytest.mark.parametrize("uidplus", [False, True])
def test_crash_after_the_deleted_flag_is_repaired_and_expunged(tmp_path, uidplus):
    """Without MOVE, a crash after the copy and the \\Deleted flag, before the commit: the next
    passes record the move (the flagged original counts as gone), expunge the original, copy
    nothing twice, and status is clean (found by a SIGKILL campaign on Courier)."""
    world = World(tmp_path, move=False, uidplus=uidplus)
    world.backlog(20)
    world.server.crash_after("STORE")
    with pytest.raises(Crash):
        world.worker().process_once()
    worker = world.worker()
    for _ in range(2):
        worker.process_once()
    ids = world.outcome_ids()
    assert len(ids) == 20 and set(ids.values()) == {1}
    assert world.server.message_ids(world.user(), "INBOX", deleted=True) == []
    rows = mailbox_status(world.dep.settings, world.store, world.server.connect)
    assert rows[0].problems == []
