"""Two web processes on one PostgreSQL store: concurrent approves of one draft send one reply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from triage.pipeline import triage_bytes
from triage.review.agents import add_agent
from triage.send.sender import send_due
from triage.store import OutboxItem, Store, Ticket
from triage.testing.dovecot import free_port
from triage.testing.smtp import SmtpRelay

from .conftest import DEV, PASSWORD, csrf_of, make_settings

TICKETS = 4
APPROVERS = 6  # three per web process


def _web(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "triage", "web", "--port", str(port),
                             "--config", str(config)], stdout=fh, stderr=fh,
                            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _session(base: str) -> tuple[httpx.Client, str]:
    """A logged-in agent 38 on one web process, and its CSRF token."""
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    client = httpx.Client(base_url=base, timeout=30)
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"login": "agent38", "password": PASSWORD, "csrf": token,
                                    "next": "/"})
    assert r.status_code in (200, 303), r.text
    return client, csrf_of(client.get("/").text)


def test_six_concurrent_approves_over_two_processes_send_one_reply(tmp_path, pg_url):
    """Six agents' approves of one draft, at once, through two web processes on PostgreSQL:
    one outbox item per draft and exactly one reply at the relay, for each of four tickets."""
    with SmtpRelay() as relay:
        settings = make_settings(tmp_path, store={"url": pg_url}, mailboxes=[],
                                 smtp={"host": "127.0.0.1", "port": relay.port,
                                       "security": "plain", "timeout": 10})
        store = Store.open(settings)
        with store.session() as s:
            add_agent(s, settings, "agent38", PASSWORD, ["38"])
            s.commit()
        raw = (DEV / "065.eml").read_bytes()
        ids = []
        for i in range(TICKETS):
            one = raw.replace(b"Message-ID: <", f"Message-ID: <c{i}.".encode(), 1).replace(
                b"aurelie.martin@", f"aurelie{i}.martin@".encode())
            ticket, _ = store.record(triage_bytes(one, settings), one, origin=f"test:{i}")
            assert ticket.action == "draft"
            ids.append(ticket.id)
        ports = [free_port(), free_port()]
        procs = [_web(settings.source, p, tmp_path / f"web-{p}.log") for p in ports]
        try:
            sessions = [_session(f"http://127.0.0.1:{p}") for p in ports]
            for ticket in ids:
                barrier = threading.Barrier(APPROVERS)
                codes: list[int] = []

                def approve(k: int, ticket: int = ticket, barrier: threading.Barrier = barrier,
                            codes: list[int] = codes) -> None:
                    client, csrf = sessions[k % 2]
                    barrier.wait()
                    r = client.post(f"/tickets/{ticket}/approve",
                                    data={"csrf": csrf, "address_confirmed": "yes",
                                                        "reset_confirmed": "yes"})
                    codes.append(r.status_code)

                threads = [threading.Thread(target=approve, args=(k,))
                           for k in range(APPROVERS)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                assert codes == [303] * APPROVERS, codes
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        with store.session() as s:
            per_draft = dict(s.execute(select(OutboxItem.draft_id, func.count(OutboxItem.id))
                                       .group_by(OutboxItem.draft_id)).all())
            assert sorted(per_draft.values()) == [1] * TICKETS, per_draft
            assert set(s.scalars(select(Ticket.status))) == {"approved"}
        while send_due(settings, store, "test"):
            pass
        assert sorted(m.rcpt_tos[0] for m in relay.messages) == [
            f"aurelie{i}.martin@ville-voiron.fr" for i in range(TICKETS)]
        store.dispose()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback web processes are reached directly, whatever proxy the machine sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
