"""An in-memory IMAP double implementing the protocol of :class:`triage.mailbox.connection.
Connection`, for unit tests of the worker's ordering, crash points and fallbacks.

A fake, used only where a real server cannot produce the case on demand: a crash between two
given commands, a server without MOVE and without UIDPLUS, a namespace prefix, a server that
refuses an APPEND to the examined mailbox — all switchable on one :class:`ImapDoubleServer`.
The real-server tests (Dovecot, Cyrus, Courier) stay for what only a real server shows.

::

    server = ImapDoubleServer(move=False, uidplus=False, prefix="INBOX.", delimiter=".")
    server.deliver(user, raw)
    worker = MailboxWorker(..., connection_factory=server.connect, ...)
    server.crash_after("MOVE")   # the next MOVE happens, then the "process" dies (Crash)
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from typing import Any

from triage.config import Mailbox
from triage.errors import FolderRefused, ImapPermanent, ImapTransient, LoginRefused
from triage.mailbox.protocol import Selected, sent_folder, server_folder
from triage.testing.dovecot import ImapAccount

_uidvalidity = itertools.count(1000)


class Crash(BaseException):
    """The process "dies" at a crash point: nothing catches it but the test."""


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)
    arrived: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def message_id(self) -> str:
        value = BytesHeaderParser().parsebytes(self.raw).get("Message-ID", "")
        return str(value).strip()


@dataclass
class Folder:
    uidvalidity: int = field(default_factory=lambda: next(_uidvalidity))
    uidnext: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)

    def add(self, raw: bytes, flags: Iterable[str] = ()) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.messages[uid] = StoredMessage(uid, raw, set(flags))
        return uid


class ImapDoubleServer:
    """The server's state, shared by every connection; capabilities switchable."""

    def __init__(self, *, move: bool = True, uidplus: bool = True, prefix: str = "",
                 delimiter: str = "/", append_to_examined: bool = True, idle: bool = True,
                 special_sent: str | None = None, literal_plus: bool = False) -> None:
        self.host, self.port = "127.0.0.1", 9  # never dialled: the factory is in memory
        self.move, self.uidplus, self.idle = move, uidplus, idle
        self.prefix, self.delimiter = prefix, delimiter
        self.append_to_examined = append_to_examined
        self.literal_plus = literal_plus
        self.special_sent = special_sent
        self.passwords: dict[str, str] = {}
        self.mailboxes: dict[str, dict[str, Folder]] = {}
        self.commands: list[tuple[str, str | None]] = []  # (command, folder), in order
        self.lock = threading.RLock()
        self._crash: dict[str, int] = {}  # "before:CMD" / "after:CMD" -> countdown
        self._fail: dict[str, type[Exception]] = {}
        self._users = itertools.count(1)

    # -- set-up ------------------------------------------------------------------------------
    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount:
        name = name or f"double{next(self._users)}"
        self.passwords[name] = password or f"secret-{name}"
        folders = {"INBOX": Folder()}
        if self.special_sent:
            folders[self.special_sent] = Folder()
        self.mailboxes[name] = folders
        return ImapAccount(self.host, self.port, name, self.passwords[name])

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX",
                flags: Iterable[str] = ()) -> int:
        with self.lock:
            return self.mailboxes[user].setdefault(folder, Folder()).add(raw, flags)

    def folder(self, user: str, name: str) -> Folder:
        return self.mailboxes[user][name]

    def message_ids(self, user: str, name: str, deleted: bool = False) -> list[str]:
        """The Message-IDs in a folder (server name), with repeats; ``\\Deleted`` ones only if
        ``deleted``."""
        folder = self.mailboxes[user].get(name)
        if folder is None:
            return []
        return [m.message_id for m in folder.messages.values()
                if deleted or "\\Deleted" not in m.flags]

    def crash_before(self, command: str, nth: int = 1) -> None:
        """The ``nth`` next ``command`` is not done: the process dies instead."""
        self._crash[f"before:{command}"] = nth

    def crash_after(self, command: str, nth: int = 1) -> None:
        """The ``nth`` next ``command`` is done, then the process dies before anything else."""
        self._crash[f"after:{command}"] = nth

    def fail(self, command: str, error: type[Exception]) -> None:
        """Every ``command`` raises ``error`` until :meth:`heal`."""
        self._fail[command] = error

    def heal(self) -> None:
        self._fail.clear()
        self._crash.clear()

    def capabilities(self) -> frozenset[str]:
        caps = {"IMAP4REV1", "NAMESPACE", "UNSELECT"}
        caps |= {"MOVE"} if self.move else set()
        caps |= {"UIDPLUS"} if self.uidplus else set()
        caps |= {"IDLE"} if self.idle else set()
        caps |= {"LITERAL+"} if self.literal_plus else set()
        caps |= {"SPECIAL-USE"} if self.special_sent else set()
        return frozenset(caps)

    def connect(self, box: Mailbox) -> ImapDouble:
        """The connection factory to give a :class:`MailboxWorker`."""
        return ImapDouble(self, box)

    @contextlib.contextmanager
    def step(self, command: str, folder: str | None) -> Iterator[None]:
        with self.lock:
            self._countdown(f"before:{command}")
            if command in self._fail:
                raise self._fail[command](self.host, "failure injected by the test",
                                          command=command, folder=folder)  # type: ignore[call-arg]
            self.commands.append((command, folder))
            yield
            self._countdown(f"after:{command}")

    def _countdown(self, key: str) -> None:
        if key in self._crash:
            self._crash[key] -= 1
            if self._crash[key] == 0:
                del self._crash[key]
                raise Crash(key)


class ImapDouble:
    """One logged-in connection to an :class:`ImapDoubleServer` account."""

    def __init__(self, server: ImapDoubleServer, box: Mailbox) -> None:
        self.server = server
        self.box = box
        self.user: str | None = None
        self.selected: str | None = None
        self.readonly = False
        self._flagged: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> ImapDouble:
        from triage.mailbox.connection import credential

        _kind, secret = credential(self.box)
        with self.server.step("LOGIN", None):
            if self.server.passwords.get(self.box.username) != secret:
                raise LoginRefused(self.box.address, "[AUTHENTICATIONFAILED] Authentication "
                                   "failed.", command="LOGIN")
        self.user = self.box.username
        return self

    def close(self) -> None:
        self.user, self.selected, self._flagged = None, None, set()

    def __enter__(self) -> ImapDouble:
        return self.open() if self.user is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self.user is not None

    def has(self, capability: str) -> bool:
        return capability.upper() in self.server.capabilities()

    @property
    def _folders(self) -> dict[str, Folder]:
        if self.user is None:
            raise ImapTransient(self.box.address, "not connected")
        return self.server.mailboxes[self.user]

    def _open_folder(self, name: str | None, command: str) -> Folder:
        if name is None or name not in self._folders:
            raise FolderRefused(self.box.address, "NO Mailbox doesn't exist", command=command,
                                folder=name)
        return self._folders[name]

    # -- folders ---------------------------------------------------------------------------
    def folder(self, configured: str) -> str:
        return server_folder(configured, self.server.delimiter, self.server.prefix)

    def sent_folder(self, configured: str) -> str:
        return sent_folder(configured, self.server.special_sent, self.server.delimiter)

    def ensure_folder(self, configured: str) -> str:
        name = self.folder(configured)
        if name in self._folders:
            return name
        with self.server.step("CREATE", name):
            prefix = self.server.prefix
            if prefix and not name.upper().startswith(prefix.upper()):
                raise FolderRefused(self.box.address, "NO Invalid mailbox name",
                                    command="CREATE", folder=name)
            self._folders[name] = Folder()
        return name

    def select(self, configured: str) -> Selected:
        name = self.folder(configured)
        with self.server.step("SELECT", name):
            folder = self._open_folder(name, "SELECT")
        self.selected, self.readonly, self._flagged = name, False, set()
        return Selected(name, folder.uidvalidity, folder.uidnext, len(folder.messages))

    def _examine(self, name: str) -> Folder:
        with self.server.step("EXAMINE", name):
            folder = self._open_folder(name, "EXAMINE")
        self.selected, self.readonly = name, True
        return folder

    def count(self, configured: str) -> int | None:
        name = self.folder(configured)
        with self.server.step("STATUS", name):
            folder = self._folders.get(name)
        return None if folder is None else len(folder.messages)

    # -- messages --------------------------------------------------------------------------
    @property
    def _current(self) -> Folder:
        return self._open_folder(self.selected, "SEARCH")

    def uids(self) -> list[int]:
        with self.server.step("SEARCH", self.selected):
            return sorted(u for u, m in self._current.messages.items()
                          if "\\Deleted" not in m.flags)

    def deleted_uids(self) -> list[int]:
        with self.server.step("SEARCH", self.selected):
            return sorted(u for u, m in self._current.messages.items()
                          if "\\Deleted" in m.flags)

    def fetch(self, uids: Iterable[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        with self.server.step("FETCH", self.selected):
            out: dict[int, dict[bytes, Any]] = {}
            for uid in uids:
                message = self._current.messages.get(uid)
                if message is None:
                    continue
                data: dict[bytes, Any] = {}
                for item in items:
                    if item == "RFC822.SIZE":
                        data[b"RFC822.SIZE"] = len(message.raw)
                    elif item == "BODYSTRUCTURE":
                        data[b"BODYSTRUCTURE"] = None
                    elif item == "BODY.PEEK[]":
                        data[b"BODY[]"] = message.raw
                    elif item == "INTERNALDATE":
                        data[b"INTERNALDATE"] = message.arrived
                    else:
                        raise ImapPermanent(self.box.address, f"BAD item {item} not emulated",
                                            command="FETCH")
                out[uid] = data
            return out

    def move(self, uids: list[int], configured: str, skip_copy: Iterable[int] = ()) -> None:
        if not uids:
            return
        target = self.ensure_folder(configured)
        source = self._current
        if self.has("MOVE"):
            with self.server.step("MOVE", target):
                for uid in uids:
                    message = source.messages.pop(uid, None)
                    if message is not None:
                        self._folders[target].add(message.raw, message.flags)
            return
        skip = set(skip_copy)
        copying = [u for u in uids if u not in skip and u in source.messages]
        if copying:
            with self.server.step("COPY", target):
                for uid in copying:
                    self._folders[target].add(source.messages[uid].raw)
        with self.server.step("STORE", self.selected):
            for uid in uids:
                if uid in source.messages:
                    source.messages[uid].flags.add("\\Deleted")
        self._flagged.update(uids)
        self.expunge(uids)

    def expunge(self, uids: list[int]) -> bool:
        if not uids:
            return True
        source = self._current
        if self.has("UIDPLUS"):
            with self.server.step("UID EXPUNGE", self.selected):
                for uid in uids:
                    if "\\Deleted" in source.messages.get(uid, StoredMessage(0, b"")).flags:
                        del source.messages[uid]
            return True
        deleted = {u for u, m in source.messages.items() if "\\Deleted" in m.flags}
        if not deleted <= self._flagged | set(uids):
            return False
        with self.server.step("EXPUNGE", self.selected):
            for uid in deleted:
                del source.messages[uid]
        return True

    def append(self, configured: str, raw: bytes, flags: Sequence[str] = ()) -> None:
        name = self.ensure_folder(configured)
        if self.selected == name:  # as the real connection: leave it first
            with self.server.step("UNSELECT", name):
                self.selected = None
        with self.server.step("APPEND", name):
            if self.selected == name and not self.server.append_to_examined:
                raise FolderRefused(self.box.address, "NO Current box is selected READ-ONLY",
                                    command="APPEND", folder=name)
            self._folders[name].add(raw, flags)

    def append_many(self, configured: str, messages: Sequence[bytes]) -> None:
        for raw in messages:
            self.append(configured, raw)

    def message_ids_in(self, configured: str, message_ids: Iterable[str]) -> set[str]:
        wanted = [m for m in message_ids if m]
        name = self.folder(configured)
        if not wanted or name not in self._folders:
            return set()
        folder = self._examine(name)
        present = " ".join(m.message_id.lower() for m in folder.messages.values()
                           if "\\Deleted" not in m.flags)
        return {m for m in wanted if m.lower() in present}

    def uids_of(self, configured: str, message_id: str) -> list[int]:
        name = self.folder(configured)
        if name not in self._folders:
            return []
        folder = self._folders[name]
        self.select(configured)
        return sorted(u for u, m in folder.messages.items()
                      if "\\Deleted" not in m.flags and message_id.lower()
                      in m.message_id.lower())

    def oldest_arrival(self) -> datetime | None:
        live = [m for m in self._current.messages.values() if "\\Deleted" not in m.flags]
        return min((m.arrived for m in live), default=None)
