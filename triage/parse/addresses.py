"""Address headers (From, To, Cc …) parsed strictly, whatever the Python release.

:func:`email.utils.getaddresses` of Python 3.11.7 lacks the strict mode added for
CVE-2023-27043: it can take the wrong part of a malformed header for the address
(``alice@example.org)<bob@example.org>``, unbalanced quotes or parentheses). The checks of that
fix are applied here: parentheses outside quoted strings must balance, the parser must find as
many mailboxes as the header has commas outside quoted strings plus one, and no address may
keep a ``[`` (the mark of a failed domain-literal parse).

Two more protections:

- RFC 2047 encoded words are replaced by opaque placeholders before the address syntax is read,
  and decoded only inside display names afterwards: an encoded word can never *become* an
  address or a separator (``=?utf-8?q?victim=40example.org?=`` or ``=?utf-8?q?=2C?=``).
  It also keeps their ``:`` and ``<`` away from the parser (MimeKit's stack-overflow.txt
  makes the standard parser recurse once per colon, past the recursion limit).
- The parser's recursion on group syntax is caught: a header that defeats it is unreadable,
  not a crash.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass

from triage.parse.decode import ENCODED_WORD, decode_header, recover_8bit
from triage.parse.message import Address

#: Placeholders for encoded words: characters of a Unicode private-use plane that never occur
#: in real headers (any already present are replaced by U+FFFD first).
_PLACEHOLDER_BASE = 0xF0000
_PLACEHOLDER_MAX = 0xFFFFD - _PLACEHOLDER_BASE
#: Address headers longer than this are not read at all (a real one is a few kB at most).
MAX_ADDRESS_HEADER = 64 * 1024
_PLACEHOLDERS = re.compile("([\U000F0000-\U000FFFFD])")
_PRIVATE_PLANE = re.compile("[\U000F0000-\U0010FFFF]")


@dataclass(frozen=True)
class ParsedAddresses:
    """The mailboxes of one kind of header, and why the header was unusable if it was."""

    addresses: tuple[Address, ...]
    problem: str | None = None
    #: Every (display name, address) pair the parser found, with an "@" or not.
    pairs: tuple[tuple[str, str], ...] = ()


_NO_HEADER = ParsedAddresses(())

# The usual shapes of a one-address header, which :func:`email.utils.getaddresses` reads one
# character at a time in Python: ``local@domain`` and ``Display Name <local@domain>`` (display
# words plain or quoted, separated by blanks). Every character that the standard parser treats
# specially (its specials, quotes and backslashes inside quoted words, whitespace other than
# blanks between words, comments) keeps a header off this path. For what it matches, the
# parser's answer is the address as written and the words joined by one space
# (tests/test_addresses_fast.py checks it against the parser).
_ATOM = r'[^()<>@,:;."\[\]\s]+'
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*"
_PHRASE_WORD = r'"[^"\\\r\n]*"|[^()<>@,:;"\[\]\s]+'
_SIMPLE_ADDRESS = re.compile(
    rf"[ \t]*(?:(?P<bare>{_ADDR_SPEC})|(?P<phrase>(?:{_PHRASE_WORD})(?:[ \t]+(?:{_PHRASE_WORD}))*)?"
    rf"[ \t]*<(?P<angle>{_ADDR_SPEC})>)[ \t]*")
_WORD = re.compile(r'"([^"\\\r\n]*)"|([^\s"]+)')


def simple_address(text: str) -> tuple[str, str] | None:
    """(display name, address) of a header of one of the usual shapes, as
    :func:`email.utils.getaddresses` reads it; None for any other header."""
    match = _SIMPLE_ADDRESS.fullmatch(text)
    if match is None:
        return None
    if match.group("bare") is not None:
        return "", match.group("bare")
    phrase = match.group("phrase") or ""
    words = [w.group(1) if w.group(1) is not None else w.group(2) for w in _WORD.finditer(phrase)]
    return " ".join(words), match.group("angle")


def getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """:func:`email.utils.getaddresses`, the usual one-address headers read by one regular
    expression."""
    if len(values) == 1:
        simple = simple_address(values[0])
        if simple is not None:
            return [simple]
    return email.utils.getaddresses(values)


def _protect(text: str, words: list[str]) -> str:
    """``text`` with each encoded word replaced by a placeholder; the words go to ``words``."""
    if not text.isascii():
        text = _PRIVATE_PLANE.sub("\ufffd", text)

    def replace(match: re.Match[str]) -> str:
        if len(words) >= _PLACEHOLDER_MAX:
            return "\ufffd"
        words.append(match.group(0))
        return chr(_PLACEHOLDER_BASE + len(words) - 1)

    return ENCODED_WORD.sub(replace, text)


def _restore(text: str, words: list[str]) -> str:
    if not words:
        return text
    return "".join(words[ord(ch) - _PLACEHOLDER_BASE]
                   if _PLACEHOLDER_BASE <= ord(ch) < _PLACEHOLDER_BASE + len(words) else ch
                   for ch in text)


def _outside_quotes(text: str) -> str:
    """``text`` without its quoted strings (backslash escapes honoured), as in the CVE fix."""
    if '"' not in text:
        return text
    out: list[str] = []
    inside = escaped = False
    for ch in text:
        if escaped:
            escaped = False
            if not inside:
                out.append(ch)
        elif ch == "\\":
            escaped = True
            if not inside:
                out.append(ch)
        elif ch == '"':
            inside = not inside
        elif not inside:
            out.append(ch)
    return "".join(out)


def _balanced_parentheses(text: str) -> bool:
    if "(" not in text and ")" not in text:
        return True
    depth = 0
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def parse_addresses(values: list[str], *, strict: bool) -> ParsedAddresses:
    """Parse the raw values of one address header (all its occurrences joined).

    With ``strict``, any sign that the parser may have misread the header makes it unusable
    (``problem`` says why, in French, for the agents); without it, whatever parsed into an
    address with an ``@`` is kept (To, Cc: routing evidence, never a reply target).
    """
    if not values:
        return _NO_HEADER  # most messages have no Sender, Reply-To, Delivered-To…
    texts = [str(v) for v in values]
    total = sum(len(t) for t in texts)
    if total > MAX_ADDRESS_HEADER:
        return ParsedAddresses((), f"en-tête d'adresses de {total} caractères, trop long pour "
                                   "être lu")
    words: list[str] = []
    # Encoded words are set aside first, raw bytes and all (their bytes are decoded with their
    # own charset); the raw 8-bit text around them is decoded piece by piece.
    protected = ["".join(recover_8bit(piece) for piece in _PLACEHOLDERS.split(
        _protect(" ".join(text.splitlines()), words))) for text in texts]
    problem: str | None = None
    if strict and not all(_balanced_parentheses(_outside_quotes(p)) for p in protected):
        problem = "parenthèses déséquilibrées"
    try:
        pairs = getaddresses(protected)
    except (RecursionError, IndexError, ValueError):
        return ParsedAddresses((), "en-tête d'adresses illisible (syntaxe trop imbriquée)")
    if strict and problem is None:
        expected = sum(1 + (_outside_quotes(p).count(",") if "," in p else 0) for p in protected)
        if any("[" in addr for _name, addr in pairs):
            problem = "adresse mal formée (crochet)"
        elif len(pairs) != expected:
            problem = f"{len(pairs)} adresse(s) lue(s) pour {expected} attendue(s)"
    out: list[Address] = []
    restored: list[tuple[str, str]] = []
    for name, addr in pairs:
        display = decode_header(_restore(name, words)).strip().strip('"').strip()
        address = _restore(addr, words).strip()
        restored.append((display, address))
        # An address that held an encoded word is not an address (RFC 2047 §5).
        if "@" in address and (addr.isascii() or not _PRIVATE_PLANE.search(addr)):
            out.append(Address(display, address.lower()))
    return ParsedAddresses(tuple(out), problem, tuple(restored))
