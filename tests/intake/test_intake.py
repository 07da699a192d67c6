"""The intake daemon against a real Dovecot: every message once, in its folder, never lost."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time

import pytest

from triage.testing import DovecotServer
from triage.testing.intake import Deployment, deploy

from .conftest import DEV, query, wait_for

OUTCOME = {"draft": "Triage/À valider", "human": "Triage/Agent", "ignore": "Triage/Ignoré",
           "quarantine": "Triage/Quarantaine"}


def with_id(raw: bytes, message_id: str) -> bytes:
    """The message with its Message-ID replaced (a new, distinct message)."""
    return re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <{message_id}>".encode(), raw, count=1)


def tickets(deployment: Deployment) -> int:
    rows = query(deployment, "select count(*) from tickets")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def run_once(deployment: Deployment) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage", "run", "--once", "--log-json",
                           "--config", str(deployment.config_path)],
                          capture_output=True, text=True, timeout=300, check=False)


def folder_counts(server: DovecotServer, user: str) -> dict[str, int]:
    with server.client(user) as imap:
        out = {}
        for _flags, delim, name in imap.list_folders():
            # Report names with "/" whatever the server's hierarchy delimiter is.
            key = name.replace(delim.decode(), "/") if delim else name
            out[key] = int(imap.folder_status(name, [b"MESSAGES"])[b"MESSAGES"])
        return out


def server_name(server: DovecotServer, user: str, folder: str) -> str:
    with server.client(user) as imap:
        delim = imap.list_folders("", "")[0][1].decode()
    return folder.replace("/", delim)


def test_once_triages_every_message_into_its_folder(dovecot, deployment):
    """`run --once` makes one ticket per message, moves each to its outcome folder, exits 0."""
    account = deployment.account_of("38")
    files = sorted(DEV.glob("*.eml"))
    for f in files:
        dovecot.append(account.user, account.password, "INBOX", f.read_bytes())
    run = run_once(deployment)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"{len(files)} triaged, {len(files)} new tickets" in run.stdout
    rows = query(deployment, "select action, count(*) from tickets group by action")
    by_action = dict(rows)  # type: ignore[arg-type]
    assert sum(by_action.values()) == len(files)
    counts = folder_counts(dovecot, account.user)
    assert counts["INBOX"] == 0
    for action, folder in OUTCOME.items():
        assert counts.get(folder, 0) == by_action.get(action, 0)
    # The daemon never marked anything read: people may work from their mail client too.
    with dovecot.client(account.user) as imap:
        imap.select_folder(server_name(dovecot, account.user, OUTCOME["draft"]), readonly=True)
        flags = imap.get_flags(imap.search(["ALL"]))
        assert all(b"\\Seen" not in f for f in flags.values())
    again = run_once(deployment)
    assert again.returncode == 0 and "0 triaged, 0 new tickets" in again.stdout


def test_message_routed_elsewhere_is_copied_to_that_department(dovecot, deployment):
    """A message the rules place in 73 is copied into the 73 mailbox's Transféré folder."""
    raw = (DEV / "006.eml").read_bytes()  # delivered to 38, signed from a Savoie commune
    dovecot.append(deployment.account_of("38").user, deployment.account_of("38").password,
                   "INBOX", raw)
    assert run_once(deployment).returncode == 0
    assert query(deployment, "select department from tickets") == [("73",)]
    assert folder_counts(dovecot, deployment.account_of("73").user)["Triage/Transféré"] == 1
    assert run_once(deployment).returncode == 0  # a second pass does not copy it again
    assert folder_counts(dovecot, deployment.account_of("73").user)["Triage/Transféré"] == 1


def test_same_message_in_two_mailboxes_is_one_ticket(dovecot, deployment):
    """One message delivered to two department mailboxes gives one ticket seen twice."""
    raw = (DEV / "018.eml").read_bytes()
    for code in ("26", "38"):
        acc = deployment.account_of(code)
        delivered = f"Delivered-To: ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr\r\n".encode()
        dovecot.append(acc.user, acc.password, "INBOX", delivered + raw)
    assert run_once(deployment).returncode == 0
    assert query(deployment, "select count(*) from tickets") == [(1,)]
    assert query(deployment, "select count(*) from ticket_sources") == [(2,)]


def test_two_messages_with_one_message_id_are_two_tickets(dovecot, deployment):
    """A different message that reuses a Message-ID is not dropped as a duplicate."""
    acc = deployment.account_of("38")
    dovecot.append(acc.user, acc.password, "INBOX", with_id((DEV / "018.eml").read_bytes(), "x@y"))
    dovecot.append(acc.user, acc.password, "INBOX", with_id((DEV / "063.eml").read_bytes(), "x@y"))
    assert run_once(deployment).returncode == 0
    assert query(deployment, "select count(*) from tickets where message_id='x@y'") == [(2,)]


def test_uidvalidity_change_resynchronises_without_duplicates(dovecot, deployment):
    """Messages whose tickets exist, seen again under a new UIDVALIDITY, get no new ticket."""
    acc = deployment.account_of("38")
    raws = [with_id((DEV / f).read_bytes(), f"uv-{f}") for f in ("020.eml", "029.eml", "045.eml")]
    for raw in raws:
        dovecot.append(acc.user, acc.password, "INBOX", raw)
    assert run_once(deployment).returncode == 0
    # The folder is rebuilt with the same messages (a server migration): new UIDVALIDITY.
    dovecot.recreate_folder(acc.user, "INBOX")
    for raw in raws:
        dovecot.append(acc.user, acc.password, "INBOX", raw)
    run = run_once(deployment)
    assert run.returncode == 0
    assert query(deployment, "select count(*) from tickets") == [(3,)]
    assert "UIDVALIDITY changed" in run.stderr and "3 already had a ticket" in run.stderr
    assert folder_counts(dovecot, acc.user)["INBOX"] == 0


def test_large_attachment_is_not_downloaded(dovecot, deployment):
    """A message with a 3 MB attachment is triaged from its text; the attachment stays put."""
    acc = deployment.account_of("74")
    text = (DEV / "060.eml").read_bytes()
    head, _, body = text.partition(b"\n\n")
    head = re.sub(rb"(?im)^Content-(Type|Transfer-Encoding):.*\n?", b"", head)
    blob = b"QUJD" * (3 * 1024 * 1024 // 4)
    raw = (head + b"\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\n"
           b"Content-Type: text/plain; charset=utf-8\n\n" + body + b"\n--B\n"
           b"Content-Type: application/pdf; name=\"scan.pdf\"\n"
           b"Content-Disposition: attachment; filename=\"scan.pdf\"\n"
           b"Content-Transfer-Encoding: base64\n\n" + blob + b"\n--B--\n")
    dovecot.append(acc.user, acc.password, "INBOX", raw)
    assert run_once(deployment).returncode == 0
    rows = query(deployment, "select action, template, raw_size from tickets")
    assert rows[0][:2] == ("draft", "expired_password")
    assert rows[0][2] < 100_000  # the stored text, not the 3 MB
    stored = query(deployment, "select raw from tickets")[0][0]
    assert b"X-Triage-Partial" in stored and b"scan.pdf" in stored


def test_unreachable_server_fails_once_clearly(tmp_path):
    """`run --once` against a server that is down exits 1 with one line per mailbox."""
    with DovecotServer() as server:
        dep = deploy(server, tmp_path, codes=("38",))
    run = run_once(dep)
    assert run.returncode == 1
    assert "FAILED" in run.stderr and "ddfip38" in run.stderr
    assert "Traceback" not in run.stderr


def test_idle_ticket_within_two_seconds(dovecot, deployment, daemon):
    """With the daemon idling, an appended message has its ticket within 2 seconds."""
    proc = daemon(deployment)
    wait_for(lambda: "daemon started" in proc.log, 20)
    time.sleep(1.5)  # let the IDLE watchers settle in
    acc = deployment.account_of("26")
    for i in range(3):
        start = time.monotonic()
        dovecot.append(acc.user, acc.password, "INBOX",
                       with_id((DEV / "020.eml").read_bytes(), f"idle-{i}@test"))
        wait_for(lambda i=i: query(deployment, "select count(*) from tickets where "
                                               f"message_id='idle-{i}@test'") == [(1,)], 2.0)
        assert time.monotonic() - start < 2.0


def test_sigterm_stops_within_five_seconds(dovecot, deployment, daemon):
    """SIGTERM ends the daemon cleanly within 5 seconds, even while it idles."""
    proc = daemon(deployment)
    wait_for(lambda: "daemon started" in proc.log, 20)
    time.sleep(1)
    start = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(5) == 0
    assert time.monotonic() - start < 5


def test_sighup_refuses_invalid_config_and_keeps_running(dovecot, deployment, daemon):
    """An invalid edit is refused with one log line; the daemon keeps triaging."""
    proc = daemon(deployment)
    wait_for(lambda: "daemon started" in proc.log, 20)
    good = deployment.config_path.read_text("utf-8")
    deployment.config_path.write_text(good.replace("batch_size:", "batch_sise:"), "utf-8")
    proc.signal(signal.SIGHUP)
    wait_for(lambda: "configuration reload refused" in proc.log, 10)
    assert "batch_sise" in proc.log
    acc = deployment.account_of("07")
    dovecot.append(acc.user, acc.password, "INBOX", (DEV / "029.eml").read_bytes())
    wait_for(lambda: query(deployment, "select count(*) from tickets") == [(1,)], 10)


def test_dovecot_outage_then_recovery(tmp_path, daemon):
    """Dovecot stopped for 30 s: the daemon reconnects by itself and triages what arrived."""
    with DovecotServer() as server:
        dep = deploy(server, tmp_path, codes=("73",))
        acc = dep.account_of("73")
        proc = daemon(dep)
        wait_for(lambda: "daemon started" in proc.log, 20)
        server.append(acc.user, acc.password, "INBOX", (DEV / "069.eml").read_bytes())
        wait_for(lambda: query(dep, "select count(*) from tickets") == [(1,)], 10)
        server.stop()
        time.sleep(30)
        server.start()
        # Mail that arrived while the server was down (delivered once it is back).
        for name in ("013.eml", "015.eml"):
            server.append(acc.user, acc.password, "INBOX", (DEV / name).read_bytes())
        wait_for(lambda: query(dep, "select count(*) from tickets") == [(3,)], 40)
        assert "mailbox unreachable" in proc.log
        assert "reconnected" in proc.log


TOTAL = 800


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path, daemon):
    """800 messages, the daemon killed 10 times mid-work: each message has one ticket and sits
    in its outcome folder, and `triage status` exits 0 with the store's counts."""
    rng = random.Random(20261127)
    with DovecotServer() as server:
        dep = deploy(server, tmp_path, codes=("38",), imap={"batch_size": 25})
        acc = dep.account_of("38")
        files = sorted(DEV.glob("*.eml"))
        with server.client(acc.user) as imap:
            # Enough mail that ten lives of a fast daemon, each killed within 0.2 s of its first
            # commit, do not finish it (500 were all done by the tenth life once the engine got
            # faster, and the tenth then waited in vain for new work).
            for i in range(TOTAL):
                raw = with_id(files[i % len(files)].read_bytes(), f"crash-{i}@test")
                imap.append("INBOX", raw)
        progress = [0]
        for _kill in range(10):
            proc = daemon(dep)
            # Kill it while it works: once it has committed something new, after a random
            # extra moment (mid-batch, mid-move, mid-commit…).
            wait_for(lambda: tickets(dep) > progress[-1], 30, step=0.01)
            time.sleep(rng.uniform(0.0, 0.2))
            proc.signal(signal.SIGKILL)
            proc.wait(10)
            progress.append(tickets(dep))
        # The kills really fell while work was in progress, not after it was all done.
        assert len([p for p in progress[1:] if 0 < p < TOTAL]) >= 8, progress
        final = run_once(dep)
        assert final.returncode == 0, final.stderr[-2000:]
        totals = query(dep, "select count(*), count(distinct message_id) from tickets")
        assert totals == [(TOTAL, TOTAL)]
        # status tells the truth after the crashes: nothing missing, the counts of the store.
        status = subprocess.run([sys.executable, "-m", "triage", "status", "--config",
                                 str(dep.config_path)], capture_output=True, text=True,
                                timeout=120, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"tickets created: {TOTAL}" in status.stdout and "MISSING" not in status.stdout
        counts = folder_counts(server, acc.user)
        assert counts["INBOX"] == 0
        by_action = dict(query(dep, "select action, count(*) from tickets group by action"))
        for action, folder in OUTCOME.items():
            assert counts.get(folder, 0) == by_action.get(action, 0), (folder, counts, by_action)
        # Each ticket's message sits in the folder of its action.
        with server.client(acc.user) as imap:
            for action, folder in OUTCOME.items():
                if not by_action.get(action):
                    continue
                imap.select_folder(server_name(server, acc.user, folder), readonly=True)
                data = imap.fetch(imap.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                ids = {re.search(rb"<([^>]+)>", d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]).group(1)
                       .decode() for d in data.values()}
                expected = {r[0] for r in query(dep, "select message_id from tickets "
                                                     f"where action='{action}'")}
                assert ids == expected
