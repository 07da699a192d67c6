"""What the intake needs of an IMAP mailbox, as a protocol, and how configured folder names
become the server's.

:class:`triage.mailbox.connection.Connection` implements :class:`MailboxConnection` over a real
server (imapclient); ``triage.testing.imapdouble.ImapDouble`` implements it in memory for the
unit tests of the worker. Both name folders with :func:`server_folder` and :func:`sent_folder`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from triage.config import Mailbox

#: The configured name of the Sent folder that means "the server's \\Sent mailbox, if any".
DEFAULT_SENT = "Sent"


@dataclass(frozen=True)
class Selected:
    folder: str
    uidvalidity: int
    uidnext: int | None
    exists: int


class MailboxConnection(Protocol):
    """What the worker, the sender and ``status`` need from a mailbox (see :class:`Connection`).

    ``triage.testing.imapdouble.ImapDouble`` implements it in memory for the unit tests.
    """

    box: Mailbox

    def open(self) -> MailboxConnection: ...
    def close(self) -> None: ...
    def __enter__(self) -> MailboxConnection: ...
    def __exit__(self, *exc: object) -> None: ...
    @property
    def connected(self) -> bool: ...
    def has(self, capability: str) -> bool: ...
    def folder(self, configured: str) -> str: ...
    def sent_folder(self, configured: str) -> str: ...
    def select(self, configured: str) -> Selected: ...
    def count(self, configured: str) -> int | None: ...
    def uids(self) -> list[int]: ...
    def deleted_uids(self) -> list[int]: ...
    def fetch(self, uids: Iterable[int], items: list[str]) -> dict[int, dict[bytes, Any]]: ...
    def move(self, uids: list[int], configured: str, skip_copy: Iterable[int] = ()) -> None: ...
    def expunge(self, uids: list[int]) -> bool: ...
    def append(self, configured: str, raw: bytes, flags: Sequence[str] = ()) -> None: ...
    def append_many(self, configured: str, messages: Sequence[bytes]) -> None: ...
    def message_ids_in(self, configured: str, message_ids: Iterable[str]) -> set[str]: ...
    def uids_of(self, configured: str, message_id: str) -> list[int]: ...
    def oldest_arrival(self) -> datetime | None: ...


ConnectionFactory = Callable[[Mailbox], MailboxConnection]


def server_folder(configured: str, delimiter: str, prefix: str = "") -> str:
    """The server's name of a configured folder: ``/`` becomes the hierarchy delimiter and the
    personal namespace's prefix is put in front, unless the name has it already or is written
    absolute (a leading ``/``)."""
    if configured.upper() == "INBOX":
        return "INBOX"
    if configured.startswith("/"):
        return delimiter.join(configured.strip("/").split("/"))
    name = delimiter.join(configured.split("/"))
    if prefix and not name.upper().startswith(prefix.upper()):
        name = prefix + name
    return name


def sent_folder(configured: str, special: str | None, delimiter: str) -> str:
    """The configured Sent folder, or the server's ``\\Sent`` mailbox (SPECIAL-USE) written
    absolute, when the configuration keeps the default name."""
    if configured == DEFAULT_SENT and special:
        return "/" + "/".join(special.split(delimiter))
    return configured
