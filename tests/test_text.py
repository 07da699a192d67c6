"""triage.text.fold: its shortcuts give the plain definition's result, line by line alike."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from triage.text import _PLAIN, fold

# Latin, typographic marks, spaces, line breaks, Greek sigma (lower-cased by context), and
# any other character.
_SAMPLE = st.text(
    alphabet=st.one_of(
        st.sampled_from("aAeEÉéèçÇôœŒæßſ’‘`´–—«»“”ﬁ①Σσς İ\u0301\u0327\u00a0\u2002\u200b\u3000\t"
                        "\n\r\x0b\x0c\x1c\x1f\x85\u2028"),
        st.characters(blacklist_categories=("Cs",))),
    max_size=40)


def _plain_fold(text: str) -> str:
    """fold as specified, without its shortcuts."""
    text = "".join(_PLAIN.get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+", " ", text.lower())


@settings(max_examples=2000, deadline=None)
@given(_SAMPLE)
def test_fold_is_its_definition(text):
    assert fold(text) == _plain_fold(text)


@settings(max_examples=2000, deadline=None)
@given(_SAMPLE, _SAMPLE)
def test_fold_keeps_line_breaks_apart(first, second):
    """Rules fold a text once and cut it at "\\n" (intent's disclaimer lines): the pieces are
    the folded lines."""
    first, second = first.replace("\n", ""), second.replace("\n", "")
    assert fold(f"{first}\n{second}") == f"{fold(first)}\n{fold(second)}"


def test_no_character_folds_into_a_line_break():
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000 or code == 0x0A:
            continue
        assert "\n" not in fold(chr(code)), hex(code)
