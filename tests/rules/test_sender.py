"""The sender rule: exactly one parseable From address."""

import pytest

from triage.rules import sender

from .conftest import reasons


def test_one_address_with_quoted_display_name(check):
    """A quoted display name with a comma is still one sender."""
    f = check(sender, "sender/one-address.eml")
    assert f.value is not None
    assert f.value.address == "paul.martin@ville-voiron.fr"
    assert f.value.display_name == "Martin, Paul"


@pytest.mark.parametrize("fixture, words", [
    ("sender/display-only.eml", "pas d'adresse"),
    ("sender/two-addresses.eml", "2 adresses"),
    ("sender/invalid-address.eml", "illisible"),
    ("sender/two-from-headers.eml", "2 en-têtes From"),
])
def test_unusable_sender_has_no_address_and_says_why(check, fixture, words):
    """No address, two addresses, a malformed address or two From headers give no sender."""
    f = check(sender, fixture)
    assert f.value is None
    assert words in reasons(f)
