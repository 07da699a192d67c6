"""What a linear scan of the raw bytes tells before the MIME parser runs.

Python's parser has costs that grow faster than the input, or fast with it: every body line is
tested against the boundary of every open multipart (lines × depth: 900 nested multiparts and
29 MB of lines take minutes with the standard buffer), each part is a few objects (millions of
empty parts exhaust memory), each line costs about half a microsecond, and nesting recurses
(about 900 levels raise :class:`RecursionError`). So the limits are checked first, on the
bytes: the size of the whole and of the header section, the number of header fields and of
lines, the nesting depth of the multiparts and their number of parts. A message over a limit
is then parsed for its headers only, and quarantined with the reason.

The MIME figures are estimates that can only err upwards: a ``boundary=`` parameter opens a
level; a delimiter line of an open boundary counts a part and closes the levels opened inside
it; a close delimiter closes its level. Unclosed levels (a common defect) are closed by the
next delimiter of an outer boundary, as the parser does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from triage.config import Limits, compile_bytes_pattern

#: The parser spends about half a microsecond per line: a message of 30 MB of empty lines
#: would take 8 s. A real message of 30 MB has about 400,000 lines (base64 attachments).
#: (``Limits.max_lines`` is used instead when the configuration has it.)
MAX_LINES = 1_000_000

_EOL = re.compile(rb"\r\n|\r|\n")
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")  # as email.feedparser's headerRE
_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")


class _Match(Protocol):
    def start(self, group: int = 0, /) -> int: ...
    def end(self, group: int = 0, /) -> int: ...
    def group(self, group: int, /) -> bytes | None: ...


#: Matches found by RE2 before re takes over (see :class:`_Pattern`); a real message has a few.
_FAST_MATCHES = 64


class _Pattern:
    """A pattern whose matches are found by RE2 first, then by re: the same matches as re's
    ``finditer`` (tests/test_prescan.py).

    RE2 crosses long input without a match much faster: a literal by ``memchr``, the rest by a
    DFA (a 1.5 MB attachment: 0.13 ms for the delimiter lines where re takes 0.6 ms; 0.45 ms for
    the case-insensitive ``boundary=``, where re needed a lower-cased copy and 1.7 ms). But its
    Python binding costs about 3 µs a match, ten times re's: hostile input holding a million
    matches would take seconds. After ``_FAST_MATCHES`` matches, re goes on where RE2 stopped.
    Under ``small`` bytes, re alone: faster when the pattern starts with a literal, which re
    also looks for quickly (most messages are short).
    """

    def __init__(self, source: bytes, small: int = 0) -> None:
        self._fast = compile_bytes_pattern(source)
        self._slow = re.compile(source)
        self._small = small

    def finditer(self, raw: bytes) -> Iterator[_Match]:
        if len(raw) < self._small:
            # Short input: re's own cost is below what RE2's binding costs per call and match.
            yield from self._slow.finditer(raw)
            return
        pos = 0
        for count, match in enumerate(self._fast.finditer(raw)):
            if count == _FAST_MATCHES:
                break
            yield match
            pos = match.end()
        else:
            return
        yield from self._slow.finditer(raw, pos)


# Whitespace spelled out: RE2's \s lacks the \v that re's has. (?i:) folds ASCII letters only,
# for both engines on bytes (and there are no other Latin-1 variants of these letters).
_BOUNDARY_PARAM = _Pattern(
    rb'(?i:boundary)[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^ \t\n\r\f\v;"]{1,200}))')
#: re finds these twice as fast as RE2's binding up to ~50 kB (the RE2 scan is faster beyond).
_SMALL = 32_768
_LF_DELIMITER = _Pattern(rb"\n--([^\r\n]*)", _SMALL)
# CR-only line ends ("\r\n--" has no "\r--")
_CR_DELIMITER = _Pattern(rb"\r--([^\r\n]*)", _SMALL)


class LineEnds:
    """The "\\n" of a message, counted once, by blocks: the count of any range then reads
    at most two blocks again (the size of a large attachment needs its count; a megabyte takes
    about 0.4 ms to count)."""

    BLOCK = 32_768

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        block = self.BLOCK
        self._blocks = [raw.count(b"\n", i, i + block) for i in range(0, len(raw), block)]
        self.total = sum(self._blocks)

    def count(self, start: int, end: int) -> int:
        """``raw.count(b"\\n", start, end)``, for offsets within the bytes."""
        block = self.BLOCK
        first, last = -(-start // block), end // block  # the whole blocks: [first, last)
        if first >= last:
            return self._raw.count(b"\n", start, end)
        return (self._raw.count(b"\n", start, first * block) + sum(self._blocks[first:last])
                + self._raw.count(b"\n", last * block, end))


@dataclass
class Prescan:
    """The header section's extent and size, the MIME estimates, and any limit exceeded."""

    header_end: int  # offset of the end of the last header line (the section's size in bytes)
    header_count: int
    parse_end: int  # offset up to which headers are kept when the message is over a limit
    mime_depth: int = 0
    mime_parts: int = 0
    violations: list[str] = field(default_factory=list)
    #: The offset of each line end ("\n" or "\r") followed by "--", in order, for the
    #: parser (:func:`triage.parse.mime.parse_bytes`); set when the scan went to the end.
    delimiters: list[int] | None = None
    #: The "\\n" of the bytes, when the line count needed them counted (a large message).
    line_ends: LineEnds | None = None

    @property
    def headers_only(self) -> bool:
        return bool(self.violations)


def scan(raw: bytes, limits: Limits) -> Prescan:
    """Check the limits on ``raw`` in a few linear passes; the violations are in French, for
    the agents."""
    result = _scan_headers(raw, limits)
    if len(raw) > limits.max_message_bytes:
        result.violations.insert(0, f"message de {len(raw)} octets, au-delà de la limite de "
                                    f"{limits.max_message_bytes} octets")
    if not result.violations:
        max_lines = int(getattr(limits, "max_lines", MAX_LINES))
        lines = _line_count(raw, max_lines, result)
        if lines > max_lines:
            result.violations.append(f"message de {lines} lignes, au-delà de la limite de "
                                     f"{max_lines} lignes")
    if not result.violations:
        _scan_mime(raw, limits, result)
    return result


def _line_count(raw: bytes, max_lines: int, result: Prescan | None = None) -> int:
    """The number of line ends ("\\r\\n", "\\r" or "\\n") of ``raw`` when it is over
    ``max_lines``; else a figure that is not over it either (the count is only compared).

    Counting "\\r\\n" is the slow count (about 1 ms a megabyte; one character is counted four
    times faster, and found ten times faster): it is skipped when a bound settles the test.
    Each line end takes a byte, and the line ends number at most the "\\n" plus the "\\r".
    The "\\n", when counted, are kept in ``result.line_ends`` (for the parser).
    """
    if len(raw) <= max_lines:
        return len(raw)
    line_ends = LineEnds(raw)
    if result is not None:
        result.line_ends = line_ends
    lf = line_ends.total
    if b"\r" not in raw:
        return lf
    cr = raw.count(b"\r")
    if lf + cr <= max_lines:
        return lf + cr
    return lf + cr - raw.count(b"\r\n")


# The header section as _scan_header_lines reads it: lines that are a field or a continuation,
# each ended by a line end, the last one maybe not ("$": the end of the input, for RE2). RE2's
# DFA takes half the time re does (5 us for a 1.7 kB section), in one call.
_SECTION = compile_bytes_pattern(
    rb"(?:(?:[\x21-\x39\x3b-\x7e]*:|[ \t])[^\r\n]*(?:\r\n|\r|\n))*"
    rb"(?:(?:[\x21-\x39\x3b-\x7e]*:|[ \t])[^\r\n]*$)?")


def _scan_headers(raw: bytes, limits: Limits) -> Prescan:
    """The extent of the header section and its number of fields, or the limit it exceeds."""
    if not raw.startswith(b"From "):
        # One match and a few counts instead of a loop over the lines (most messages): when
        # no limit is near, the section and the count are what the loop would find.
        end = _SECTION.match(raw).end()  # it matches "" at least
        if end <= limits.max_header_bytes:
            count = _field_count(raw[:end])
            if count <= limits.max_header_count:
                return Prescan(end, count, end)
    return _scan_header_lines(raw, limits)


def _field_count(section: bytes) -> int:
    """The lines of ``section`` (whole header lines) that do not start with a space or tab."""
    lines = section.count(b"\n")
    continued = section.count(b"\n ") + section.count(b"\n\t")
    if b"\r" in section:
        lines += section.count(b"\r") - section.count(b"\r\n")
        continued += section.count(b"\r ") + section.count(b"\r\t")
    if section and section[-1] not in b"\r\n":
        lines += 1  # the last line of the message, without a line end
    if section[:1] in (b" ", b"\t"):
        continued += 1
    return lines - continued


def _scan_header_lines(raw: bytes, limits: Limits) -> Prescan:
    n = len(raw)
    pos = count = 0
    field_start = 0
    while pos < n:
        match = _EOL.search(raw, pos)
        line_end, next_pos = (match.start(), match.end()) if match else (n, n)
        if line_end == pos:  # the empty line that ends the header section
            break
        if raw[pos] in b" \t":
            pass  # a continuation line belongs to the field above
        elif _FIELD.match(raw, pos, line_end) or (pos == 0 and raw.startswith(b"From ")):
            count += 1
            field_start = pos
            if count > limits.max_header_count:
                return Prescan(pos, count, pos, violations=[
                    f"plus de {limits.max_header_count} en-têtes, au-delà de la limite"])
        else:
            break  # the first line that is no header starts the body, as for the parser
        if line_end > limits.max_header_bytes:
            # Measure the section without keeping more of it, then keep whole fields only.
            end = _section_end(raw, next_pos)
            return Prescan(end, count, field_start, violations=[
                f"en-têtes de {end} octets, au-delà de la limite de "
                f"{limits.max_header_bytes} octets"])
        pos = next_pos
    return Prescan(pos, count, pos)


def _section_end(raw: bytes, pos: int) -> int:
    match = _BLANK_LINE.search(raw, pos)
    return match.start() if match else len(raw)


_Event = TypeVar("_Event", bound=tuple[Any, ...])


def _merge(one: Iterator[_Event], other: Iterator[_Event]) -> Iterator[_Event]:
    """The items of two iterators, each in the order of their first element (an offset, never
    the same in both), in that order: ``heapq.merge`` for two, without its overhead per item
    (most messages have a handful of events)."""
    a, b = next(one, None), next(other, None)
    while a is not None and b is not None:
        if a[0] < b[0]:
            yield a
            a = next(one, None)
        else:
            yield b
            b = next(other, None)
    if a is not None:
        yield a
        yield from one
    if b is not None:
        yield b
        yield from other


def delimiter_lines(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset of the line end, the line after "--") for each line starting with "--" after a
    line end, in the order of the bytes."""
    lf = ((m.start(), m.group(1) or b"") for m in _LF_DELIMITER.finditer(raw))
    if b"\r" not in raw:
        return lf
    return _merge(lf, ((m.start(), m.group(1) or b"") for m in _CR_DELIMITER.finditer(raw)))


def _events(raw: bytes) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    """(offset, declared boundary, delimiter line after "--"), in the order of the bytes; the
    offset of a delimiter line is that of the line end before it (-1 for the first line)."""
    if raw.startswith(b"--"):
        yield (-1, None, raw[2:raw.find(b"\n") if b"\n" in raw else len(raw)].rstrip(b"\r"))
    declared = ((m.start(), m.group(1) if m.group(1) is not None else m.group(2), None)
                for m in _BOUNDARY_PARAM.finditer(raw))
    yield from _merge(declared, ((offset, None, line) for offset, line in delimiter_lines(raw)))


def _scan_mime(raw: bytes, limits: Limits, result: Prescan) -> None:
    stack: list[bytes] = []
    parts = 1
    delimiters = []
    for offset, declared, line in _events(raw):
        if declared is not None:
            stack.append(declared)
            if len(stack) > limits.max_depth:
                result.mime_depth = len(stack)
                result.violations.append(
                    f"imbrication MIME de plus de {limits.max_depth} niveaux, au-delà de la "
                    "limite")
                return
            result.mime_depth = max(result.mime_depth, len(stack))
            continue
        if line is None:
            continue
        if offset >= 0:
            delimiters.append(offset)
        if not stack:
            continue
        line = line.rstrip(b" \t")
        closing = False
        if line not in stack and line.endswith(b"--") and line[:-2] in stack:
            line, closing = line[:-2], True
        if line not in stack:
            continue
        while stack[-1] != line:
            stack.pop()
        if closing:
            stack.pop()
            continue
        parts += 1
        if parts > limits.max_parts:
            result.mime_parts = parts
            result.violations.append(
                f"plus de {limits.max_parts} parties MIME, au-delà de la limite")
            return
    result.mime_parts = parts
    result.delimiters = delimiters
