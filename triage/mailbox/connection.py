"""One IMAP connection to one mailbox, with timeouts, and the few commands the daemon uses.

Messages are always named by UID (RFC 9051 §2.3.1.1), never by sequence number. Moves use
``UID MOVE`` (RFC 6851) where the server offers it, else ``UID COPY`` + ``\\Deleted`` +
``UID EXPUNGE`` of exactly those UIDs (RFC 4315), never a plain ``EXPUNGE`` that would remove
what other clients marked. Folder names are written with ``/`` in the configuration and
translated to the server's hierarchy delimiter here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import ssl
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.imapclient import DELETED, SocketTimeout

from triage.config import Mailbox, Settings
from triage.errors import TriageError


class MailboxError(TriageError):
    """The mailbox cannot be reached, refuses the login, or answered a command with an error."""


@dataclass(frozen=True)
class Selected:
    folder: str
    uidvalidity: int
    uidnext: int | None
    exists: int


def credential(box: Mailbox) -> tuple[str, str]:
    """("password" | "oauth2", secret) from the environment, a file or a command."""
    try:
        if box.password_env:
            value = os.environ.get(box.password_env)
            if value is None:
                raise MailboxError(f"{box.address}: environment variable {box.password_env} "
                                   "is not set")
            return "password", value
        if box.password_file:
            return "password", Path(box.password_file).read_text("utf-8").strip()
        if box.oauth2_token_file:
            return "oauth2", Path(box.oauth2_token_file).read_text("utf-8").strip()
        if box.oauth2_token_command:
            out = subprocess.run(shlex.split(box.oauth2_token_command), capture_output=True,
                                 text=True, timeout=30, check=True)
            return "oauth2", out.stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise MailboxError(f"{box.address}: cannot read the credential: {exc}") from exc
    raise MailboxError(f"{box.address}: no credential configured")


class Connection:
    """A logged-in IMAP connection to ``box``; use as a context manager."""

    def __init__(self, settings: Settings, box: Mailbox, read_timeout: float | None = None):
        self.settings = settings
        self.box = box
        self.host, self.port, self.security = settings.mailbox_host(box)
        self.timeout = settings.imap.timeout
        self.read_timeout = read_timeout or self.timeout
        self.client: IMAPClient | None = None
        self.delimiter = "/"
        self.capabilities: frozenset[str] = frozenset()
        # Folders known to exist on this connection: a move to an outcome folder then costs one
        # round trip, not a LIST first. A folder deleted behind our back makes the command fail;
        # the worker reconnects, with an empty cache.
        self._existing: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> Connection:
        timeout = SocketTimeout(connect=self.timeout, read=self.read_timeout)
        context = ssl.create_default_context()
        try:
            client = IMAPClient(self.host, port=self.port, use_uid=True,
                                ssl=self.security == "tls", ssl_context=context, timeout=timeout)
            self.client = client
            if self.security == "starttls":
                client.starttls(context)
            kind, secret = credential(self.box)
            if kind == "oauth2":
                client.oauth2_login(self.box.username, secret)
            else:
                client.login(self.box.username, secret)
            self.capabilities = frozenset(
                c.decode() if isinstance(c, bytes) else str(c) for c in client.capabilities())
            self.delimiter = self._delimiter()
        except (IMAPClientError, OSError) as exc:
            self.close()
            raise MailboxError(f"{self.box.address} ({self.host}:{self.port}): "
                               f"{type(exc).__name__}: {exc}") from exc
        return self

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the connection may already be gone; nothing to save
            with contextlib.suppress(Exception):
                client.shutdown()

    def __enter__(self) -> Connection:
        return self.open() if self.client is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def imap(self) -> IMAPClient:
        if self.client is None:
            raise MailboxError(f"{self.box.address}: not connected")
        return self.client

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def _delimiter(self) -> str:
        try:
            listing = self.imap.list_folders("", "")
            if listing and listing[0][1]:
                d = listing[0][1]
                return d.decode() if isinstance(d, bytes) else str(d)
        except IMAPClientError:
            pass
        return "/"

    # -- folders ---------------------------------------------------------------------------
    def folder(self, configured: str) -> str:
        """The server's name for a configured folder path."""
        if configured.upper() == "INBOX":
            return "INBOX"
        return self.delimiter.join(configured.split("/"))

    def ensure_folder(self, configured: str) -> str:
        name = self.folder(configured)
        if name in self._existing:
            return name
        if not self.imap.folder_exists(name):
            parts = configured.split("/")
            for i in range(1, len(parts) + 1):
                partial = self.delimiter.join(parts[:i])
                if not self.imap.folder_exists(partial):
                    try:
                        self.imap.create_folder(partial)
                    except IMAPClientError:
                        if not self.imap.folder_exists(partial):  # created by another client
                            raise
        self._existing.add(name)
        return name

    def select(self, configured: str) -> Selected:
        name = self.folder(configured)
        info = self.imap.select_folder(name)
        return Selected(name, int(info[b"UIDVALIDITY"]),
                        int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
                        int(info.get(b"EXISTS", 0)))

    def count(self, configured: str) -> int | None:
        name = self.folder(configured)
        if not self.imap.folder_exists(name):
            return None
        status = self.imap.folder_status(name, [b"MESSAGES"])
        return int(status[b"MESSAGES"])

    # -- messages --------------------------------------------------------------------------
    def uids(self) -> list[int]:
        return sorted(int(u) for u in self.imap.search(["ALL"]))

    def fetch(self, uids: Iterable[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        result = self.imap.fetch(list(uids), items)
        return {int(k): v for k, v in result.items()}

    def move(self, uids: list[int], configured: str) -> None:
        """Move ``uids`` of the selected folder to a configured folder (created if missing)."""
        if not uids:
            return
        target = self.ensure_folder(configured)
        if self.has("MOVE"):
            self.imap.move(uids, target)
            return
        self.imap.copy(uids, target)
        self.imap.add_flags(uids, [DELETED], silent=True)
        if self.has("UIDPLUS"):
            self.imap.uid_expunge(uids)
        # Without UIDPLUS the messages stay flagged \\Deleted: a plain EXPUNGE would also remove
        # what other clients marked, so it is never sent.

    def append(self, configured: str, raw: bytes) -> None:
        self.imap.append(self.ensure_folder(configured), raw)

    def has_message_id(self, configured: str, message_id: str) -> bool:
        name = self.folder(configured)
        if not self.imap.folder_exists(name):
            return False
        self.imap.select_folder(name, readonly=True)
        return self.selected_has_message_id(message_id)

    def examine(self, configured: str) -> str:
        """Open a configured folder read-only (EXAMINE), creating it if missing."""
        name = self.ensure_folder(configured)
        self.imap.select_folder(name, readonly=True)
        return name

    def selected_has_message_id(self, message_id: str) -> bool:
        """Whether the selected folder holds a message with this Message-ID."""
        return bool(self.imap.search(["HEADER", "Message-ID", message_id]))
