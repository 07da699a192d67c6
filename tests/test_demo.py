"""`triage demo` end to end: started as a newcomer would, used over HTTP, stopped with Ctrl-C."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from triage.demo.run import addressed_to, sample_messages
from triage.testing.dovecot import free_port

BANNER_TIMEOUT = 120.0


class DemoProcess:
    """`triage demo` in the background; its standard output collected line by line."""

    def __init__(self, imap: str, log: Path) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triage", "demo", "--port", str(self.port), "--imap", imap],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.proc.poll() is not None and text not in self.output:
                pytest.fail(f"the demo exited ({self.proc.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} from the demo within {timeout} s:\n{self.output}")
            time.sleep(0.1)

    def find(self, pattern: str) -> str:
        match = re.search(pattern, self.output)
        assert match, f"{pattern!r} not in the demo's output:\n{self.output}"
        return match.group(1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF field in the page"
    return match.group(1)


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def processes_mentioning(*needles: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
            cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(f"{proc.name}: {cmdline}")
    return found


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields after the name: state, ppid, pgrp. A zombie has ended; only its parent (or
        # init, for orphans) has yet to read its status.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(proc.name))
    return members


def gone(pgid: int, timeout: float = 10) -> bool:
    """True once no live process is left in the group (SIGKILLed ones take a moment)."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def assert_secrets_private(work: Path, imap_data: Path) -> None:
    """The IMAP passwords are random, and no file holding one is readable by other users."""
    config = yaml.safe_load((work / "departments.yaml").read_text("utf-8"))
    secrets = [Path(box["password_file"]).read_text("utf-8").strip()
               for box in config["mailboxes"]]
    assert len(set(secrets)) == len(secrets) and all(len(x) >= 20 for x in secrets)
    assert not any(x.startswith("imap-secret") for x in secrets)
    holding = []
    for folder in (work, imap_data):
        for path in folder.rglob("*"):
            try:
                if path.is_file() and any(x.encode() in path.read_bytes() for x in secrets):
                    holding.append(path)
            except OSError:
                continue
    assert holding, "no file holds the IMAP passwords: the check looked in the wrong place"
    for path in holding:
        assert path.stat().st_mode & 0o004 == 0, f"{path} is world-readable"


def test_sample_messages_cover_every_kind_and_every_department():
    """The shipped samples hold every kind of message and reach all five mailboxes."""
    samples = sample_messages()
    kinds = {re.sub(r"^\d+-([a-z]+).*", r"\1", name) for name, _raw in samples}
    assert kinds == {"reset", "expired", "nominative", "human", "ignore", "quarantine"}
    codes = ["07", "26", "38", "73", "74"]
    assert {addressed_to(raw, codes) for _name, raw in samples} == set(codes)


@pytest.mark.parametrize("imap", ["auto", "pymap"])
def test_demo_triages_serves_sends_and_leaves_nothing(imap, tmp_path):
    """`triage demo` triages the samples, an agent logs in over HTTP and approves a draft, the
    demo's SMTP server receives the reply, and Ctrl-C stops everything and removes it."""
    demo = DemoProcess(imap, tmp_path / "demo.log")
    try:
        demo.wait_for("Press Ctrl-C", BANNER_TIMEOUT)
        url = demo.find(r"ready: open (http://\S+?)/?\n")
        assert url == f"http://127.0.0.1:{demo.port}"
        work = demo.find(r"work folder \(removed at exit\): (\S+)")
        imap_pid = int(demo.find(r"IMAP server: \w+ \(pid (\d+)"))
        imap_data = demo.find(r"IMAP server: .*data in (\S+?)\)")
        imap_port = int(demo.find(r"IMAP server: .* on 127\.0\.0\.1:(\d+)"))
        smtp_port = int(demo.find(r"SMTP server: aiosmtpd on 127\.0\.0\.1:(\d+)"))
        assert "18 sample messages delivered, 18 triaged" in demo.output
        for login in ("admin", "lead38", "agent07", "agent26", "agent38", "agent73", "agent74"):
            assert re.search(rf"^\s+{login}\s", demo.output, re.M), login
        assert ("Dovecot" if imap == "auto" else "pymap") in demo.output
        password = demo.find(r"password for all, new at each run: ([\w-]+)\):")
        assert len(password) >= 16 and password != "demo-triage"
        assert_secrets_private(Path(work), Path(imap_data))

        with httpx.Client(base_url=url, timeout=20) as client:
            page = client.get("/login")
            r = client.post("/login", data={"login": "agent38", "password": password,
                                            "csrf": csrf_of(page.text), "next": "/"})
            assert r.status_code == 303
            queue = client.get("/").text
            ids = sorted({int(n) for n in re.findall(r'href="/tickets/(\d+)"', queue)})
            assert ids, "the agent's queue is empty"
            for ticket in ids:
                page = client.get(f"/tickets/{ticket}").text
                if 'name="reset_confirmed"' in page and f"/tickets/{ticket}/approve" in page:
                    break
            else:
                pytest.fail("no reset draft in the queue of agent38")
            body = html.unescape(re.search(r'<textarea[^>]* name="body"[^>]*>(.*?)</textarea>',
                                           page, re.S).group(1))
            r = client.post(f"/tickets/{ticket}/approve", follow_redirects=True, data={
                "csrf": csrf_of(page), "body": body, "address_confirmed": "yes",
                "reset_confirmed": "yes"})
            assert "Réponse validée" in r.text
            deadline = time.monotonic() + 30
            while True:
                sent = client.get("/demo/sent").text
                if f"[réf. T{ticket}]" in html.unescape(sent):
                    break
                assert time.monotonic() < deadline, "the reply never reached the SMTP server"
                time.sleep(0.3)
            assert "1 réponse(s) reçue(s)" in sent
            assert "aurelie.martin@ville-voiron.fr" in sent
            assert client.get("/readyz").status_code == 200
        with httpx.Client(base_url=url, timeout=20) as other:
            page = other.get("/login")
            r = other.post("/login", data={"login": "agent73", "password": password,
                                           "csrf": csrf_of(page.text), "next": "/"})
            assert r.status_code == 303
            sent = other.get("/demo/sent").text
            assert "0 réponse(s) reçue(s)" in sent and f"[réf. T{ticket}]" not in sent

        demo.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.proc.wait(30) == 0
        time.sleep(0.5)  # let the reader thread take the last line
        assert "nothing left behind" in demo.output
        assert not Path(work).exists() and not Path(imap_data).exists()
        assert gone(demo.proc.pid), "processes left in the demo's group"
        assert gone(imap_pid), f"IMAP server processes left: {group_members(imap_pid)}"
        assert not processes_mentioning(work, imap_data)
        assert refuses(demo.port) and refuses(imap_port) and refuses(smtp_port)
    finally:
        demo.kill()
