"""The intent rule: forgotten, expired or other, in the ways people write."""

import pytest

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
