"""`triage run --once`: leases renewed through a long run, and every copy owed made before
it exits (real Dovecot)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from triage.mailbox.daemon import Daemon
from triage.mailbox.worker import Counts, MailboxWorker
from triage.store import MailboxLease, Store
from triage.testing.intake import deploy

from .conftest import DEV


def test_a_long_first_mailbox_does_not_make_the_next_ones_skipped(dovecot, tmp_path,
                                                                   monkeypatch):
    """With 3 s leases and a first mailbox that takes 3 s, the first keeps its lease to the
    end of its pass and the second mailbox is still triaged (leases renewed during the run,
    not taken once at the start). The slowness is injected into the first pass."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38", "73"), imap={"lease_seconds": 3})
    acc = dep.account_of("73")
    dovecot.append(acc.user, acc.password, "INBOX", (DEV / "069.eml").read_bytes())
    original = MailboxWorker._pass
    held_at_end: list[bool] = []

    def slow_for_38(self: MailboxWorker) -> Counts:
        if self.box.address.startswith("ddfip38"):
            time.sleep(3)
            with self.store.session() as s:  # its own lease is still valid in the database
                row = s.get(MailboxLease, self.box.address)
                expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(
                    tzinfo=UTC)
                held_at_end.append(row.owner is not None and expires > datetime.now(UTC))
        return original(self)

    monkeypatch.setattr(MailboxWorker, "_pass", slow_for_38)
    store = Store.open(dep.settings)
    results = Daemon(dep.settings, dep.config_path, store).run_once()
    store.dispose()
    second = results["ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr"]
    assert isinstance(second, Counts) and not second.skipped and second.created == 1, results
    assert held_at_end == [True]


def test_copies_owed_to_a_mailbox_worked_earlier_are_made_before_exit(dovecot, tmp_path):
    """A message in the mailbox worked last, routed to the department whose mailbox was worked
    first: its copy is in that mailbox's Transféré when `run --once` returns."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("73", "38"))  # 73 is worked first
    acc = dep.account_of("38")
    dovecot.append(acc.user, acc.password, "INBOX", (DEV / "006.eml").read_bytes())  # to 73
    store = Store.open(dep.settings)
    results = Daemon(dep.settings, dep.config_path, store).run_once()
    store.dispose()
    first = results["ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr"]
    assert isinstance(first, Counts) and first.transferred == 1, results
    with dovecot.client(dep.account_of("73").user) as imap:
        names = [n for _f, _d, n in imap.list_folders() if n.endswith("Transféré")]
        assert len(names) == 1
        assert imap.folder_status(names[0], [b"MESSAGES"])[b"MESSAGES"] == 1
