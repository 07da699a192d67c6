"""Throwaway Cyrus and Courier IMAP servers: what they share (ports, processes, users, clients).

Debian's ``cyrus-imapd`` and ``courier-imap`` conflict with ``dovecot-imapd`` as packages, so
``scripts/imap-servers`` installs their non-conflicting parts with apt and unpacks the two
server packages under :data:`ROOT`; each test server runs from there with its own
configuration, data and port under a temporary folder. A missing installation is an error
that says how to install it (never a skip).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from imapclient import IMAPClient

from triage.testing.dovecot import ImapAccount, _set_parent_death_signal, free_port

#: Where ``scripts/imap-servers`` unpacks the server packages.
ROOT = Path(os.environ.get("TRIAGE_IMAP_SERVERS", "/var/cache/triage/imap-servers"))


class ServerNotInstalled(RuntimeError):
    """The server is not installed where the fixtures look for it."""


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise ServerNotInstalled(
            f"{what} is not installed ({path} is missing): run `scripts/imap-servers` as root "
            "(it installs Cyrus and Courier beside Dovecot, see docs/testing or "
            "/work/shared/notes/real-servers.md)")
    return path


class ThrowawayServer:
    """A server process on a free loopback port, its files under one temporary folder."""

    name = "imap"

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.root = Path(tempfile.mkdtemp(prefix=f"triage-{self.name}-"))
        self.root.chmod(0o755)  # the servers' own users must reach their mail under it
        self.proc: subprocess.Popen[bytes] | None = None
        self.passwords: dict[str, str] = {}
        self._count = 0

    # -- lifecycle -------------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        raise NotImplementedError

    def start(self, timeout: float = 20.0) -> None:
        self.prepare()
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.root,
                                     preexec_fn=_set_parent_death_signal,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=2) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start on {self.host}:{self.port}:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, lines: int = 30) -> str:
        path = self.root / "server.log"
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- users and clients -----------------------------------------------------------------
    def new_user_name(self) -> str:
        self._count += 1
        return f"{self.name}user{self._count}"

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount:
        raise NotImplementedError

    @contextlib.contextmanager
    def client(self, user: str, password: str | None = None) -> Iterator[IMAPClient]:
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            imap.login(user, password if password is not None else self.passwords[user])
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(self, user: str, password: str | None, folder: str, raw: bytes,
               flags: tuple[str, ...] = ()) -> int | None:
        with self.client(user, password) as imap:
            response = imap.append(folder, raw, flags=flags)
        text = response.decode("ascii", "replace") if isinstance(response, bytes) else ""
        match = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
        return int(match.group(1)) if match else None
