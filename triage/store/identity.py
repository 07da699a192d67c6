"""A message's identity: Message-ID plus a digest of its content, trace headers excluded.

Two deliveries of one message (to two department mailboxes) differ in their trace headers
(Received, Delivered-To, Return-Path, Authentication-Results …) but not in what the sender
wrote; the digest covers only the latter, so both copies are one ticket. Two different messages
that reuse one Message-ID have different digests, so they are two tickets.
"""

from __future__ import annotations

import hashlib
import re

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_HEADERS = (b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"content-type",
                    b"reply-to", b"in-reply-to")


def content_digest(raw: bytes) -> str:
    """SHA-256 of the sender's headers (unfolded, in order) and the body."""
    match = _HEADER_END.search(raw)
    head, body = (raw[: match.start()], raw[match.end():]) if match else (raw, b"")
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", head)
    h = hashlib.sha256()
    for line in unfolded.splitlines():
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in _CONTENT_HEADERS:
            h.update(name.strip().lower() + b":" + b" ".join(value.split()) + b"\n")
    h.update(b"\n")
    h.update(body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return h.hexdigest()


def identity(message_id: str | None, digest: str) -> str:
    return hashlib.sha256(f"{message_id or ''}\x00{digest}".encode()).hexdigest()
