"""One IMAP connection to one mailbox, with timeouts, and the few commands the intake uses.

Messages are always named by UID (RFC 9051 §2.3.1.1), never by sequence number. Moves use
``UID MOVE`` (RFC 6851) where the server offers it, else ``UID COPY`` + ``\\Deleted`` +
``UID EXPUNGE`` of exactly those UIDs (RFC 4315). Without UIDPLUS a plain ``EXPUNGE`` is sent
only when every ``\\Deleted`` message of the folder is one this connection flagged, so nothing
another client marked is ever removed; searches exclude ``\\Deleted``, so a message flagged and
not yet expunged is never fetched nor copied again.

Folder names are written with ``/`` in the configuration and relative to the personal
namespace (RFC 2342): ``Triage/Agent`` is ``Triage.Agent`` on a Dovecot with ``.`` as separator
and ``INBOX.Triage.Agent`` on Courier or on Cyrus as Debian configures it. A name written with a
leading ``/`` is absolute (no prefix). ``Sent`` left at its default is the server's ``\\Sent``
mailbox where the server marks one (SPECIAL-USE, RFC 6154). Nothing is ever appended to the
mailbox currently selected or examined: Courier refuses it, so the mailbox is left first.

Every failure is raised as one of :mod:`triage.errors`' IMAP errors, naming the command and the
folder: transient (network, timeout, server busy) or permanent (login or folder refused).
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import logging
import os
import re
import shlex
import ssl
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import DELETED, SocketTimeout

from triage.config import Mailbox, Settings
from triage.errors import (
    CapabilityMissing,
    FolderRefused,
    ImapPermanent,
    ImapTransient,
    LoginRefused,
    PeerError,
)
from triage.mailbox.message_ids import uids_with_message_id
from triage.mailbox.protocol import (
    DEFAULT_SENT,
    ConnectionFactory,
    MailboxConnection,
    Selected,
    sent_folder,
    server_folder,
)

log = logging.getLogger("triage.mailbox")

__all__ = ["DEFAULT_SENT", "Connection", "ConnectionFactory", "MailboxConnection",
           "Selected", "classify", "credential", "opener", "sent_folder",
           "server_folder"]

#: Response codes and words that say "try again later" (RFC 5530 and common wordings).
_TRANSIENT = re.compile(r"\[(UNAVAILABLE|INUSE|SERVERBUG|LIMIT|CONTACTADMIN-NO)\]|"
                        r"try again|temporar|too many|busy", re.IGNORECASE)
_FOLDER_COMMANDS = {"CREATE", "SELECT", "EXAMINE", "APPEND", "MOVE", "COPY", "STATUS", "STORE"}



def credential(box: Mailbox) -> tuple[str, str]:
    """("password" | "oauth2", secret) from the environment, a file or a command."""
    try:
        if box.password_env:
            value = os.environ.get(box.password_env)
            if value is None:
                raise LoginRefused(box.address, f"environment variable {box.password_env} "
                                   "is not set", command="LOGIN")
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
        raise LoginRefused(box.address, f"cannot read the credential: {exc}",
                           command="LOGIN") from exc
    raise LoginRefused(box.address, "no credential configured", command="LOGIN")


def classify(peer: str, exc: BaseException, command: str, folder: str | None = None
             ) -> PeerError:
    """The error of :mod:`triage.errors` that ``exc`` (from imapclient or the socket) means."""
    if isinstance(exc, PeerError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (OSError, IMAPClientAbortError, imaplib.IMAP4.abort)) or \
            _TRANSIENT.search(str(exc)):
        return ImapTransient(peer, text, command=command, folder=folder)
    if isinstance(exc, LoginError) or command in ("LOGIN", "AUTHENTICATE"):
        return LoginRefused(peer, text, command=command)
    if command in _FOLDER_COMMANDS and folder is not None:
        return FolderRefused(peer, text, command=command, folder=folder)
    return ImapPermanent(peer, text, command=command, folder=folder)


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
        self.prefix = ""  # of the personal namespace, delimiter included ("INBOX.")
        self.special: dict[str, str] = {}  # SPECIAL-USE attribute -> server name
        self.capabilities: frozenset[str] = frozenset()
        # Folders known to exist on this connection: a move to an outcome folder then costs one
        # round trip, not a LIST first. A folder deleted behind our back makes the command fail;
        # the worker reconnects, with an empty cache.
        self._existing: set[str] = set()
        self.selected: str | None = None  # server name of the selected or examined mailbox
        self._readonly = False
        self._flagged: set[int] = set()  # UIDs this connection flagged \Deleted (no UIDPLUS)

    @property
    def peer(self) -> str:
        return f"{self.box.address} ({self.host}:{self.port})"

    @contextlib.contextmanager
    def guard(self, command: str, folder: str | None = None) -> Iterator[None]:
        """Turn whatever the command raises into a typed error naming it and the folder."""
        try:
            yield
        except (IMAPClientError, OSError, imaplib.IMAP4.error) as exc:
            error = classify(self.peer, exc, command, folder)
            if isinstance(error, ImapTransient):
                self.close()  # the connection is in an unknown state: start afresh
            raise error from exc

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> Connection:
        timeout = SocketTimeout(connect=self.timeout, read=self.read_timeout)
        context = tls_context()
        command = "CONNECT"
        try:
            client = IMAPClient(self.host, port=self.port, use_uid=True,
                                ssl=self.security == "tls", ssl_context=context, timeout=timeout)
            self.client = client
            client.normalise_times = False  # INTERNALDATE with its zone, not local and naive
            if self.security == "starttls":
                command = "STARTTLS"
                client.starttls(context)
            kind, secret = credential(self.box)
            command = "LOGIN"
            if kind == "oauth2":
                client.oauth2_login(self.box.username, secret)
            else:
                client.login(self.box.username, secret)
            command = "CAPABILITY"
            self.capabilities = frozenset(
                c.decode() if isinstance(c, bytes) else str(c) for c in client.capabilities())
            if not (self.has("IMAP4REV1") or self.has("IMAP4REV2")):
                raise CapabilityMissing(self.peer, "neither IMAP4rev1 nor IMAP4rev2 announced: "
                                        "UID commands cannot be relied on",
                                        command="CAPABILITY")
            command = "NAMESPACE"
            self.delimiter, self.prefix = self._namespace()
            if self.has("SPECIAL-USE"):
                command = "LIST"
                self.special = self._special_use()
        except (IMAPClientError, OSError, imaplib.IMAP4.error, PeerError) as exc:
            self.close()
            raise classify(self.peer, exc, command) from exc
        return self

    def close(self) -> None:
        client, self.client = self.client, None
        self.selected, self._flagged = None, set()
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
    def connected(self) -> bool:
        return self.client is not None

    @property
    def imap(self) -> IMAPClient:
        if self.client is None:
            raise ImapTransient(self.peer, "not connected")
        return self.client

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def _namespace(self) -> tuple[str, str]:
        """(delimiter, prefix) of the personal namespace; LIST "" "" without NAMESPACE."""
        if self.has("NAMESPACE"):
            personal = self.imap.namespace().personal
            if personal:
                prefix, delim = personal[0]
                return (_text(delim) or "/"), _text(prefix)
        listing = self.imap.list_folders("", "")
        if listing and listing[0][1]:
            return _text(listing[0][1]), ""
        return "/", ""

    def _special_use(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for flags, _delim, name in self.imap.list_folders():
            for flag in flags:
                found.setdefault(_text(flag).lower(), _text(name))
        return found

    # -- folders ---------------------------------------------------------------------------
    def folder(self, configured: str) -> str:
        """The server's name for a configured folder path (see the module's docstring)."""
        return server_folder(configured, self.delimiter, self.prefix)

    def sent_folder(self, configured: str) -> str:
        """The configured Sent folder, or the server's ``\\Sent`` for the default name."""
        return sent_folder(configured, self.special.get("\\sent"), self.delimiter)

    def ensure_folder(self, configured: str) -> str:
        name = self.folder(configured)
        if name in self._existing:
            return name
        with self.guard("CREATE", name):
            if not self.imap.folder_exists(name):
                parts = name.split(self.delimiter)
                first = len(self.prefix.rstrip(self.delimiter).split(self.delimiter)) \
                    if self.prefix else 0
                for i in range(max(1, first + 1), len(parts) + 1):
                    partial = self.delimiter.join(parts[:i])
                    if self.imap.folder_exists(partial):
                        continue
                    try:
                        self.imap.create_folder(partial)
                    except IMAPClientError:
                        if not self.imap.folder_exists(partial):  # created by another client
                            raise
        self._existing.add(name)
        return name

    def select(self, configured: str) -> Selected:
        name = self.folder(configured)
        with self.guard("SELECT", name):
            info = self.imap.select_folder(name)
        self.selected, self._readonly = name, False
        self._flagged = set()
        return Selected(name, int(info[b"UIDVALIDITY"]),
                        int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
                        int(info.get(b"EXISTS", 0)))

    def examine(self, configured: str) -> str:
        """Open a configured folder read-only (EXAMINE), creating it if missing."""
        name = self.ensure_folder(configured)
        with self.guard("EXAMINE", name):
            self.imap.select_folder(name, readonly=True)
        self.selected, self._readonly = name, True
        return name

    def _leave(self, name: str) -> None:
        """Leave ``name`` if it is the selected mailbox, expunging nothing."""
        if self.selected != name:
            return
        with self.guard("UNSELECT", name):
            if self.has("UNSELECT"):
                self.imap.unselect_folder()
            else:
                if not self._readonly:  # CLOSE of a read-write mailbox would expunge
                    self.imap.select_folder(name, readonly=True)
                self.imap.close_folder()
        self.selected, self._flagged = None, set()

    def count(self, configured: str) -> int | None:
        name = self.folder(configured)
        with self.guard("STATUS", name):
            if not self.imap.folder_exists(name):
                return None
            status = self.imap.folder_status(name, [b"MESSAGES"])
        return int(status[b"MESSAGES"])

    # -- messages --------------------------------------------------------------------------
    def uids(self) -> list[int]:
        """The selected folder's messages, except those flagged ``\\Deleted`` (moved already)."""
        with self.guard("SEARCH", self.selected):
            return sorted(int(u) for u in self.imap.search(["NOT", "DELETED"]))

    def deleted_uids(self) -> list[int]:
        with self.guard("SEARCH", self.selected):
            return sorted(int(u) for u in self.imap.search(["DELETED"]))

    def fetch(self, uids: Iterable[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        with self.guard("FETCH", self.selected):
            result = self.imap.fetch(list(uids), items)
        return {int(k): v for k, v in result.items()}

    def move(self, uids: list[int], configured: str, skip_copy: Iterable[int] = ()) -> None:
        """Move ``uids`` of the selected folder to a configured folder (created if missing).

        ``skip_copy``: UIDs known to be in the target already (a copy made before a crash):
        without MOVE they are only flagged and expunged.
        """
        if not uids:
            return
        source = self.selected
        target = self.ensure_folder(configured)
        if self.has("MOVE"):
            with self.guard("MOVE", target):
                self.imap.move(uids, target)
            return
        skip = set(skip_copy)
        copying = [u for u in uids if u not in skip]
        if copying:
            with self.guard("COPY", target):
                self.imap.copy(copying, target)
        with self.guard("STORE", source):
            self.imap.add_flags(uids, [DELETED], silent=True)
        self._flagged.update(uids)
        self.expunge(uids)

    def expunge(self, uids: list[int]) -> bool:
        """Expunge ``uids`` (flagged ``\\Deleted``) of the selected folder, and only them.

        With UIDPLUS, ``UID EXPUNGE``. Without it a plain ``EXPUNGE`` only when every
        ``\\Deleted`` message of the folder is one of ``uids`` or was flagged by this
        connection; otherwise nothing is expunged (they stay flagged, and searches skip them)
        and False is returned.
        """
        if not uids:
            return True
        with self.guard("EXPUNGE", self.selected):
            if self.has("UIDPLUS"):
                self.imap.uid_expunge(uids)
                return True
            deleted = {int(u) for u in self.imap.search(["DELETED"])}
            if deleted <= self._flagged | set(uids):
                self.imap.expunge()
                self._flagged -= deleted
                return True
        log.warning("%d message(s) flagged \\Deleted by another client in %s: no EXPUNGE "
                    "(the server has no UIDPLUS); ours stay flagged and are skipped",
                    len(deleted - self._flagged - set(uids)), self.selected,
                    extra={"mailbox": self.box.address, "event": "imap.expunge-deferred"})
        return False

    def append(self, configured: str, raw: bytes, flags: Sequence[str] = ()) -> None:
        name = self.ensure_folder(configured)
        self._leave(name)
        with self.guard("APPEND", name):
            self.imap.append(name, raw, flags=tuple(flags))

    def append_many(self, configured: str, messages: Sequence[bytes]) -> None:
        """APPEND ``messages`` to a folder, pipelined when the server offers LITERAL+.

        With non-synchronising literals (RFC 7888) every APPEND is sent without waiting for the
        server's go-ahead, and the replies are read afterwards, in order: one round trip for
        the lot instead of two per message. Without LITERAL+ they go one by one. Raises if
        any of them failed (the others are in the folder).
        """
        name = self.ensure_folder(configured)
        if not messages:
            return
        self._leave(name)
        if not self.has("LITERAL+"):
            for raw in messages:
                with self.guard("APPEND", name):
                    self.imap.append(name, raw)
            return
        with self.guard("APPEND", name):
            imap = self.imap._imap  # imapclient has no pipelining: talk through its imaplib
            folder = self.imap._normalise_folder(name)
            folder = folder if isinstance(folder, bytes) else folder.encode("ascii")
            tags = []
            for raw in messages:
                tag = imap._new_tag()
                imap.send(b"%s APPEND %s {%d+}\r\n%s\r\n" % (tag, folder, len(raw), raw))
                tags.append(tag)
            refused = []
            for tag in tags:
                typ, data = imap._command_complete("APPEND", tag)
                if typ != "OK":
                    refused.append(f"{typ} {data!r}")
        if refused:
            raise FolderRefused(self.peer, f"refused {len(refused)} of {len(messages)}: "
                                f"{refused[0]}", command="APPEND", folder=name)

    def message_ids_in(self, configured: str, message_ids: Iterable[str]) -> set[str]:
        """Those of ``message_ids`` that a folder holds (examined, left examined); none if the
        folder does not exist."""
        wanted = [m for m in message_ids if m]
        name = self.folder(configured)
        if not wanted:
            return set()
        with self.guard("EXAMINE", name):
            if name not in self._existing and not self.imap.folder_exists(name):
                return set()
            self.imap.select_folder(name, readonly=True)
        self.selected, self._readonly = name, True
        return self.selected_message_ids(wanted)

    def selected_message_ids(self, message_ids: Iterable[str]) -> set[str]:
        """Those of ``message_ids`` that the selected folder holds, in two commands per 50.

        They match as ``SEARCH HEADER Message-ID`` matches one (RFC 9051 §6.4.4): a
        case-insensitive substring of the header. One ``SEARCH`` with ``OR`` finds the messages
        that hold any of them, one ``FETCH`` of their Message-ID headers tells which. Messages
        flagged ``\\Deleted`` do not count.
        """
        wanted = list(dict.fromkeys(m for m in message_ids if m))
        found: set[str] = set()
        for start in range(0, len(wanted), 50):
            chunk = wanted[start:start + 50]
            criteria: list[str] = ["NOT", "DELETED"]
            for i, message_id in enumerate(chunk):
                if i < len(chunk) - 1:
                    criteria.append("OR")
                criteria += ["HEADER", "Message-ID", message_id]
            with self.guard("SEARCH", self.selected):
                uids = self.imap.search(criteria)
                if not uids:
                    continue
                fetched = self.imap.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            values = []
            for data in fetched.values():
                for key, raw in data.items():
                    if isinstance(key, bytes) and key.startswith(b"BODY[HEADER.FIELDS"):
                        text = re.sub(r"\r?\n[ \t]+", " ", raw.decode("utf-8", "replace"))
                        values += [line.partition(":")[2].lower() for line in text.splitlines()]
            found.update(m for m in chunk if any(m.lower() in v for v in values))
        return found

    def uids_of(self, configured: str, message_id: str) -> list[int]:
        """Select a folder (read-write) and return the UIDs holding ``message_id``; none if the
        folder does not exist."""
        name = self.folder(configured)
        with self.guard("SELECT", name):
            if name not in self._existing and not self.imap.folder_exists(name):
                return []
        self.select(configured)
        wanted = message_id.strip().removeprefix("<").removesuffix(">")
        if not wanted:
            return []
        with self.guard("SEARCH", name):
            # SEARCH HEADER is a substring match: it only narrows the candidates, and
            # uids_with_message_id keeps those whose Message-ID is exactly the one asked.
            candidates = [int(u) for u in self.imap.search(
                ["NOT", "DELETED", "HEADER", "Message-ID", wanted],
                None if wanted.isascii() else "UTF-8")]
            return uids_with_message_id(self, wanted, among=candidates)

    def oldest_arrival(self) -> datetime | None:
        """When the oldest message waiting in the selected folder arrived (INTERNALDATE)."""
        uids = self.uids()
        if not uids:
            return None
        with self.guard("FETCH", self.selected):
            data = self.imap.fetch(uids[:1], ["INTERNALDATE"])
        row: dict[bytes, Any] = next(iter(data.values()), {})
        moment = row.get(b"INTERNALDATE")
        if not isinstance(moment, datetime):
            return None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of the process (system CAs, host names checked), shared by every
    connection: a context holds its own copy of the CA store, about 0.8 MB, which made 164 of
    the 343 MB of a daemon with 200 connections. A context may serve many connections at once.
    """
    return ssl.create_default_context()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def opener(settings: Callable[[], Settings]) -> ConnectionFactory:
    """The factory of real connections the daemon gives its workers."""
    def factory(box: Mailbox) -> MailboxConnection:
        return Connection(settings(), box)
    return factory
