"""Text helpers shared by the parser and the rules: normalisation for matching."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any

import re2

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
# Typographic quotes and dashes made plain, ligatures spelt out: one table, applied by one
# str.replace for each of its characters that a text holds, a regular expression telling first
# whether it holds any (a str.translate with a dict looks up every character of the text in
# Python's dict, four times slower on a message).
_PLAIN = {"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'",
          "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
          "«": '"', "»": '"', "“": '"', "”": '"',
          "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"}
_SPECIAL = re.compile("[" + "".join(_PLAIN) + "]")
# The combining diacritical marks block: what NFKD leaves of é, è, ç, ô…
_COMBINING = re.compile("[\u0300-\u036f]")
# Anything but ASCII and that block: when NFKD left none, dropping the non-ASCII characters is
# dropping the marks, which str.encode does in one pass (a regular expression substitution
# pays for each of the many accents of a French line).
_NOT_ASCII_OR_COMBINING = re.compile("[^\x00-\x7f\u0300-\u036f]")


def fold(text: str) -> str:
    """Lower-case, accents removed, typographic quotes and dashes made plain, spaces collapsed.

    Rules match against folded text so that ``expiré``, ``EXPIRE`` and ``expire`` are one word.
    The length of the text may change (ligatures), so offsets are not carried over.
    """
    if text.isascii():
        # Of the table only the backquote concerns ASCII.
        text = text.replace("`", "'").lower()
    else:
        if _SPECIAL.search(text) is not None:
            # One replace for each character present: a substitution would call back into
            # Python at each of the many apostrophes of a French text.
            for special, plain in _PLAIN.items():
                if special in text:
                    text = text.replace(special, plain)
        if _NOT_LATIN1_ONE_TO_ONE.search(text) is None:
            # Most French text is Latin-1: a byte table does in one pass what the steps
            # below do (see _latin1_table).
            text = text.encode("latin-1").translate(_LATIN1).decode("latin-1")
        else:
            text = _without_marks(text).lower()
            if not text.isascii():
                return _SPACES.sub(" ", text)
    # Only a tab or two spaces in a row make a run of spaces to collapse now, and a
    # substitution that replaces every single space is costly.
    return _SPACES.sub(" ", text) if "\t" in text or "  " in text else text


def _without_marks(text: str) -> str:
    """``text`` decomposed (NFKD), without its combining marks."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text)
    if _NOT_ASCII_OR_COMBINING.search(text) is None:
        return text.encode("ascii", "ignore").decode("ascii")
    text = _COMBINING.sub("", text)
    if not text.isascii():  # rarer marks, outside the common block
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text


def _latin1_table() -> tuple[bytes, re.Pattern[str]]:
    """What :func:`fold` makes of each Latin-1 character before it collapses spaces, as a byte
    table, and a pattern that finds the characters the table cannot fold: beyond Latin-1, or
    folded into none, several or one beyond Latin-1 (« ½ », « µ »), or into a no-break space.

    Up to the collapse of spaces, folding goes character by character: NFKD only decomposes
    (the marks it would reorder are all dropped), and lower case depends on the neighbours
    only for the Greek capital sigma. Without a no-break space in the table's output, a run of
    spaces to collapse holds two spaces in a row or a tab."""
    table = bytearray(range(256))
    kept = []
    for code in range(256):
        folded = _without_marks(_PLAIN.get(chr(code), chr(code))).lower()
        if len(folded) == 1 and ord(folded) < 256 and folded != "\u00a0":
            table[code] = ord(folded)
            kept.append(code)
    ranges: list[list[int]] = []
    for code in kept:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    spelt = "".join(f"\\x{low:02x}-\\x{high:02x}" for low, high in ranges)
    return bytes(table), re.compile(f"[^{spelt}]")


_LATIN1, _NOT_LATIN1_ONE_TO_ONE = _latin1_table()


def fold_lines(text: str) -> str:
    """:func:`fold`, keeping line breaks (signature lines are read one by one)."""
    return "\n".join(fold(line).strip() for line in text.splitlines())


def compact(text: str) -> str:
    """Folded, letters and digits only: ``Saint-Agrève`` -> ``saintagreve``."""
    return re.sub(r"[^a-z0-9]", "", fold(text))


# RE2's spelling of Python's \d, \s and \w, as classes that hold at least what they match in a
# str pattern (tests/test_text.py checks every code point): exact on ASCII, any other character.
# Unicode's letters and numbers would make RE2's automaton many times larger (UTF-8 sequences):
# it then outgrows RE2's memory and falls back to a slow search; the rules' text is mostly ASCII.
_LOOSE_CATEGORIES = {
    sre_constants.CATEGORY_DIGIT: r"0-9\x{80}-\x{10ffff}",
    sre_constants.CATEGORY_WORD: r"0-9A-Z_a-z\x{80}-\x{10ffff}",
    sre_constants.CATEGORY_SPACE: r"\x{9}-\x{d}\x{1c}-\x{20}\x{80}-\x{10ffff}",
}
_ANY = r"(?s:.)"


def _char(code: int) -> str:
    return f"\\x{{{code:x}}}"


def _loose(nodes: sre_parser.SubPattern | list[tuple[Any, Any]]) -> str:
    """RE2 syntax for a pattern that matches wherever the parsed ``nodes`` match and more: the
    lookarounds and anchors are dropped (RE2 has no lookaround), greedy or not is one."""
    out = []
    for op, av in nodes:
        if op is sre_constants.LITERAL:
            out.append(_char(av))
        elif op is sre_constants.NOT_LITERAL:
            out.append(f"[^{_char(av)}]")
        elif op is sre_constants.ANY:
            out.append(_ANY)  # wider than "." without DOTALL: a superset still
        elif op is sre_constants.IN:
            out.append(_loose_class(av))
        elif op is sre_constants.BRANCH:
            out.append("(?:" + "|".join(_loose(branch) for branch in av[1]) + ")")
        elif op is sre_constants.SUBPATTERN:
            if av[1] & re.IGNORECASE:
                raise ValueError("case-insensitive group")
            out.append("(?:" + _loose(av[3]) + ")")
        elif op is sre_constants.ATOMIC_GROUP:
            out.append("(?:" + _loose(av) + ")")
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT,
                    sre_constants.POSSESSIVE_REPEAT):
            low, high, item = av
            if low > 1000:
                raise ValueError("repeat too long for RE2")
            bound = "" if high is sre_constants.MAXREPEAT or high > 1000 else str(high)
            out.append(f"(?:{_loose(item)}){{{low},{bound}}}")
        elif op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            continue  # dropped: the match may then start anywhere the assertion held or not
        elif op is sre_constants.CATEGORY:
            out.append(_loose_class([(op, av)]))
        else:
            raise ValueError(f"no RE2 spelling for {op}")
    return "".join(out)


def _class_item(op: Any, av: Any) -> str | None:
    """RE2's spelling of one member of a class; None for one it cannot narrow (a negation,
    a negated category)."""
    if op is sre_constants.LITERAL:
        return _char(av)
    if op is sre_constants.RANGE:
        return f"{_char(av[0])}-{_char(av[1])}"
    return _LOOSE_CATEGORIES.get(av) if op is sre_constants.CATEGORY else None


def _loose_class(items: list[tuple[Any, Any]]) -> str:
    parts = [_class_item(op, av) for op, av in items]
    if any(part is None for part in parts):
        return _ANY  # any character: a superset still
    return "[" + "".join(p for p in parts if p is not None) + "]"


def _first_start_fast(regexp: Any, data: bytes, pos: int) -> int:
    start: int = regexp._regexp.Match(_UNANCHORED, data, pos, len(data))[0][0]
    return start


def _match_spans_fast(regexp: Any, data: bytes) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos, end = 0, len(data)
    match = regexp._regexp.Match
    while True:
        start, stop = match(_UNANCHORED, data, pos, end)[0]
        if start < 0:
            return spans
        spans.append((start, stop))
        if pos == end:
            return spans
        pos = pos + 1 if pos == stop else stop


def _first_start_public(regexp: Any, data: bytes, pos: int) -> int:
    found = regexp.search(data, pos)
    return -1 if found is None else int(found.start())


def _match_spans_public(regexp: Any, data: bytes) -> list[tuple[int, int]]:
    return [found.span() for found in regexp.finditer(data)]


def _internals_work() -> bool:
    """Whether this google-re2 still holds its compiled RE2 where the fast calls read it (a
    private part of the wrapper, google-re2 1.1): else the wrapper's public calls, slower."""
    try:
        probe = re2.compile(b"b+")
        return (_first_start_fast(probe, b"abba", 0) == 1
                and _match_spans_fast(probe, b"abba b") == [(1, 3), (5, 6)])
    except Exception:  # any change in the wrapper's insides
        return False


try:
    _UNANCHORED = re2._Anchor.UNANCHORED
except AttributeError:  # checked again, and turned down, by _internals_work
    _UNANCHORED = None
_FAST = _internals_work()


def first_start(regexp: Any, data: bytes, pos: int) -> int:
    """Where RE2's ``regexp`` first matches in ``data`` from ``pos`` (a valid offset); -1 if
    nowhere. Asked of the compiled RE2 the wrapper holds: the wrapper's ``search`` makes a
    generator and a match object at each call (1 to 3 µs; a message costs dozens of calls)."""
    return (_first_start_fast if _FAST else _first_start_public)(regexp, data, pos)


def match_spans(regexp: Any, data: bytes) -> list[tuple[int, int]]:
    """The spans of RE2's ``regexp``'s successive matches in ``data``, as its ``finditer``
    finds them (after an empty match, one byte on), without the wrapper's generator and match
    object at each. A pattern without groups lets RE2 find them by its automata alone."""
    return (_match_spans_fast if _FAST else _match_spans_public)(regexp, data)


def for_re2(text: str) -> str | bytes:
    """``text`` as RE2 reads it fastest: an ASCII text as its bytes, whose offsets are the
    same, without the conversions of offsets RE2's Python wrapper makes for a str. Decoded text
    never holds a lone surrogate (triage.parse.decode), so a str always reaches RE2."""
    return text.encode("ascii") if text.isascii() else text


def re2_start(regexp: Any, searched: str | bytes, pos: int = 0) -> int:
    """Where ``regexp`` first matches in ``searched`` (a :func:`for_re2` text) from ``pos``, a
    valid offset; -1 if nowhere. Bytes are asked of the compiled RE2 itself
    (:func:`first_start`); a str of the pattern's own ``search`` (RE2's or ``re``'s)."""
    if isinstance(searched, bytes):
        return first_start(regexp, searched, pos)
    match = regexp.search(searched, pos)
    return -1 if match is None else int(match.start())


class Sieved:
    """A regular expression whose text RE2 scans first: the same matches as the pattern's own
    ``search`` and ``finditer`` (tests/test_text.py), found sooner where it rarely matches.

    Python's engine tries the pattern at every position of the text; RE2 crosses it in one
    pass of a DFA (a few µs for a page), with a looser pattern (:func:`_loose`) that matches
    wherever the pattern does. Where RE2 finds nothing, there is nothing; else Python's
    engine tries the pattern only where RE2 finds a match of the looser one, the leftmost
    from where the last match ended (lookbehinds and ``\\b`` still see the text before it,
    and ``^`` the real start): its search would find no match before. A pattern RE2 cannot
    spell loosely (case-insensitive, backreferences) is used alone.
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self._sieve: Any = None
        self.loose: str | None = None  # RE2's looser pattern
        # After an empty match, a search goes on by Python's own rules: such a pattern is
        # searched, not tried at RE2's candidates.
        self._hops = False
        if not pattern.flags & re.IGNORECASE:
            try:
                options = re2.Options()
                options.log_errors = False
                parsed = sre_parser.parse(pattern.pattern, pattern.flags)
                self.loose = _loose(parsed)
                self._sieve = re2.compile(self.loose, options)
                self._hops = parsed.getwidth()[0] > 0
            except Exception:  # no sieve then: the pattern alone is exact
                self._sieve = self.loose = None

    def _start(self, text: str | bytes, pos: int = 0) -> int:
        """Where the pattern may first match in ``text`` from ``pos``; -1 where it cannot."""
        return re2_start(self._sieve, text, pos)

    def search(self, text: str) -> re.Match[str] | None:
        return next(self.finditer(text), None)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self._sieve is None or len(text) < _SIEVE_FROM:
            return self.pattern.finditer(text)
        searched = for_re2(text)
        start = self._start(searched)
        if start < 0:
            return iter(())
        if self._hops and isinstance(searched, bytes):
            return self._hop(text, searched, start)
        return self.pattern.finditer(text, start)

    def _hop(self, text: str, data: bytes, start: int) -> Iterator[re.Match[str]]:
        """The matches from ``start``, the pattern tried at each of RE2's candidates in
        ``data`` (``text`` as bytes), then, past :data:`_MAX_HOPS` of them, searched as usual:
        each hop costs a call to RE2, and a text may hold a candidate every few characters."""
        for _ in range(_MAX_HOPS):
            match = self.pattern.match(text, start)
            if match is not None:
                yield match
                start = self._start(data, match.end())
            else:
                start = self._start(data, start + 1)
            if start < 0:
                return
        yield from self.pattern.finditer(text, start)


class SievedGroup:
    """Sieved patterns searched in the same text, RE2 crossing it once for all of them (the
    union of their looser patterns) where they rarely match: where it finds nothing, none of
    them matches."""

    def __init__(self, members: tuple[Sieved, ...]) -> None:
        self._sieve: Any = None
        if all(member.loose is not None for member in members):
            options = re2.Options()
            options.log_errors = False
            self._sieve = re2.compile("|".join(f"(?:{m.loose})" for m in members), options)

    def may_match(self, text: str) -> bool:
        """False when none of the patterns matches ``text``; True when one may."""
        if self._sieve is None or len(text) < _SIEVE_FROM:
            return True
        return re2_start(self._sieve, for_re2(text)) >= 0


#: RE2's candidates at which the pattern is tried before it searches the rest of the text itself.
_MAX_HOPS = 24
#: Below this length Python's engine is about as fast as a call to RE2.
_SIEVE_FROM = 200
