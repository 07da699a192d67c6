"""The intent rule: forgotten, expired or other, in the ways people write."""

import re._parser
from re import _constants as op_codes  # the opcodes of re's parse tree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.rules import intent

from .conftest import reasons

CASES = [
    ("forgotten-plain", intent.FORGOTTEN),
    ("forgotten-typos", intent.FORGOTTEN),
    ("forgotten-english", intent.FORGOTTEN),
    ("forgotten-reset-request", intent.FORGOTTEN),
    ("expired-plain", intent.EXPIRED),
    ("expired-caps-no-accents", intent.EXPIRED),
    ("expired-wins", intent.EXPIRED),
    ("other-mailbox-password", intent.OTHER),
    ("other-invoice", intent.OTHER),
    ("other-negated", intent.OTHER),
    ("other-closure", intent.OTHER),
    ("helpdesk-question-quoted", intent.FORGOTTEN),
    ("reminder-over-quote", intent.EXPIRED),
]


@pytest.mark.parametrize("name, expected", CASES)
def test_intent(check, name, expected):
    """Each wording is read as the intent a person would read in it."""
    assert check(intent, f"intent/{name}.eml").value == expected


def test_expired_wins_and_says_so(check):
    """When both are written, expired wins and the reason mentions the forgotten cue too."""
    text = reasons(check(intent, "intent/expired-wins.eml"))
    assert "l'expiration prime" in text


def test_password_of_another_application_is_named(check):
    """A mailbox password is set aside with a reason quoting it."""
    text = reasons(check(intent, "intent/other-mailbox-password.eml"))
    assert "autre application" in text and "messagerie" in text


def test_quote_used_only_when_new_text_refers_to_it(check):
    """A reminder's intent comes from the sender's quoted request, and the reason says so."""
    assert "cité ou transféré" in reasons(check(intent, "intent/reminder-over-quote.eml"))


def test_helpdesk_question_in_quote_is_not_read(check):
    """The helpdesk's « oublié ou expiré » question quoted below a clear answer is not read."""
    f = check(intent, "intent/helpdesk-question-quoted.eml")
    assert "nouveau texte" in reasons(f)


def test_find_cues_ignores_negation():
    """« je n'ai pas oublié » is not a forgotten cue."""
    assert intent.find_cues("Je n'ai pas oublié mon mot de passe").forgotten == []
    assert intent.find_cues("J'ai oublié mon mot de passe").forgotten != []


def _first_letters(items) -> set[str]:
    """The characters a parsed pattern (re's parse tree) can start with."""
    c = op_codes
    out: set[str] = set()
    for op, av in items:
        if op is c.LITERAL:
            return out | {chr(av)}
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue  # zero width
        if op is c.SUBPATTERN:
            firsts, nullable = _first_letters(av[3]), av[3].getwidth()[0] == 0
        elif op is c.BRANCH:
            firsts = set().union(*(_first_letters(b) for b in av[1]))
            nullable = any(b.getwidth()[0] == 0 for b in av[1])
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            firsts, nullable = _first_letters(av[2]), av[0] == 0 or av[2].getwidth()[0] == 0
        else:
            raise AssertionError(f"no first letters for {op}")
        out |= firsts
        if not nullable:
            return out
    raise AssertionError("a pattern that may match the empty string")


def test_closure_lookahead_holds_every_first_letter():
    """_CLOSURE's leading lookahead only skips positions where no alternative can start."""
    lookahead, _, rest = intent._CLOSURE.pattern.pattern.partition(")")
    assert lookahead.startswith("(?=[") and lookahead.endswith("]")
    allowed = set(lookahead[len("(?=["):-1])
    assert _first_letters(re._parser.parse(rest).data) <= allowed


def test_other_before_reach_is_longer_than_its_matches():
    """_scan searches _OTHER_BEFORE in the last _OTHER_BEFORE_REACH characters only."""
    longest = re._parser.parse(intent._OTHER_BEFORE.pattern).getwidth()[1]
    assert longest + 1 <= intent._OTHER_BEFORE_REACH


#: The words _typo_words reads: runs of five letters a-z or more.
WORDS = re.compile(r"[a-z]{5,}")


def _words_one_typo_off(text):
    """The words _scan weighed for typos before RE2 picked them: every word of five letters
    or more that _near_miss accepts."""
    targets = intent._FUZZY_EXPIRED + intent._FUZZY_FORGOTTEN
    return [(m.start(), m.end(), m.group(0)) for m in WORDS.finditer(text)
            if intent._near_miss(m.group(0), targets)]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(
    st.sampled_from(intent._FUZZY_EXPIRED + intent._FUZZY_FORGOTTEN).flatmap(
        lambda word: st.tuples(st.integers(0, len(word)), st.sampled_from("aeiorxz"),
                               st.integers(0, 3)).map(lambda edit: _edited(word, *edit))),
    # No lone surrogate: decoded text never holds one (tests/test_properties.py).
    st.sampled_from([" ", "'", "é", "1", "_", "-", "\n", "A", "x", "\u0301"]),
    st.text(alphabet="abeilmoprtx", max_size=4)), max_size=8).map("".join))
def test_typo_words_keep_every_word_one_typo_off(text):
    """RE2's candidates hold every word one typo off a target, with its span, in order."""
    assert [w for w in intent._typo_words(text)
            if intent._near_miss(w[2], intent._FUZZY_EXPIRED + intent._FUZZY_FORGOTTEN)
            ] == _words_one_typo_off(text)


def _edited(word, at, letter, kind):
    """``word`` with one edit at ``at``: a letter added, dropped, changed or two swapped."""
    if kind == 0:
        return word[:at] + letter + word[at:]
    if kind == 1:
        return word[:at] + word[at + 1:]
    if kind == 2:
        return word[:at] + letter + word[at + 1:]
    return word[:at] + word[at + 1:at + 2] + word[at:at + 1] + word[at + 2:]
