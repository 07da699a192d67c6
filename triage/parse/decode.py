"""Charset decoding that always returns text.

Senders declare the wrong charset often (ISO-8859-1 for windows-1252 text, us-ascii for 8-bit
UTF-8) or none at all. The order tried: the declared charset, strictly; UTF-8, strictly;
windows-1252 (a superset of ISO-8859-1's printable range); and last the declared charset (or
UTF-8) with replacement characters, so that decoding can never fail.
"""

from __future__ import annotations

import codecs
import email.header
import re

_ALIASES = {
    "iso-8859-1": "windows-1252",  # the same but for 0x80-0x9f, which senders mean as cp1252
    "latin-1": "windows-1252",
    "latin1": "windows-1252",
    "us-ascii": "utf-8",  # 8-bit bytes under us-ascii are nearly always UTF-8
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "utf8": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, str | None]:
    """Decode ``data``; return the text and a defect note when the declaration was wrong."""
    declared = _codec(charset)
    tried: list[str] = []
    for name in (declared, "utf-8", "windows-1252"):
        if name is None or name in tried:
            continue
        tried.append(name)
        try:
            text = data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        note = None
        if charset and name != declared:
            note = f"declared charset {charset!r} was wrong; decoded as {name}"
        elif charset and declared is None:
            note = f"unknown charset {charset!r}; decoded as {name}"
        return text, note
    return data.decode(declared or "utf-8", errors="replace"), (
        f"undecodable bytes under charset {charset!r}; replaced")


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header(value: object) -> str:
    """Decode a header value (str with RFC 2047 words, raw 8-bit, or a Header object)."""
    if isinstance(value, email.header.Header):
        chunks = email.header.decode_header(value)
    else:
        text = str(value)
        if any("\udc80" <= ch <= "\udcff" for ch in text):
            # compat32 keeps raw 8-bit header bytes as surrogates: recover and decode them.
            text = decode_bytes(text.encode("ascii", "surrogateescape"))[0]
        if not _ENCODED_WORD.search(text):
            return _unfold(text)
        try:
            chunks = email.header.decode_header(text)
        except (email.errors.HeaderParseError, ValueError, LookupError):
            return _unfold(text)
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            parts.append(decode_bytes(chunk, charset)[0])
        else:
            parts.append(chunk)
    return _unfold("".join(parts))


def _unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", text).strip()
