"""Fetch what triage needs, in batches, and never a large attachment.

First ``RFC822.SIZE`` and ``BODYSTRUCTURE`` for a batch of UIDs. Messages up to
``imap.full_fetch_bytes`` are then fetched whole (one round trip for the batch); larger ones get
only their header and their text parts (``BODY.PEEK[HEADER]``, ``BODY.PEEK[n.MIME]``,
``BODY.PEEK[n]``), from which a stand-in message is rebuilt: the text parts as they are, each
other part as an empty stub that keeps its type, file name and size. ``PEEK`` leaves ``\\Seen``
alone: people may read the mailbox in their own client at the same time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from triage.mailbox.protocol import MailboxConnection

PARTIAL_HEADER = "X-Triage-Partial"


@dataclass(frozen=True)
class Fetched:
    uid: int
    size: int
    raw: bytes
    partial: bool


@dataclass(frozen=True)
class PartInfo:
    section: str
    ctype: str
    filename: str | None
    size: int
    is_text: bool


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _params(value: Any) -> dict[str, str]:
    if not isinstance(value, (tuple, list)):
        return {}
    items = [_text(v) for v in value]
    return {items[i].lower(): items[i + 1] for i in range(0, len(items) - 1, 2)}


def walk_structure(bs: Any, prefix: str = "") -> Iterator[PartInfo]:
    """The leaf parts of an imapclient BODYSTRUCTURE with their section numbers."""
    if getattr(bs, "is_multipart", False):
        for i, part in enumerate(bs[0], 1):
            yield from walk_structure(part, f"{prefix}{i}.")
        return
    section = prefix.rstrip(".") or "1"
    maintype, subtype = _text(bs[0]).lower(), _text(bs[1]).lower()
    params = _params(bs[2]) if len(bs) > 2 else {}
    size = int(bs[6]) if len(bs) > 6 and isinstance(bs[6], int) else 0
    disposition, filename = "", params.get("name")
    # Extension data: for text/* the disposition sits at index 9, for other types at 8.
    for index in (9, 8):
        if len(bs) > index and isinstance(bs[index], (tuple, list)) and bs[index]:
            disposition = _text(bs[index][0]).lower()
            filename = filename or _params(bs[index][1] if len(bs[index]) > 1 else None).get(
                "filename")
            break
    is_text = (maintype == "text" and subtype in ("plain", "html")
               and disposition != "attachment" and not filename)
    yield PartInfo(section, f"{maintype}/{subtype}", filename, size, is_text)


def fetch_batch(conn: MailboxConnection, uids: list[int], full_fetch_bytes: int,
                max_message_bytes: int | None = None, max_text_bytes: int | None = None
                ) -> list[Fetched]:
    """The messages of ``uids`` that still exist, ready for :func:`triage.pipeline`.

    A batch costs a fixed number of round trips whatever its size: one for the sizes and
    structures, one for the small messages whole, and one per distinct set of text sections
    among the large ones (most large messages share a structure, so usually one or two).

    A message over ``max_message_bytes`` (its ``RFC822.SIZE``, known before anything else is
    fetched) gets only its header: it is quarantined for its size. Text parts are fetched up to
    ``max_text_bytes`` each (an IMAP partial fetch), so no single part can flood memory.
    """
    if not uids:
        return []
    meta = conn.fetch(uids, ["RFC822.SIZE", "BODYSTRUCTURE"])
    small = [u for u in uids if u in meta and int(meta[u].get(b"RFC822.SIZE", 0))
             <= full_fetch_bytes]
    whole = set(small)
    large = [u for u in uids if u in meta and u not in whole]
    out: dict[int, Fetched] = {}
    if small:
        for uid, data in conn.fetch(small, ["BODY.PEEK[]"]).items():
            raw = data.get(b"BODY[]") or b""
            out[uid] = Fetched(uid, int(meta[uid].get(b"RFC822.SIZE", len(raw))), raw, False)
    # FETCH takes one list of items for all its UIDs: group the large messages by the sections
    # they need, one command per group.
    plans: dict[int, list[PartInfo]] = {}
    groups: dict[tuple[str, ...], list[int]] = {}
    for uid in large:
        structure = meta[uid].get(b"BODYSTRUCTURE")
        oversize = max_message_bytes is not None and int(
            meta[uid].get(b"RFC822.SIZE", 0)) > max_message_bytes
        plans[uid] = (list(walk_structure(structure)) if structure is not None and not oversize
                      else [])
        groups.setdefault(tuple(_partial_items(plans[uid], max_text_bytes)), []).append(uid)
    for items, group in groups.items():
        fetched = conn.fetch(group, list(items))
        for uid in group:
            if uid not in fetched:
                continue  # expunged meanwhile
            size = int(meta[uid].get(b"RFC822.SIZE", 0))
            out[uid] = Fetched(uid, size, _rebuild(uid, plans[uid], fetched[uid]), True)
    return [out[u] for u in uids if u in out]


def _texts(parts: list[PartInfo]) -> list[PartInfo]:
    return [p for p in parts if p.is_text][:8]


def _partial_items(parts: list[PartInfo], max_text_bytes: int | None = None) -> list[str]:
    items = ["BODY.PEEK[HEADER]"]
    cap = f"<0.{max_text_bytes}>" if max_text_bytes else ""
    for p in _texts(parts):
        items += [f"BODY.PEEK[{p.section}.MIME]", f"BODY.PEEK[{p.section}]{cap}"]
    return items


def _rebuild(uid: int, parts: list[PartInfo], data: dict[bytes, Any]) -> bytes:
    """The stand-in message: the header, the text parts, a stub for every other part."""
    texts = _texts(parts)
    header = data.get(b"BODY[HEADER]") or b""
    header = re.sub(rb"(?im)^(content-type|content-transfer-encoding):.*(\r?\n[ \t].*)*\r?\n",
                    b"", header).rstrip(b"\r\n")
    boundary = f"triage-partial-{uid}".encode()
    body = [header, f"\r\n{PARTIAL_HEADER}: only headers and text parts were fetched".encode(),
            b"\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n"]
    for p in texts:
        mime = data.get(f"BODY[{p.section}.MIME]".encode()) or b"Content-Type: text/plain\r\n\r\n"
        body += [b"--" + boundary + b"\r\n", mime.rstrip(b"\r\n") + b"\r\n\r\n",
                 data.get(f"BODY[{p.section}]".encode())
                 or data.get(f"BODY[{p.section}]<0>".encode()) or b"", b"\r\n"]
    for p in parts:
        if p.is_text:
            continue
        name = (p.filename or "sans-nom").replace('"', "'")
        body += [b"--" + boundary + b"\r\n",
                 f'Content-Type: {p.ctype}; name="{name}"\r\n'
                 f'Content-Disposition: attachment; filename="{name}"\r\n'
                 f"{PARTIAL_HEADER}: {p.size} bytes not fetched\r\n\r\n".encode()]
    body.append(b"--" + boundary + b"--\r\n")
    return b"".join(body)
