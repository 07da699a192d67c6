"""The usual address shapes are read by one regular expression: same answers as the parser."""

from __future__ import annotations

import email.utils

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.parse.addresses import getaddresses, simple_address

# Characters that the standard parser treats specially, blanks of several kinds, a letter
# with an accent, a placeholder of an encoded word, and plain text.
_PIECES = st.sampled_from(
    [*'abX.@<>"\\ \t(),:;[]-_é\u00a0\x1c\U000F0001\'',
     "jean", "dupont", "mairie-x.fr", " <", "> ", '"Dupont, Jean"', '"a (b)"', "J."])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_PIECES, max_size=14).map("".join))
def test_fast_shapes_agree_with_the_parser(text):
    """Whatever a header holds, the regular expression answers as the parser or not at all."""
    found = simple_address(text)
    if found is not None:
        assert email.utils.getaddresses([text]) == [found]
    assert getaddresses([text]) == email.utils.getaddresses([text])


def test_usual_shapes_take_the_fast_path():
    """Bare addresses and display names, plain or quoted, are read without the parser."""
    cases = {
        "b.lathuille@mairie-marnaz.fr": ("", "b.lathuille@mairie-marnaz.fr"),
        "  Bruno Lathuille <b.lathuille@mairie-marnaz.fr> ": (
            "Bruno Lathuille", "b.lathuille@mairie-marnaz.fr"),
        '"Dupont, Jean" <jean.dupont@example.org>': ("Dupont, Jean", "jean.dupont@example.org"),
        "J.\tDupont<j@example.org>": ("J. Dupont", "j@example.org"),
        "<a@b>": ("", "a@b"),
    }
    for text, expected in cases.items():
        assert simple_address(text) == expected
        assert email.utils.getaddresses([text]) == [expected]


def test_unusual_shapes_go_to_the_parser():
    """Comments, groups, lists, quoted local parts and stray specials are left to the parser."""
    for text in ("a@b (Jean)", "Team: a@b, c@d;", "a@b, c@d", '"a b"@c', "Jean <a@b> x",
                 "a@b@c", "Jean\u00a0Dupont <a@b>", "<a@[1.2.3.4]>", 'x"y" <a@b>'):
        assert simple_address(text) is None
        assert getaddresses([text]) == email.utils.getaddresses([text])
