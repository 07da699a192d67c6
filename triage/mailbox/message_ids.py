"""Find a message in the selected folder by its Message-ID, exactly.

``SEARCH HEADER Message-ID x`` matches every message whose Message-ID *contains* ``x``
(RFC 9051 §6.4.4: a substring match), so a sender whose Message-ID is ``<.>`` would match
everybody's. The search only narrows the candidates; each one's Message-ID is then read
(``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]``, leaving ``\\Seen`` alone) and compared whole, as
:mod:`triage.parse` reads it. Every lookup by Message-ID (the attachment download, the filing
of an answered request) goes through :func:`uids_with_message_id`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from triage.parse import parse_message

if TYPE_CHECKING:  # connection.py may call this module (Connection.uids_of): no import cycle
    from triage.mailbox.connection import Connection

_FIELD = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"


def uids_with_message_id(conn: Connection, message_id: str,
                         among: Iterable[int] | None = None) -> list[int]:
    """The UIDs of the selected folder whose Message-ID is exactly ``message_id`` (with or
    without its angle brackets), lowest first.

    ``among`` restricts the answer to known UIDs (a message recorded where it still is) and
    spares the search. A non-ASCII ``message_id`` is searched with ``CHARSET UTF-8``.
    """
    wanted = message_id.strip()
    if wanted.startswith("<") and wanted.endswith(">"):
        wanted = wanted[1:-1]
    if not wanted:
        return []
    if among is not None:
        candidates = sorted(set(among))
    else:
        charset = None if wanted.isascii() else "UTF-8"
        candidates = sorted(int(u) for u in conn.imap.search(
            ["HEADER", "Message-ID", wanted], charset))
    if not candidates:
        return []
    found = conn.fetch(candidates, [_FIELD])
    return [uid for uid in candidates if uid in found
            and _message_id(found[uid]) == wanted]


def _message_id(data: dict[bytes, object]) -> str | None:
    head = next((v for k, v in data.items() if k.upper().startswith(b"BODY[HEADER.FIELDS")),
                None)
    if not isinstance(head, bytes):
        return None
    return parse_message(head.rstrip(b"\r\n") + b"\r\n\r\n").message_id
