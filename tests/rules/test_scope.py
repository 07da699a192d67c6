"""The scope of a password request: a draft only for a Chorus Pro -xt reset or renewal that the
sender asks for (SPEC.md, *intent*); every other password-adjacent message goes to an agent.

One fixture per class of SPEC.md (another application, a certificate, an account that is not
-xt, a thank-you, a question on the procedure, a mobile number, an account to create, an
expiry warning or a suspicious mail forwarded), and the requests a too eager scope would lose.
"""

import pytest

from triage.config import load_settings
from triage.decision import Action
from triage.pipeline import triage_bytes
from triage.rules import intent

from .conftest import DATA, reasons

OUT_OF_SCOPE = [
    # fixture, words the reason must contain
    ("other-application", "s2low"),
    ("certificate-password", "certificat"),
    ("dgfip-portal", "dgfip"),
    ("not-xt-account", "pas un compte -xt"),
    ("supplier-account", "n'est pas un compte -xt"),
    ("thanks-after-reply", "clôt l'échange"),
    ("cancelled-renewed-by-sms", "clôt l'échange"),
    ("procedure-question", "ni oubli ni expiration"),
    ("expiry-frequency", "question générale"),
    ("mobile-number", "ni oubli ni expiration"),
    ("mobile-number-english", "ni oubli ni expiration"),
    ("account-creation", "création de compte"),
    ("forgotten-identifier", "ni oubli ni expiration"),
    ("expiry-warning-forwarded", "ni oubli ni expiration"),
    ("phishing-forwarded", "message suspect"),
    ("self-service-question", "soi-même"),
    ("impersonal-question", "question générale"),
]

IN_SCOPE = [
    ("request-with-mobile", intent.EXPIRED),
    ("request-how-to-reset-own", intent.FORGOTTEN),
    ("request-for-colleague", intent.FORGOTTEN),
    ("expired-notice-forwarded", intent.EXPIRED),
    ("helios-in-passing", intent.EXPIRED),
    ("request-sms-not-received", intent.FORGOTTEN),
]


@pytest.mark.parametrize("fixture, words", OUT_OF_SCOPE, ids=[c[0] for c in OUT_OF_SCOPE])
def test_not_an_xt_reset_is_other_with_the_reason(check, fixture, words):
    """A password-adjacent message that asks no -xt reset is ``other``, and says why."""
    f = check(intent, f"scope/{fixture}.eml")
    assert f.value == intent.OTHER, reasons(f)
    assert words in reasons(f), reasons(f)


@pytest.mark.parametrize("fixture", [c[0] for c in OUT_OF_SCOPE])
def test_no_draft_for_a_message_that_wants_none(fixture):
    """Through the whole pipeline, none of these messages gets a draft: an agent handles it."""
    outcome = triage_bytes((DATA / "scope" / f"{fixture}.eml").read_bytes(), load_settings())
    assert outcome.decision.action is Action.HUMAN
    assert outcome.draft is None


@pytest.mark.parametrize("fixture, expected", IN_SCOPE, ids=[c[0] for c in IN_SCOPE])
def test_requests_stay_requests(check, fixture, expected):
    """A real request beside another topic (a mobile number, the SMS code no longer received,
    another application named in passing, a colleague's account, a forwarded notice of a past
    expiry) is still drafted."""
    f = check(intent, f"scope/{fixture}.eml")
    assert f.value == expected, reasons(f)


def test_scope_reasons_name_application_request_and_who_asks(check):
    """A request in scope records which application, the request verb and who asks."""
    text = reasons(check(intent, "scope/request-for-colleague.eml"))
    assert "application : Chorus Pro" in text
    assert "demande : « pouvez-vous le reinitialiser »" in text
    assert "qui demande : l'expéditeur, pour un tiers" in text
    text = reasons(check(intent, "scope/expired-notice-forwarded.eml"))
    assert "qui demande : le demandeur du message cité ou transféré" in text
