"""The prescan's fast paths give what the plain computations give, for any input."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.config import Limits
from triage.parse import prescan
from triage.parse.prescan import _events, _line_count, scan

# The prescan's events as re alone found them (the implementation before RE2 searched first;
# the first line's offset is now -1, the offset of the line end before it).
_BOUNDARY_PARAM = re.compile(  # searched in a lower-cased copy
    rb"boundary[ \t]*=[ \t]*(?:\"([^\"\r\n]{1,200})\"|([^\s;\"]{1,200}))")
_LF_DELIMITER = re.compile(rb"\n--([^\r\n]*)")
_CR_DELIMITER = re.compile(rb"\r--([^\r\n]*)")


def reference_events(raw: bytes) -> Iterator[tuple[int, bytes | None, bytes | None]]:
    lower = raw.lower()
    declared = ((m.start(), raw[m.start(1):m.end(1)] if m.group(1) is not None else
                 raw[m.start(2):m.end(2)], None) for m in _BOUNDARY_PARAM.finditer(lower))
    lines = ((m.start(), None, m.group(1)) for pattern in (_LF_DELIMITER, _CR_DELIMITER)
             for m in pattern.finditer(raw))
    first = [(-1, None, raw[2:raw.find(b"\n") if b"\n" in raw else len(raw)].rstrip(b"\r"))
             ] if raw.startswith(b"--") else []
    return heapq.merge(first, declared, sorted(lines, key=lambda e: e[0]) if b"\r--" in raw
                       else lines, key=lambda e: e[0])


TOKENS = [b"boundary", b"BoUnDaRy", b"bOUNDARY", b"boundar", b"=", b" ", b"\t", b'"', b";",
          b"\r", b"\n", b"\r\n", b"--", b"-", b"a", b"Z", b"\x0b", b"\x0c", b"\x00", b"\xff",
          b"\xc3\xa9", b"\xc4\xb1", b"\x85", b"k", b"x" * 150, b"y" * 60]
messages = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)


@settings(deadline=None)
@given(st.binary(max_size=60).map(lambda b: bytes(b"\r\na"[x % 3] for x in b)),
       st.integers(min_value=0, max_value=70))
def test_line_count_decides_the_limit_as_the_exact_count(raw, max_lines):
    exact = raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")
    got = _line_count(raw, max_lines)
    assert (got > max_lines) == (exact > max_lines)
    if exact > max_lines:
        assert got == exact


@settings(deadline=None)
@given(st.binary(max_size=300).map(lambda b: bytes(b"\na"[x % 2] for x in b)),
       st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=300))
def test_line_ends_count_any_range_as_bytes_count_does(raw, start, end):
    """A range's "\\n" read from the blocks are those bytes.count finds (blocks of 7 bytes)."""
    original = prescan.LineEnds.BLOCK
    prescan.LineEnds.BLOCK = 7
    try:
        line_ends = prescan.LineEnds(raw)
        assert line_ends.total == raw.count(b"\n")
        assert line_ends.count(start, end) == raw.count(b"\n", start, end)
    finally:
        prescan.LineEnds.BLOCK = original


@settings(deadline=None)
@given(messages)
def test_events_are_those_re_finds(raw):
    assert list(_events(raw)) == list(reference_events(raw))


@settings(deadline=None)
@given(messages)
def test_delimiters_are_every_line_end_before_dashes(raw):
    pre = scan(raw, Limits(max_depth=1000, max_parts=1000))
    assert pre.delimiters == [i for i in range(len(raw))
                              if raw[i:i + 1] in (b"\n", b"\r") and raw[i + 1:i + 3] == b"--"]


@settings(deadline=None)
@given(messages, st.integers(min_value=0, max_value=3))
def test_re_takes_over_from_re2_with_the_same_matches(raw, fast):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prescan, "_FAST_MATCHES", fast)
        assert list(_events(raw)) == list(reference_events(raw))


def test_many_matches_are_found_by_both_engines():
    raw = b"".join(b'Content-Type: multipart/mixed; BOUNDARY="b%d"\n\n--b%d\n' % (i, i)
                   for i in range(200)) + b"\r--b7--\r\n"
    assert list(_events(raw)) == list(reference_events(raw))
    assert len(list(_events(raw))) == 401


@settings(deadline=None)
@given(messages, st.sampled_from([0, 1 << 30]))
def test_both_engines_find_the_same_delimiter_lines(raw, small):
    # Messages under prescan._SMALL bytes are searched by re alone, the others by RE2 first.
    with pytest.MonkeyPatch.context() as patch:
        for pattern in (prescan._LF_DELIMITER, prescan._CR_DELIMITER):
            patch.setattr(pattern, "_small", small)
        assert list(_events(raw)) == list(reference_events(raw))


HEADER_TOKENS = [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b"a", b"From ", b"X-h: v", b"\n\n",
                 b"\r\r", b"\xff", b"\x00", b"-", b"Subject: " + b"s" * 30]


@settings(deadline=None)
@given(st.lists(st.sampled_from(HEADER_TOKENS), max_size=30).map(b"".join),
       st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=80))
def test_header_section_is_the_one_the_line_loop_finds(raw, max_count, max_bytes):
    for limits in (Limits(), Limits(max_header_count=max_count, max_header_bytes=max_bytes)):
        assert prescan._scan_headers(raw, limits) == prescan._scan_header_lines(raw, limits)
