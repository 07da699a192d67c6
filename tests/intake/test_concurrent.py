"""The same messages arriving in two mailboxes worked at the same moment (PostgreSQL)."""

from __future__ import annotations

import logging
import re
import threading

from triage.mailbox.connection import opener
from triage.mailbox.lease import SoleInstance
from triage.mailbox.worker import Counts, MailboxWorker
from triage.store import Store
from triage.testing.intake import deploy

from .conftest import DEV, query


def test_same_messages_in_two_mailboxes_at_once_are_the_duplicate_case(dovecot, tmp_path,
                                                                        pg_url, caplog):
    """Two workers triage the same 60 messages from two mailboxes at the same moment: each
    message is one ticket seen twice, both passes complete, and nothing is logged as an error
    (the identity collisions are retried as "seen again", without a traceback)."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("26", "38"), store_url=pg_url,
                 imap={"batch_size": 10})
    files = sorted(DEV.glob("*.eml"))
    for code in ("26", "38"):
        acc = dep.account_of(code)
        with dovecot.client(acc.user) as imap:
            for i in range(60):
                imap.append("INBOX", re.sub(rb"(?im)^Message-ID:.*$",
                                            f"Message-ID: <both-{i}@test>".encode(),
                                            files[i % len(files)].read_bytes(), count=1))
    store = Store.open(dep.settings)
    start = threading.Barrier(2)
    results: dict[str, Counts | BaseException] = {}

    def work(code: str) -> None:
        box = dep.settings.mailbox_of(f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr")
        assert box is not None
        worker = MailboxWorker(lambda: dep.settings, box, store, opener(lambda: dep.settings),
                               SoleInstance())
        start.wait()
        try:
            results[code] = worker.process_once()
        except BaseException as exc:  # reported below
            results[code] = exc
        finally:
            worker.disconnect()

    caplog.set_level(logging.INFO, logger="triage")
    threads = [threading.Thread(target=work, args=(code,)) for code in ("26", "38")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    store.dispose()
    assert all(isinstance(r, Counts) for r in results.values()), results
    assert query(dep, "select count(*), count(distinct message_id) from tickets") == [(60, 60)]
    assert query(dep, "select count(*) from ticket_sources") == [(120,)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
