"""The identifier rule: the first -xt identifier, new text first, lower-cased."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.rules import identifier

from .conftest import reasons

CASES = [
    ("upper-case", "pmartin-xt", "le texte du message"),
    ("dotted", "p.martin-xt", "le texte du message"),
    ("subject-only", "pmartin-xt", "l'objet"),
    ("quoted-only", "pmartin-xt", "cité ou transféré"),
    ("bare-suffix", None, "aucun identifiant"),
    ("example-placeholder", None, "aucun identifiant"),
    ("space-before-xt", "jmartin-xt", "le texte"),
    ("html-table-cell", "jmartin-xt", "le texte"),
]


@pytest.mark.parametrize("name, expected, where", CASES)
def test_identifier(check, name, expected, where):
    """The identifier is found where expected, or none is."""
    f = check(identifier, f"identifier/{name}.eml")
    assert f.value == expected
    assert where in reasons(f)


def test_typographic_dash_and_boundaries():
    """An en dash counts; an e-mail address or a longer word does not."""
    assert identifier.find_identifier("login JDUPONT–XT.") == "jdupont-xt"
    assert identifier.find_identifier("écrire à a@b-xt.fr") is None
    assert identifier.find_identifier("compte-xtra") is None


@pytest.mark.parametrize("text, expected", [
    ("identifiant JDUPONT - XT. Merci", "jdupont-xt"),
    ("mon identifiant jdupont -xt", "jdupont-xt"),
    ("jean.dupont\n-xt", "jean.dupont-xt"),
    ("un compte en -xt", None),
    ("mon identifiant -xt", None),
    ("le suffixe - xt", None),
    ("page 3 - xt", None),
])
def test_space_before_the_suffix(text, expected):
    """An identifier written with spaces around the dash is still the account; prose about
    the suffix (« un compte en -xt ») is not one."""
    assert identifier.find_identifier(text) == expected


def _first_account(text, quoted):
    """find_identifier's answer by its definition: the first identifier that is an account,
    the whole text searched."""
    for match in identifier._IDENTIFIER.finditer(text):
        name = match.group(1).lower()
        spaced = match.group(2) or match.group(3)
        if spaced and (name in identifier._NOT_AN_ACCOUNT or len(name) < 3
                       or not re.search("[a-z]", name)):
            continue
        ident = f"{name}-xt"
        if ident in identifier._PLACEHOLDERS or (quoted and ident in identifier._TEMPLATE_EXAMPLES):
            continue
        return ident
    return None


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(
    ["jdupont", "en", "compte", " ", "  ", "-", "–", "xt", "XT", "x", "prenom.nom", "a1", ".",
     "@", "\n", "é", "12", "_", "jean.dupont", "a" * 30]), max_size=40).map("".join),
    st.booleans())
def test_search_from_each_suffix_finds_the_first_account(text, quoted):
    """Searched from just before each dash and « xt » in turn, the identifier found is the
    first account among all the text's identifiers."""
    assert identifier.find_identifier(text, quoted) == _first_account(text, quoted)
