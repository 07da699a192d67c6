"""Charset and header decoding that always returns text, in linear time.

Senders declare the wrong charset often (ISO-8859-1 for windows-1252 text, us-ascii or a
legacy charset for UTF-8) or none at all. The order tried: UTF-8, strictly, when the bytes are
8-bit (valid UTF-8 is almost never an accident); the declared charset, strictly; UTF-8 with
replacement characters when the text is declared UTF-8 (or nothing) and mostly is; windows-1252
(a superset of ISO-8859-1's printable range); and last the declared charset (or UTF-8) with
replacement characters, so that decoding can never fail.

Header values are decoded here rather than by :func:`email.header.decode_header`, which is
quadratic on long runs of encoded words (cpython #136063) and gives up on a malformed word:
RFC 2047 words are found with a pattern that cannot backtrack across words, adjacent words of
one charset are joined before decoding (a UTF-8 character may be split between two words), and
the decoded value is made one line (no CR, LF or other control characters survive, so a
decoded subject can never inject a header into a reply).
"""

from __future__ import annotations

import binascii
import codecs
import email.header
import re

_ALIASES = {
    "iso-8859-1": "windows-1252",  # the same but for 0x80-0x9f, which senders mean as cp1252
    "iso8859-1": "windows-1252",
    "iso_8859-1": "windows-1252",
    "latin-1": "windows-1252",
    "latin1": "windows-1252",
    "l1": "windows-1252",
    "us-ascii": "utf-8",  # 8-bit bytes under us-ascii are nearly always UTF-8
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
    "utf8": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "iso-gb2312": "gb18030",
    "x-gbk": "gb18030",
    "gbk": "gb18030",
    "x-mac-cyrillic": "mac-cyrillic",
}

#: Codecs that are not charsets (``base64``, ``rot13``, ``idna``, ``unicode_escape`` …): a charset
#: naming one is treated as unknown rather than run over the body.
_NOT_CHARSETS = {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"}


_NOT_ASCII_COMPATIBLE = {"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
                         "utf-7"}


def codec_name(charset: str | None) -> str | None:
    """The Python codec for a MIME charset name, or ``None`` when it is unknown or unusable."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if not name or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


#: The charsets whose Python decoder lets lone surrogates through (UTF-7's "+2D0-" is U+D83D
#: alone; tests/test_bad_input.py). No UTF-8 encoder accepts them (the store's, the logs', RE2's
#: for the rules): decoded text must never hold one.
_SURROGATE_DECODERS = {"utf-7"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, str | None]:
    """Decode ``data``; return the text and a defect note when the declaration was wrong.

    The text holds no lone surrogate: where the declared charset's decoder yields one, it
    becomes U+FFFD, and the note says so."""
    declared = codec_name(charset)
    text, note = _decode(data, charset, declared)
    if declared in _SURROGATE_DECODERS and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
        replaced = f"lone surrogates under charset {(charset or '')[:40]!r}; replaced"
        note = f"{note}; {replaced}" if note else replaced
    return text, note


def _decode(data: bytes, charset: str | None, declared: str | None) -> tuple[str, str | None]:
    if declared is not None and declared.startswith(("iso2022", "utf-7", "hz")) and data.isascii():
        # 7-bit data a 7-bit charset (ISO-2022-JP, UTF-7) cannot decode strictly: keep the
        # charset's reading of what it can, rather than its escape sequences as text.
        try:
            return data.decode(declared), None
        except (UnicodeError, LookupError):
            try:
                return data.decode(declared, errors="replace"), (
                    f"undecodable bytes under charset {charset!r}; replaced")
            except (UnicodeError, LookupError):
                pass
    order = [declared, "utf-8", "cp1252"]
    if declared not in _NOT_ASCII_COMPATIBLE and not data.isascii():
        # 8-bit text that is valid UTF-8 is UTF-8, whatever the label says: in a legacy
        # charset, French text almost never forms valid UTF-8 sequences by accident.
        order = ["utf-8", declared, "cp1252"]
    tried: list[str] = []
    for name in order:
        if name is None or name in tried:
            continue
        tried.append(name)
        try:
            text = data.decode(name)
        except (UnicodeError, LookupError):
            if name == "utf-8" and declared in (None, "utf-8"):
                mostly = _mostly_utf8(data)
                if mostly is not None:
                    return mostly, (f"invalid UTF-8 bytes under charset {(charset or '')[:40]!r};"
                                    " replaced")
            continue
        note = None
        if charset and declared is None:
            note = f"unknown charset {charset[:40]!r}; decoded as {name}"
        elif charset and name != declared:
            note = f"declared charset {charset[:40]!r} was wrong; decoded as {name}"
        return text, note
    try:
        text = data.decode(declared or "utf-8", errors="replace")
    except (UnicodeError, LookupError):
        text = data.decode("utf-8", errors="replace")
    return text, (
        f"undecodable bytes under charset {(charset or '')[:40]!r}; replaced")


def _mostly_utf8(data: bytes) -> str | None:
    """UTF-8 with a few bad bytes (a stray Latin-1 byte pasted in): the text with U+FFFD for
    them, when the valid multi-byte characters outnumber the bad bytes; else ``None`` (then
    windows-1252 reads the whole better)."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", "ignore")) - bad  # non-ASCII, not U+FFFD
    return text if good > bad else None


_RAW_BYTE = re.compile("[\udc80-\udcff]")


def recover_8bit(text: str) -> str:
    """Header text as parsed by compat32, with raw 8-bit bytes (kept as surrogates) decoded."""
    if text.isascii() or not _RAW_BYTE.search(text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))[0]


# One RFC 2047 encoded word: charset (with an optional RFC 2231 language), B or Q, encoded text.
# No class overlaps the next delimiter, so a failed match costs only the length of one word.
ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r\n[ \t]*|\r[ \t]*|\n[ \t]*")
# C0 controls but tab, DEL, and what str.splitlines() also breaks at (NEL, U+2028, U+2029).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r"[ \t]{2,}")


def _word_bytes(encoding: str, text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        raw = re.sub(rb"[^A-Za-z0-9+/]", b"", raw)
        raw = raw[: len(raw) - len(raw) % 4] if len(raw) % 4 == 1 else raw
        try:
            return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            return b""
    return binascii.a2b_qp(raw, header=True)


def decode_words(text: str) -> str:
    """Decode the RFC 2047 words of ``text`` (unfolded; raw 8-bit bytes kept as surrogates).

    The bytes of a word are its own, so that a raw 8-bit byte inside a word (invalid, but
    sent) is decoded with the word's charset; the text between words is decoded on its own.
    """
    out: list[str] = []
    pending: list[bytes] = []
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(decode_bytes(b"".join(pending), pending_charset)[0])
        pending, pending_charset = [], None

    previous_end = -1
    for match in ENCODED_WORD.finditer(text):
        between = text[pos:match.start()]
        # Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
        if not (pos == previous_end and (not between or between.isspace())):
            flush()
            out.append(recover_8bit(between))
        charset = match.group(1).lower()
        if pending and charset != pending_charset:
            flush()
        pending.append(_word_bytes(match.group(2), match.group(3)))
        pending_charset = charset
        pos = previous_end = match.end()
    flush()
    out.append(recover_8bit(text[pos:]))
    return "".join(out)


def one_line(text: str) -> str:
    """Unfold a header value; control characters (CR, LF, NUL …) and runs of spaces become one
    space, so a decoded value can never carry a line break into a reply's headers."""
    if text.isascii() and text.isprintable():
        # No control character, no tab: only runs of spaces, if any, to collapse (each pattern
        # tries every position of the value, a few microseconds for a folded header).
        return (_SPACES.sub(" ", text) if "  " in text else text).strip()
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def _unfold(text: str) -> str:
    """``_FOLD.sub(" ", text)``: each line end and the blanks after it made one space; without
    a CR, by splitting at the LFs (a third of the time of the pattern, which tries every
    position)."""
    if "\r" in text:
        return _FOLD.sub(" ", text)
    if "\n" not in text:
        return text
    first, *rest = text.split("\n")
    return first + "".join([" " + line.lstrip(" \t") for line in rest])


def decode_header(value: object) -> str:
    """Decode a header value (str with RFC 2047 words, raw 8-bit, or a Header object)."""
    if (type(value) is str and value.isascii() and value.isprintable()
            and "  " not in value and "=?" not in value):
        # No 8-bit byte, control character (the line ends of a folded value, a tab …), run of
        # spaces or encoded word: the steps below would only strip it (two thirds of headers).
        return value.strip()
    if isinstance(value, email.header.Header):
        try:
            parts = [decode_bytes(chunk, str(charset) if charset else None)[0]
                     if isinstance(chunk, bytes) else chunk
                     for chunk, charset in email.header.decode_header(value)]
            return one_line("".join(parts))
        except Exception:  # a Header is built by the library; never let it stop the parse
            value = str(value)
    text = _unfold(str(value))
    text = decode_words(text) if "=?" in text else recover_8bit(text)
    return one_line(text)
