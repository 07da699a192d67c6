"""The same backlog through Dovecot, Cyrus (both namespace settings) and Courier, with the
shipped configuration: every message once in its outcome folder, copies once in Transféré,
replies filed in Sent, and `status` clean. Cyrus and Courier come from `scripts/imap-servers`;
when they are missing the test fails and says how to install them."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from triage.lifecycle import Event
from triage.mailbox.daemon import Daemon
from triage.mailbox.status import format_status, mailbox_status
from triage.review.agents import add_agent
from triage.review.moderation import handle
from triage.store import Agent, Store, Ticket
from triage.testing.courier import CourierServer
from triage.testing.cyrus import CyrusServer
from triage.testing.dovecot import DovecotServer
from triage.testing.intake import Deployment, deploy
from triage.testing.smtp import SmtpRelay

from .conftest import DEV

SERVERS = {
    "dovecot": DovecotServer,
    "cyrus-debian": lambda: CyrusServer(altnamespace=False),
    "cyrus-upstream": lambda: CyrusServer(altnamespace=True),
    "courier": CourierServer,
}
BACKLOG = 40


def with_id(raw: bytes, message_id: str) -> bytes:
    return re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <{message_id}>".encode(), raw, count=1)


def folders(imap: IMAPClient) -> dict[str, list[str]]:
    """Message-IDs (with repeats, \\Deleted ones left out) of every folder, by server name."""
    out: dict[str, list[str]] = {}
    for _flags, _delim, name in imap.list_folders():
        imap.select_folder(name, readonly=True)
        uids = imap.search(["NOT", "DELETED"])
        data = imap.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
        headers = [b"".join(v for k, v in d.items() if k.startswith(b"BODY[HEADER.FIELDS"))
                   for d in data.values()]  # Courier quotes the field name in the key
        out[name] = [m.group(1).decode() for h in headers if (m := re.search(rb"<([^>]+)>", h))]
    return out


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[object]:
    with SERVERS[request.param]() as running:
        yield running


def run_once(dep: Deployment, store: Store) -> None:
    results = Daemon(dep.settings, dep.config_path, store).run_once()
    failed = {k: v for k, v in results.items() if isinstance(v, str)}
    assert not failed, failed


def test_backlog_through_each_server(server, tmp_path):
    """A backlog in two department mailboxes: INBOX empty, each message in one outcome folder,
    the messages routed to the other department copied once into its Transféré, two approved
    replies filed in Sent and their originals in Traité, `status` clean."""
    with SmtpRelay() as relay:
        dep = deploy(server, tmp_path, codes=("38", "73"), smtp_port=relay.port)
        store = Store.open(dep.settings)
        files = sorted(DEV.glob("*.eml"))
        acc38, acc73 = dep.account_of("38"), dep.account_of("73")
        ids = []
        for i in range(BACKLOG):
            ids.append(f"backlog-{i}@test")
            server.append(acc38.user, acc38.password, "INBOX",  # type: ignore[attr-defined]
                          with_id(files[i % len(files)].read_bytes(), ids[-1]))
        routed = (DEV / "006.eml").read_bytes()  # in 38's mailbox, signed from Savoie: 73
        server.append(acc38.user, acc38.password, "INBOX", routed)  # type: ignore[attr-defined]
        routed_id = re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", routed).group(1).decode()
        run_once(dep, store)
        run_once(dep, store)  # a second pass changes nothing
        with store.session() as s:
            add_agent(s, dep.settings, "agent38", "correct horse battery", ["38"])
            s.commit()
            agent = s.scalar(select(Agent))
            # Two replies: the second one's Sent copy goes to a Sent folder that exists (and
            # was just examined), which Courier refused when the mailbox stayed examined.
            drafts = list(s.scalars(select(Ticket).where(
                Ticket.action == "draft", Ticket.department == "38").limit(2)))
            assert len(drafts) == 2
            for ticket in drafts:
                handle(s, dep.settings, agent, ticket, Event.APPROVE,
                       {"body": "Bonjour,\n\nC'est fait.\n", "address_confirmed": "yes",
                        "reset_confirmed": "yes"})
            s.commit()
            answered = sorted(t.message_id for t in drafts)
        run_once(dep, store)
        assert len(relay.messages) == 2
        with server.client(acc38.user) as imap:  # type: ignore[attr-defined]
            in38 = folders(imap)
            special = {str(n) for f, _d, n in imap.list_folders() if b"\\Sent" in f}
        with server.client(acc73.user) as imap:  # type: ignore[attr-defined]
            in73 = folders(imap)
        assert in38["INBOX"] == [] and in73["INBOX"] == []
        outcome = Counter(m for name, got in in38.items() if "Triage" in name for m in got)
        assert set(outcome) == {*ids, routed_id} and set(outcome.values()) == {1}, outcome
        handled = [name for name in in38 if name.endswith("Traité")]
        assert len(handled) == 1 and sorted(in38[handled[0]]) == answered
        with store.session() as s:
            to73 = set(s.scalars(select(Ticket.message_id).where(Ticket.department == "73")))
        assert routed_id in to73
        transferred = [got for name, got in in73.items() if name.endswith("Transféré")]
        assert len(transferred) == 1 and Counter(transferred[0]) == Counter(to73)
        sent = [name for name, got in in38.items() if name.endswith("Sent") and got]
        assert len(sent) == 1 and len(in38[sent[0]]) == 2
        if special:
            assert sent[0] in special  # the server's \Sent mailbox (SPECIAL-USE)
        rows = mailbox_status(dep.settings, store)
        assert all(not r.problems for r in rows), format_status(rows)
        assert sum(r.tickets_created for r in rows) == BACKLOG + 1
        store.dispose()


def test_courier_without_uidplus_ten_passes_copy_each_message_once(tmp_path):
    """Courier with UIDPLUS taken out of its capabilities (no MOVE, no UIDPLUS): after ten
    passes the outcome folders hold each message once, INBOX is empty, `status` is clean."""
    with CourierServer(uidplus=False) as server:
        dep = deploy(server, tmp_path, codes=("38",))
        store = Store.open(dep.settings)
        acc = dep.account_of("38")
        files = sorted(DEV.glob("*.eml"))
        ids = [f"nouidplus-{i}@test" for i in range(30)]
        for i, message_id in enumerate(ids):
            server.append(acc.user, acc.password, "INBOX",
                          with_id(files[i % len(files)].read_bytes(), message_id))
        for _ in range(10):
            run_once(dep, store)
        with server.client(acc.user) as imap:
            found = folders(imap)
            imap.select_folder("INBOX", readonly=True)
            assert imap.search(["ALL"]) == []  # the flagged originals were expunged too
        outcome = Counter(m for name, got in found.items() if "Triage" in name for m in got)
        assert set(outcome) == set(ids) and set(outcome.values()) == {1}, outcome
        rows = mailbox_status(dep.settings, store)
        assert not rows[0].problems, format_status(rows)
        store.dispose()


def test_missing_server_fails_with_how_to_install(tmp_path, monkeypatch):
    """Without the unpacked packages the fixture fails and names scripts/imap-servers."""
    from triage.testing import servers

    monkeypatch.setattr(servers, "ROOT", Path(tmp_path / "nothing"))
    monkeypatch.setattr("triage.testing.courier.ROOT", Path(tmp_path / "nothing"))
    with pytest.raises(servers.ServerNotInstalled, match="scripts/imap-servers"):
        CourierServer()


def test_daemon_on_courier_without_uidplus_copies_each_message_once(tmp_path, daemon):
    """The daemon (0.5 s polls, IDLE) on Courier without UIDPLUS: the flagged originals are
    not copied again pass after pass (they once grew an outcome folder from 45 to 1,350
    messages in 16 s); after a dozen passes each message is in its folder once."""
    from .conftest import query, wait_for

    with CourierServer(uidplus=False) as server:
        dep = deploy(server, tmp_path, codes=("38",))
        acc = dep.account_of("38")
        files = sorted(DEV.glob("*.eml"))
        ids = [f"daemon-{i}@test" for i in range(30)]
        for i, message_id in enumerate(ids):
            server.append(acc.user, acc.password, "INBOX",
                          with_id(files[i % len(files)].read_bytes(), message_id))
        proc = daemon(dep)
        wait_for(lambda: query(dep, "select count(*) from ticket_sources where moved_to is "
                                    "not null") == [(30,)], 60)
        time.sleep(6)  # a dozen more polls, each of which used to copy everything again
        assert proc.proc is not None and proc.proc.poll() is None  # still running
        with server.client(acc.user) as imap:
            found = folders(imap)
        outcome = Counter(m for name, got in found.items() if "Triage" in name for m in got)
        assert set(outcome) == set(ids) and set(outcome.values()) == {1}, outcome
        assert found["INBOX"] == []


@pytest.mark.slow
@pytest.mark.parametrize("uidplus", [True, False], ids=["courier", "courier-no-uidplus"])
def test_sigkills_on_a_server_without_move_lose_and_double_nothing(tmp_path, daemon, uidplus):
    """200 messages on Courier (no MOVE; with and without UIDPLUS), the daemon killed 6 times
    while it works: one ticket per message, each message once in its outcome folder, INBOX
    empty and `status` clean."""
    import random
    import signal
    import subprocess
    import sys

    from .conftest import query, wait_for

    rng = random.Random(16)
    with CourierServer(uidplus=uidplus) as server:
        dep = deploy(server, tmp_path, codes=("38",), imap={"batch_size": 20})
        acc = dep.account_of("38")
        files = sorted(DEV.glob("*.eml"))
        ids = [f"kill-{i}@test" for i in range(200)]
        with server.client(acc.user) as imap:
            for i, message_id in enumerate(ids):
                imap.append("INBOX", with_id(files[i % len(files)].read_bytes(), message_id))

        def moved() -> int:
            rows = query(dep, "select count(*) from ticket_sources where moved_to is not null")
            return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]

        progress = [0]
        for _kill in range(6):
            if progress[-1] == len(ids):
                break  # all done before this kill
            proc = daemon(dep)
            wait_for(lambda: moved() > progress[-1], 60, step=0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            proc.signal(signal.SIGKILL)
            proc.wait(10)
            progress.append(moved())
        assert len([p for p in progress[1:] if 0 < p < len(ids)]) >= 3, progress  # mid-work
        store = Store.open(dep.settings)
        for _ in range(3):
            run_once(dep, store)
        assert query(dep, "select count(*), count(distinct message_id) from tickets") == \
            [(200, 200)]
        with server.client(acc.user) as imap:
            found = folders(imap)
        outcome = Counter(m for name, got in found.items() if "Triage" in name for m in got)
        assert set(outcome) == set(ids) and set(outcome.values()) == {1}, (
            progress, {k: v for k, v in outcome.items() if v > 1})
        assert found["INBOX"] == []
        status = subprocess.run([sys.executable, "-m", "triage", "status", "--config",
                                 str(dep.config_path)], capture_output=True, text=True,
                                timeout=120, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
        store.dispose()
