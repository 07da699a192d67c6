"""The department rule: receiving mailbox by default, overridden by a clear statement of place."""

import pytest

from triage.rules import department

from .conftest import reasons

CASES = [
    ("mailbox-default", "38", "adressé à la boîte du 38"),
    ("two-mailboxes", None, "plusieurs boîtes"),
    ("two-mailboxes-postal-code", "73", "code postal 73800"),
    ("haute-savoie-not-savoie", "74", "comme département du compte"),
    ("romans-sur-isere", "26", "code postal 26100"),
    ("phone-and-cs-not-postal", "07", "adressé à la boîte du 07"),
    ("siret", "74", "SIREN 217402254"),
    ("commune-after-mairie", "07", "commune de Burzet"),
    ("delivered-to-only", "74", "Delivered-To"),
    ("domain-names-commune", "73", "mairie-bozel.fr"),
]


@pytest.mark.parametrize("name, expected, evidence", CASES)
def test_department(check, name, expected, evidence):
    """Each case gets its department and the reasons name the evidence."""
    f = check(department, f"department/{name}.eml")
    assert f.value == expected
    assert evidence in reasons(f)


def test_phone_numbers_are_not_postal_codes(check):
    """Neither a phone number nor a CS box number is read as a postal code."""
    assert "code postal" not in reasons(check(department, "department/phone-and-cs-not-postal.eml"))


def test_fetch_mailbox_is_last_resort(check):
    """The mailbox the message was fetched from counts only when no header names one."""
    f = check(department, "department/two-mailboxes.eml",
              mailbox="ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr")
    assert f.value is None
