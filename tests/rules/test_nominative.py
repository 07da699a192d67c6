"""The nominative rule: a person's address versus a role or organisation address."""

import pytest

from triage.rules import nominative

from .conftest import reasons

CASES = [
    ("first-last", True, "correspond au nom"),
    ("initial-last-no-display", True, "prénom.nom"),
    ("squeezed-with-display", True, "correspond au nom"),
    ("personal-gmail", True, "correspond au nom"),
    ("person-and-role-word", True, "correspond au nom"),
    ("role-mairie", False, "« mairie »"),
    ("role-with-person-display", False, "n'y change rien"),
    ("role-compound", False, "« secretariat »"),
    ("organisation-display", False, "n'est pas celui d'une personne"),
    ("particle-surname-joined", True, "correspond au nom"),
    ("household", False, "foyer"),
    ("organisation-freemail", False, "« comite »"),
]


@pytest.mark.parametrize("name, expected, evidence", CASES)
def test_nominative(check, name, expected, evidence):
    """Each address shape gets the expected answer, and the reason names the evidence."""
    f = check(nominative, f"nominative/{name}.eml")
    assert f.value is expected
    assert evidence in reasons(f)
