"""The prescan's fast paths give what the plain computations give, for any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from triage.parse.prescan import _line_count


@given(st.binary(max_size=60).map(lambda b: bytes(b"\r\na"[x % 3] for x in b)),
       st.integers(min_value=0, max_value=70))
def test_line_count_decides_the_limit_as_the_exact_count(raw, max_lines):
    exact = raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")
    got = _line_count(raw, max_lines)
    assert (got > max_lines) == (exact > max_lines)
    if exact > max_lines:
        assert got == exact
