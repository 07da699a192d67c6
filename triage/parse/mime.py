"""The MIME parser, as Python's compat32 parser with its quadratic corners removed.

:class:`SafeMessage` is the message class the parser builds. It differs from
:class:`email.message.Message` in two places. The parameters of ``Content-Type`` and
``Content-Disposition`` (``boundary``, ``charset``, ``filename``) are split in linear time.
The standard ``_parseparam`` copies the rest of the header at every ``;`` and recounts its
quotes, so a 250 kB ``boundary="…;;;…"`` takes 35 s (cpython #87075) — and the parser asks for
the boundary of every multipart while it reads. RFC 2231 continuations a hostile header makes
unusable (a 5,000-digit section number, mixed numbered and unnumbered sections) leave the raw
values instead of raising. And ``get_payload()`` cannot raise on a hostile ``charset`` (an
RFC 2231 tuple, a NUL byte) over an 8-bit body, as the standard one does.

The parser's line buffer is replaced too (:class:`_LineBuffer`): the standard one tests every
body line against every open multipart's boundary, so 29 nested multiparts over 1.5 million
lines take 7 s; ours tests only the lines that can be boundaries.
"""

from __future__ import annotations

import bisect
import email.feedparser as feedparser
import email.message
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Callable, Sequence
from typing import Any

from triage.parse.prescan import LineEnds, delimiter_lines

_SPLIT = re.compile(r'[;"]')
# feedparser's boundary test: '(?P<sep>' + re.escape('--' + boundary) + ...
_BOUNDARY_TEST = re.compile(r"\(\?P<sep>(?:\\?-){2}")


def split_params(value: str) -> list[str]:
    """``email.message._parseparam`` in linear time, with the same results.

    The value is cut at each ``;`` that lies outside a quoted string (quotes preceded by a
    backslash do not count); around each ``=`` the name is lower-cased and spaces trimmed.
    """
    s = ";" + value
    pieces: list[str] = []
    start = 1  # the current piece starts after its ';'
    quotes = 0  # '"' in the piece, minus the '\"' pairs
    for match in _SPLIT.finditer(s, 1):
        pos = match.start()
        if match.group() == '"':
            quotes += 1
            if pos - 1 >= start and s[pos - 1] == "\\":
                quotes -= 1
            continue
        if pos > start and quotes % 2:
            continue
        pieces.append(s[start:pos])
        start, quotes = pos + 1, 0
    pieces.append(s[start:])
    out = []
    for piece in pieces:
        if "=" in piece:
            name, _eq, rest = piece.partition("=")
            piece = name.strip().lower() + "=" + rest.strip()
        out.append(piece.strip())
    return out


class SafeMessage(email.message.Message):
    """A compat32 message whose MIME parameters are parsed in linear time."""

    #: Where the parser read this part's body in the input, and the input's counted line ends,
    #: when the prescan counted them (see :meth:`newlines`).
    _body_span: tuple[LineEnds, int, int] | None = None

    def newlines(self, payload: str) -> int:
        """``payload.count("\\n")``, read from the prescan's count when ``payload`` is this
        part's payload as the parser set it: the body it read, or that body less the line end
        RFC 2046 gives to the boundary after it (1 or 2 characters)."""
        if self._body_span is not None and payload is self._payload:  # type: ignore[attr-defined]
            line_ends, start, end = self._body_span
            cut = end - start - len(payload)
            if 0 <= cut <= 2:
                return line_ends.count(start, end - cut)
        return payload.count("\n")

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        missing = object()
        value = self.get(header, missing)
        if value is missing:
            return failobj
        params: list[tuple[str, Any]] = []
        for piece in split_params(str(value)):
            name, eq, val = piece.partition("=")
            params.append((name.strip(), val.strip()) if eq else (piece.strip(), ""))
        try:
            return email.utils.decode_params(params)
        except (ValueError, TypeError, LookupError, IndexError):
            # Hostile RFC 2231 sections: keep the plain parameters, drop the sectioned ones.
            return [params[0]] + [(k, v) for k, v in params[1:] if "*" not in k]


    def get_payload(self, i: Any = None, decode: bool = False) -> Any:
        """As the standard method, but a hostile charset parameter (a tuple from RFC 2231, a NUL)
        cannot make it raise: the payload is then returned as parsed (or as bytes to decode)."""
        try:
            return super().get_payload(i, decode)  # type: ignore[call-overload]
        except (ValueError, TypeError, LookupError, UnicodeError):
            payload = self._payload  # type: ignore[attr-defined]
            if decode:
                return (payload.encode("ascii", "surrogateescape")
                        if isinstance(payload, str) else None)
            return payload if i is None or not isinstance(payload, list) else payload[i]


def payload(part: email.message.Message) -> Any:
    """``part.get_payload()``, without its scan of a text payload for surrogates (an encoding of
    the whole, 0.1 ms for an attachment of a megabyte) when the text is ASCII, which
    ``str.isascii`` tells at once: an ASCII payload is returned as it is, as it would be."""
    value = part._payload  # type: ignore[attr-defined]
    if isinstance(value, list) or (isinstance(value, str) and value.isascii()):
        return value
    return part.get_payload()


def _is_boundary_test(predicate: Callable[[str], object]) -> bool:
    """True for the parser's multipart end tests: they only match lines starting with "--"."""
    owner = getattr(predicate, "__self__", None)
    return isinstance(owner, _BoundaryTest) or (
        isinstance(owner, re.Pattern) and _BOUNDARY_TEST.match(str(owner.pattern)) is not None)


# Not in typeshed: the parser's line buffer and its "no complete line yet" marker.
_BufferedSubFile: Any = vars(feedparser).get("BufferedSubFile")
_NEED_MORE_DATA: Any = vars(feedparser).get("NeedMoreData")
# One line as the standard buffer splits them (io.StringIO(newline="")): ended by "\r\n", "\r"
# or "\n" (not by the other characters str.splitlines() knows), or the unended last line.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class _LineBuffer(_BufferedSubFile):  # type: ignore[misc]
    """The parser's line buffer, testing the boundaries of open multiparts only on "--" lines,
    and handing a leaf part's body over in runs of lines.

    The standard buffer tests every line against the end condition of every open multipart,
    innermost first (RFC 2046 §5.1.2): lines × depth. A multipart boundary test can only match
    a line that starts with "--", so other lines skip the tests, unless a test of another kind
    (the blank line ending a delivery-status block) is open. Same results, in linear time.

    The standard buffer also splits the whole input into lines up front, and the parser takes
    a leaf part's body (a base64 attachment: 13,000 lines a megabyte) one line per call, only to
    join them again. Here the input stays one string, split on demand; and while the parser
    reads a leaf body (:meth:`start_leaf_body`), a call returns every line up to the next one
    starting with "--", which no boundary test can end. The body joined is the same string.
    Those lines are known before the parse: ``delimiters`` holds the offset of each line end
    followed by "--" in the input, which comes in one piece (the prescan finds them anyway, and
    with RE2 several times faster than ``str.find`` could again).
    """

    def __init__(self, delimiters: Sequence[int], line_ends: LineEnds | None = None) -> None:
        super().__init__()
        self._other_tests = 0
        self._kinds: list[bool] = []
        self._text = ""  # the input not yet returned; self._lines holds lines given back
        self._pos = 0
        self._end = 0  # the complete lines end here (the rest waits for more input)
        self._leaf = False
        self._delimiters = delimiters
        self._fed = False
        self._line_ends = line_ends
        self._leaf_message: SafeMessage | None = None  # the leaf whose body is being read
        self._leaf_start = 0

    def push_eof_matcher(self, pred: Callable[[str], object]) -> None:
        boundary = _is_boundary_test(pred)
        self._kinds.append(boundary)
        self._other_tests += not boundary
        super().push_eof_matcher(pred)

    def pop_eof_matcher(self) -> Callable[[str], object]:
        if self._kinds and not self._kinds.pop():
            self._other_tests -= 1
        return super().pop_eof_matcher()  # type: ignore[no-any-return]

    def push(self, data: str) -> None:
        if self._fed:  # the delimiters are offsets in the one input
            raise RuntimeError("the message is fed to this parser in one piece")
        self._fed = True
        self._text = data
        # As the standard buffer: a line is complete at its "\n" ("\r" may start a "\r\n").
        self._end = self._text.rfind("\n") + 1
        # Without a CR (most mail as stored), a line ends at the next "\n", found by str.find.
        self._lf_only = "\r" not in data

    def close(self) -> None:
        self._end = len(self._text)
        self._closed = True

    def start_leaf_body(self, message: Any) -> None:
        """The parser now reads the body of the leaf part ``message`` to its end: lines may come
        in runs. With the input's line ends counted, the body's extent is noted on the part."""
        self._leaf = True
        if self._line_ends is not None and isinstance(message, SafeMessage):
            self._leaf_message = message
            self._leaf_start = self._consumed()

    def _consumed(self) -> int:
        """The offset of the input's first character not yet read (lines given back count as
        not read)."""
        consumed: int = self._pos - sum(map(len, self._lines))
        return consumed

    def _end_leaf(self) -> None:
        """The leaf body ends here (the parser's loop over it gets "")."""
        self._leaf = False
        if self._leaf_message is not None and self._line_ends is not None:
            self._leaf_message._body_span = (self._line_ends, self._leaf_start, self._consumed())
            self._leaf_message = None

    def _run(self) -> str:
        """The complete lines from here to the next that starts with "--" (maybe none)."""
        if self._text.startswith("--", self._pos):
            return ""
        end = self._end
        i = bisect.bisect_left(self._delimiters, self._pos)
        if i < len(self._delimiters) and self._delimiters[i] + 3 <= end:  # "\n--" complete
            end = self._delimiters[i] + 1
        run = self._text[self._pos:end]
        self._pos = end
        return run

    def readline(self) -> Any:
        if self._lines:
            line = self._lines.popleft()
        else:
            if self._leaf and not self._other_tests:
                run = self._run()
                if run:
                    return run
            pos, end = self._pos, self._end
            if self._lf_only:  # _LINE's match, without the pattern
                stop = self._text.find("\n", pos, end) + 1 or end
            else:
                match = _LINE.match(self._text, pos, end)
                stop = pos if match is None else match.end()
            if stop == pos:  # no line: the end of the input, or of what has come of it
                if self._closed:
                    self._end_leaf()
                    return ""
                return _NEED_MORE_DATA
            line = self._text[pos:stop]
            self._pos = stop
        if self._other_tests or line.startswith("--"):
            for ateof in reversed(self._eofstack):
                if ateof(line):
                    self._lines.appendleft(line)
                    self._end_leaf()
                    return ""
        return line


class _FeedParser(feedparser.FeedParser):
    def __init__(self, delimiters: Sequence[int], line_ends: LineEnds | None, *args: Any,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The parse generator has not run yet: safe to swap.
        self._input = _LineBuffer(delimiters, line_ends)

    def _parse_headers(self, lines: list[str]) -> None:
        super()._parse_headers(lines)  # type: ignore[misc]
        # What the parser reads next (feedparser._parsegen): with headers only, or for a part
        # neither message/* nor multipart/*, every line to the end of the part, joined.
        if self._headersonly or self._cur.get_content_maintype() not in ("message",  # type: ignore[attr-defined]
                                                                         "multipart"):
            self._input.start_leaf_body(self._cur)  # type: ignore[attr-defined]


def _buffer_is_as_expected() -> bool:
    if _BufferedSubFile is None or _NEED_MORE_DATA is None:
        return False
    buffer = _BufferedSubFile()
    parser = feedparser.FeedParser
    return all(hasattr(buffer, a) for a in ("_lines", "_eofstack", "_closed")) and all(
        hasattr(parser, a) for a in ("_set_headersonly", "_parse_headers", "_parsegen"))


#: Whether this Python's parser has the internals :class:`_LineBuffer` relies on; if not,
#: the standard parser is used (correct, only slower on deep nesting and attachments).
FAST_BUFFER = _buffer_is_as_expected()


class _TailLineEnd:
    """``feedparser.NLCRE_eol``, ``(\\r\\n|\\r|\\n)\\Z``, searched on the last two characters only.

    The parser strips the line end of each part's payload with it; ``search`` tries every
    position of the string, about 11 ms for a 2.5 MB attachment. A match can only lie in the
    last two characters, and the parser uses only whether it matched and ``group(0)``: the
    same regex on them gives the same.
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text[-2:])


# What feedparser._parsegen compiles for each multipart, around re.escape("--" + boundary).
_SEPARATOR_HEAD = "(?P<sep>"
_SEPARATOR_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR = re.compile(_SEPARATOR_TAIL[1:])
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class _BoundaryTest:
    """``re.compile`` of the parser's boundary pattern, for the one use the parser makes of it:
    ``match(line)``, of which it reads the groups ``end`` and ``linesep``.

    The pattern starts with the separator as a literal, which matches the start of the line or
    nothing; so the rest of the pattern, compiled once, matched where the separator ends, gives
    the same groups ``end``, ``ws`` and ``linesep`` and the same end (tests/test_bad_input.py).
    Compiling the whole took about 60 µs a multipart: boundaries are unique, re's cache never
    hits.
    """

    __slots__ = ("pattern", "separator")

    def __init__(self, separator: str, pattern: str) -> None:
        self.separator = separator
        self.pattern = pattern

    def match(self, line: str) -> re.Match[str] | None:
        if line.startswith(self.separator):
            return _AFTER_SEPARATOR.match(line, len(self.separator))
        return None


class _FeedparserRe:
    """The ``re`` module as the parser sees it: its boundary patterns become
    :class:`_BoundaryTest`; any other pattern, and everything else, is re's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: Any, flags: int = 0) -> Any:
        if (flags == 0 and isinstance(pattern, str) and pattern.startswith(_SEPARATOR_HEAD)
                and pattern.endswith(_SEPARATOR_TAIL)):
            escaped = pattern[len(_SEPARATOR_HEAD):-len(_SEPARATOR_TAIL)]
            separator = _ESCAPED.sub(r"\1", escaped)
            if re.escape(separator) == escaped:  # so the pattern is re.escape(separator)'s
                return _BoundaryTest(separator, pattern)
        return re.compile(pattern, flags)


if FAST_BUFFER and vars(feedparser).get("re") is re:
    # Process-wide, as the line-end search below: every parse gets the same results, sooner.
    setattr(feedparser, "re", _FeedparserRe())  # noqa: B010

_EOL: Any = vars(feedparser).get("NLCRE_eol")
if FAST_BUFFER and isinstance(_EOL, re.Pattern) and _EOL.pattern == r"(\r\n|\r|\n)\Z":
    # Process-wide, the same results: every parse, ours and others', gains.
    setattr(feedparser, "NLCRE_eol", _TailLineEnd(_EOL))  # noqa: B010


#: The blocks :func:`_surrogate_escaped` decodes one at a time.
_DECODE_BLOCK = 65_536


def _surrogate_escaped(raw: bytes) -> str:
    """``raw.decode("ascii", "surrogateescape")``, faster for a large message with a few 8-bit
    bytes (an 8-bit header or text part beside base64 attachments).

    From its first byte over 127 on, the codec writes every character one at a time: 1.4 ns a
    byte, 2 ms for such a message of 1.4 MB (a tenth of the archive's messages over 150 kB).
    Decoded by blocks, the ASCII blocks (nearly all) take the codec's fast path, and joining
    the blocks widens them by a copy: about 0.35 ms. A byte is a character in both codecs, so
    the blocks can be cut anywhere: the same text.
    """
    if len(raw) <= _DECODE_BLOCK or raw.isascii():
        return raw.decode("ascii", "surrogateescape")
    view = memoryview(raw)
    pieces = []
    for start in range(0, len(raw), _DECODE_BLOCK):
        block = view[start:start + _DECODE_BLOCK]
        try:
            pieces.append(str(block, "ascii"))
        except UnicodeDecodeError:
            pieces.append(str(block, "ascii", "surrogateescape"))
    return "".join(pieces)


def parse_bytes(raw: bytes, *, headers_only: bool = False,
                delimiters: Sequence[int] | None = None,
                line_ends: LineEnds | None = None) -> SafeMessage:
    """Parse ``raw`` with compat32 into :class:`SafeMessage` objects (may raise RecursionError).

    ``delimiters``, when the caller has them (:attr:`triage.parse.prescan.Prescan.delimiters`),
    are the offsets of the line ends followed by "--" in ``raw``, all of them, in order;
    ``line_ends`` (:attr:`~triage.parse.prescan.Prescan.line_ends`) its "\\n", counted.
    """
    if not FAST_BUFFER:
        parser = email.parser.BytesParser(SafeMessage, policy=email.policy.compat32)
        message = parser.parsebytes(raw, headersonly=headers_only)
    else:
        # What BytesParser.parsebytes does, with our line buffer. The text has a character
        # for each byte: the offsets in ``raw`` are those in the text.
        text = _surrogate_escaped(raw)
        if delimiters is None:
            delimiters = [offset for offset, _line in delimiter_lines(raw)]
        feed = _FeedParser(delimiters, line_ends, SafeMessage, policy=email.policy.compat32)
        if headers_only:
            feed._set_headersonly()  # type: ignore[attr-defined]
        feed.feed(text)
        message = feed.close()
    assert isinstance(message, SafeMessage)
    return message
