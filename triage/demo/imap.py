"""The demo's IMAP server: Dovecot when it is installed, else pymap (pure Python, from PyPI).

Both run as a child process on a loopback port with their data in a temporary folder, and
both offer what the daemon uses (IDLE, UIDPLUS, MOVE). :class:`PymapServer` gives pymap the
small interface of :class:`triage.testing.dovecot.DovecotServer` that the demo needs:
``host``, ``port``, ``add_user()``, ``running``, ``pid`` and ``close()``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

from triage.testing.dovecot import (
    DovecotNotInstalled,
    DovecotServer,
    ImapAccount,
    ensure_dovecot,
    free_port,
)

_START_TIMEOUT = 20.0
_PYMAP = "from pymap.main import main; main()"


class ImapServer(Protocol):
    host: str
    port: int

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount: ...

    def close(self) -> None: ...

    @property
    def running(self) -> bool: ...


class ImapUnavailable(RuntimeError):
    """Neither Dovecot nor pymap can be started."""


def _parent_death_signal() -> None:
    # In the child between fork and exec: if the demo dies without cleaning up (SIGKILL), the
    # kernel sends SIGTERM to the server.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class PymapServer:
    """pymap's maildir backend on a loopback port, users in its passwd and shadow files."""

    def __init__(self, root: Path | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.root = Path(root or tempfile.mkdtemp(prefix="pymap-"))
        self.mail_dir = self.root / "mail"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "pymap.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> PymapServer:
        for name in ("pymap-etc-passwd", "pymap-etc-shadow"):
            (self.mail_dir / name).touch()
        main_thread = threading.current_thread() is threading.main_thread()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _PYMAP, "--host", self.host, "--port", str(self.port),
                 "maildir", str(self.mail_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_parent_death_signal if main_thread else None)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ImapUnavailable(f"pymap exited at start-up:\n{self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=1) as sock:
                if sock.recv(256).startswith(b"* OK"):
                    return self
            time.sleep(0.05)
        self.close()
        raise ImapUnavailable(f"pymap did not answer on {self.host}:{self.port}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount:
        """A user with an empty mailbox; pymap reads its files at each login."""
        from pysasl.hashing import BuiltinHash

        if name is None or password is None:
            raise ValueError("the demo names its users and their passwords")
        # Few rounds: a throwaway server on loopback, and the daemon logs in often.
        digest = BuiltinHash(rounds=1000).hash(password)
        with self._lock:
            with open(self.mail_dir / "pymap-etc-passwd", "a", encoding="utf-8") as fh:
                fh.write(f"{name}:::::{name}:\n")
            with open(self.mail_dir / "pymap-etc-shadow", "a", encoding="utf-8") as fh:
                fh.write(f"{name}:{digest}:::::::\n")
        return ImapAccount(self.host, self.port, name, password)

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def start_imap(kind: str, root: Path) -> tuple[ImapServer, str]:
    """Start the demo's IMAP server: ``dovecot``, ``pymap`` or ``auto`` (Dovecot if installed).

    Returns the server and a description of it for the banner.
    """
    if kind in ("auto", "dovecot"):
        try:
            ensure_dovecot()
        except DovecotNotInstalled:
            if kind == "dovecot":
                raise
        else:
            dovecot = DovecotServer()
            dovecot.start()
            return dovecot, f"Dovecot (pid {_pid(dovecot)}, data in {dovecot.root})"
    try:
        import pymap  # noqa: F401  (checked before starting a child that would fail)
    except ImportError as exc:
        raise ImapUnavailable("neither dovecot nor pymap is installed "
                              "(pip install pymap, or apt-get install dovecot-imapd)") from exc
    server = PymapServer(root / "pymap").start()
    return server, f"pymap (pid {server.pid}, data in {server.root})"


def _pid(server: DovecotServer) -> int | None:
    process = getattr(server, "_process", None)
    return process.pid if process is not None else None


__all__ = ["ImapServer", "ImapUnavailable", "PymapServer", "start_imap"]
