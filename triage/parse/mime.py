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

import email.feedparser as feedparser
import email.message
import email.parser
import email.policy
import email.utils
import re
from collections.abc import Callable
from typing import Any

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


def _is_boundary_test(predicate: Callable[[str], object]) -> bool:
    """True for the parser's multipart end tests: they only match lines starting with "--"."""
    owner = getattr(predicate, "__self__", None)
    return isinstance(owner, re.Pattern) and _BOUNDARY_TEST.match(str(owner.pattern)) is not None


# Not in typeshed: the parser's line buffer and its "no complete line yet" marker.
_BufferedSubFile: Any = vars(feedparser).get("BufferedSubFile")
_NEED_MORE_DATA: Any = vars(feedparser).get("NeedMoreData")


class _LineBuffer(_BufferedSubFile):  # type: ignore[misc]
    """The parser's line buffer, testing the boundaries of open multiparts only on "--" lines.

    The standard buffer tests every line against the end condition of every open multipart,
    innermost first (RFC 2046 §5.1.2): lines × depth. A multipart boundary test can only match
    a line that starts with "--", so other lines skip the tests, unless a test of another kind
    (the blank line ending a delivery-status block) is open. Same results, in linear time.
    """

    def __init__(self) -> None:
        super().__init__()
        self._other_tests = 0
        self._kinds: list[bool] = []

    def push_eof_matcher(self, pred: Callable[[str], object]) -> None:
        boundary = _is_boundary_test(pred)
        self._kinds.append(boundary)
        self._other_tests += not boundary
        super().push_eof_matcher(pred)

    def pop_eof_matcher(self) -> Callable[[str], object]:
        if self._kinds and not self._kinds.pop():
            self._other_tests -= 1
        return super().pop_eof_matcher()  # type: ignore[no-any-return]

    def readline(self) -> Any:
        if not self._lines:
            if self._closed:
                return ""
            return _NEED_MORE_DATA
        line = self._lines.popleft()
        if self._other_tests or line.startswith("--"):
            for ateof in reversed(self._eofstack):
                if ateof(line):
                    self._lines.appendleft(line)
                    return ""
        return line


class _FeedParser(feedparser.FeedParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._input = _LineBuffer()  # the parse generator has not run yet: safe to swap


def _buffer_is_as_expected() -> bool:
    if _BufferedSubFile is None or _NEED_MORE_DATA is None:
        return False
    buffer = _BufferedSubFile()
    return all(hasattr(buffer, a) for a in ("_lines", "_eofstack", "_closed")) and hasattr(
        feedparser.FeedParser, "_set_headersonly")


#: Whether this Python's parser has the internals :class:`_LineBuffer` relies on; if not,
#: the standard parser is used (correct, only slower on deep nesting).
FAST_BUFFER = _buffer_is_as_expected()
_CHUNK = 64 * 1024


def parse_bytes(raw: bytes, *, headers_only: bool = False) -> SafeMessage:
    """Parse ``raw`` with compat32 into :class:`SafeMessage` objects (may raise RecursionError)."""
    if not FAST_BUFFER:
        parser = email.parser.BytesParser(SafeMessage, policy=email.policy.compat32)
        message = parser.parsebytes(raw, headersonly=headers_only)
    else:
        # What BytesParser.parsebytes does, with our line buffer.
        text = raw.decode("ascii", errors="surrogateescape")
        feed = _FeedParser(SafeMessage, policy=email.policy.compat32)
        if headers_only:
            feed._set_headersonly()  # type: ignore[attr-defined]
        for start in range(0, len(text), _CHUNK):
            feed.feed(text[start:start + _CHUNK])
        message = feed.close()
    assert isinstance(message, SafeMessage)
    return message
