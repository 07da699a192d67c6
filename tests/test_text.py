"""triage.text.fold: its shortcuts give the plain definition's result, line by line alike."""

from __future__ import annotations

import re
import unicodedata

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.rules import automatic, intent, scope
from triage.text import (
    _LOOSE_CATEGORIES,
    _PLAIN,
    Sieved,
    SievedGroup,
    first_start,
    fold,
    sre_constants,
)

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


def test_fold_latin1_pairs_by_definition():
    """The Latin-1 byte table folds every pair of Latin-1 characters (spaces collapsed across
    them, marks, ligatures) as the definition does."""
    latin1 = [chr(code) for code in range(256)]
    for first in latin1:
        for second in latin1:
            assert fold(first + second) == _plain_fold(first + second), repr(first + second)


def test_no_character_folds_into_a_line_break():
    for code in range(0x110000):
        if 0xD800 <= code < 0xE000 or code == 0x0A:
            continue
        assert "\n" not in fold(chr(code)), hex(code)



def test_loose_categories_hold_python_s() -> None:
    """RE2's classes standing for \\d, \\s and \\w hold every code point Python's match."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for python, category in ((r"\d", sre_constants.CATEGORY_DIGIT),
                             (r"\s", sre_constants.CATEGORY_SPACE),
                             (r"\w", sre_constants.CATEGORY_WORD)):
        chars = "".join(re.findall(python, every))
        assert chars
        assert re2.fullmatch(f"[{_LOOSE_CATEGORIES[category]}]*", chars) is not None, python


# Patterns of the rules that RE2 scans first, and a few shapes of their own.
_SIEVED = [intent._EXPIRED_CUES, intent._FORGOTTEN_CUES, intent._CLOSURE, intent._PASSWORD,
           intent._ACCESS,
           scope._ON_BEHALF, scope._CHORUS, scope._OWN_STATE, scope._REQUEST,
           automatic._AUTO_TEXT, automatic._ABSENCE_TEXT,
           *(pattern for _, pattern, _ in scope._TOPICS),
           Sieved(re.compile(r"(?<!\w)\bab[\w.-]+\s?\d{2,}$")),
           Sieved(re.compile(r"^x|(?=y)yz|[^\W\d]q|a.{2,1500}?b", re.M)),
           Sieved(re.compile(r"(?i)expire"))]
_GROUP = SievedGroup(tuple(s for s in _SIEVED if s.loose is not None))
_WORDS = st.sampled_from(["mot de passe", "expire", "oublie", "perdu", "reinitialiser",
                          "chorus", "phishing", "numero de portable enregistre", "faut-il",
                          "ab_1.x 12", "xyz", "aq", "a", "b", "\n", " ", "é", "ſ", "٣", "\u2003"])


@given(st.lists(st.one_of(_WORDS, _SAMPLE), max_size=120))
@settings(max_examples=300, deadline=None)
def test_sieved_finds_what_the_pattern_finds(parts: list[str]) -> None:
    text = " ".join(parts) * 3
    if not _GROUP.may_match(text):
        assert all(sieved.pattern.search(text) is None for sieved in _SIEVED
                   if sieved.loose is not None)
    for sieved in _SIEVED:
        plain = sieved.pattern
        found = sieved.search(text)
        expected = plain.search(text)
        assert (found and found.span()) == (expected and expected.span())
        assert [m.span() for m in sieved.finditer(text)] == \
            [m.span() for m in plain.finditer(text)]


@pytest.mark.parametrize("text", [
    # ASCII: tried at RE2's candidates, then searched past so many (near misses)
    "xperte " * 3 + "j'ai perdu mon mot de passe, " + "reperte mdp " * 40 + "perte du mdp",
    "ab_1.x 12 " * 30 + "ab.x 99",
    # not ASCII: searched from RE2's first candidate
    "é" + "xperte " * 40 + "perte",
])
def test_sieved_hops_as_the_pattern_searches(text: str) -> None:
    """Tried at RE2's candidates only (then, past many, searched), a pattern finds
    every match its own search finds."""
    for sieved in _SIEVED:
        assert [m.span() for m in sieved.finditer(text)] == \
            [m.span() for m in sieved.pattern.finditer(text)]
        found, expected = sieved.search(text), sieved.pattern.search(text)
        assert (found and found.span()) == (expected and expected.span())


def test_first_start_is_the_wrapper_s_search() -> None:
    """Asked of the compiled RE2 directly, the first match starts where the wrapper's search
    says, -1 where it finds none."""
    for pattern in (r"mot de passe", r"(?:a|b)c", r"x*y", r"^z"):
        compiled = re2.compile(pattern)
        for data in (b"", b"ac bc", b"z mot de passe", b"xxy", b"yz"):
            for pos in range(len(data) + 1):
                found = compiled.search(data, pos)
                assert first_start(compiled, data, pos) == (found.start() if found else -1)


def test_the_fast_re2_calls_are_in_use_and_agree_with_the_public_ones() -> None:
    """The installed google-re2 still holds its compiled RE2 where the fast calls read it (if
    a release moves it, the public calls take over: slower, the same answers, and this test
    says so), and both give the same starts and spans, empty matches included."""
    from triage import text

    assert text._FAST, "google-re2's insides moved: the fast calls are off"
    for pattern in (r"mot de passe", r"(?:a|b)c", r"x*y", r"^z", r"b*", r"\bcompte\b"):
        compiled = re2.compile(pattern)
        for data in (b"", b"ac bc", b"z mot de passe", b"xxy", b"yz", b"abba", b"compte x"):
            assert text._match_spans_fast(compiled, data) == \
                text._match_spans_public(compiled, data) == \
                [m.span() for m in compiled.finditer(data)]
            for pos in range(len(data) + 1):
                assert text._first_start_fast(compiled, data, pos) == \
                    text._first_start_public(compiled, data, pos)
