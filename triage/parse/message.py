"""The message view: what the rules may look at, already decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Address:
    """One mailbox of an address header: display name and lower-cased address."""

    display_name: str
    address: str

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.address}>" if self.display_name else self.address


@dataclass(frozen=True)
class Attachment:
    """One entry of the attachment manifest (never decoded for triage).

    ``index`` is its place in the manifest, ``part`` its IMAP section number in the message as
    stored (RFC 3501 §6.4.5: "2", "3.1"…), the one address the download uses. ``filename`` is
    shown as is: bidi controls and other invisible format characters are already removed.
    ``stored`` is false for a part the intake did not fetch (a message over
    ``imap.full_fetch_bytes``): only its name, type and announced size are known.
    """

    filename: str
    content_type: str
    size: int
    index: int = 0
    part: str = ""
    stored: bool = True

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "part": self.part, "name": self.filename,
                "type": self.content_type, "size": self.size, "stored": self.stored}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Attachment:
        size, index = data.get("size", 0), data.get("index", 0)
        return cls(str(data.get("name", "")), str(data.get("type", "")),
                   size if isinstance(size, int) else 0, index if isinstance(index, int) else 0,
                   str(data.get("part", "")), bool(data.get("stored", True)))


@dataclass(frozen=True)
class MessageView:
    """A decoded, read-only view of one message."""

    raw_size: int
    headers: tuple[tuple[str, str], ...]
    message_id: str | None
    subject: str
    from_header: str
    from_addresses: tuple[Address, ...]
    from_problem: str | None
    reply_to: tuple[Address, ...]
    sender: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    delivered_to: tuple[str, ...]
    content_type: str
    text: str
    new_text: str
    quoted_text: str
    signature: str
    quote_kind: str | None  # "reply", "forward" or None
    attachments: tuple[Attachment, ...] = ()
    part_types: tuple[str, ...] = ()  # every part, attached messages' parts included
    #: The machine-readable report part (``message/delivery-status``,
    #: ``…/disposition-notification``, ``…/feedback-report``) of the message itself, not of a
    #: message attached to it.
    report: str | None = None
    defects: tuple[str, ...] = ()
    violations: tuple[str, ...] = field(default=())

    @cached_property
    def _by_name(self) -> dict[str, list[tuple[int, str]]]:
        """``(index, value)`` of the headers by lower-cased name, built on the first lookup:
        the rules look up a dozen names, each of which would otherwise scan every header."""
        index: dict[str, list[tuple[int, str]]] = {}
        for i, (k, v) in enumerate(self.headers):
            index.setdefault(k.lower(), []).append((i, v))
        return index

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), decoded, or ``None``."""
        found = self._by_name.get(name.lower())
        return found[0][1] if found else None

    def headers_named(self, name: str) -> list[str]:
        return [v for _i, v in self._by_name.get(name.lower(), ())]

    def header_positions(self, name: str) -> list[tuple[int, str]]:
        """``(index, value)`` of each header called ``name``, top of the message first."""
        return list(self._by_name.get(name.lower(), ()))

    @property
    def sender_address(self) -> Address | None:
        """The one From address, when there is exactly one valid one."""
        if self.from_problem is None and len(self.from_addresses) == 1:
            return self.from_addresses[0]
        return None

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc
