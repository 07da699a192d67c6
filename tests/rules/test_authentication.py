"""The authentication rule: only the trusted, topmost Authentication-Results count."""

from triage.rules import authentication
from triage.rules.base import Finding

from .conftest import reasons


def _status(f: Finding[authentication.AuthResult]) -> tuple[str, bool]:
    return f.value.dmarc, f.value.authenticated


def test_trusted_pass_aligned_authenticates(check):
    """dmarc=pass from the trusted authserv-id with header.from = From domain authenticates."""
    f = check(authentication, "authentication/pass-aligned.eml")
    assert _status(f) == ("pass", True)
    assert "aligné" in reasons(f)


def test_trusted_fail_is_fail(check):
    """dmarc=fail in the trusted header is reported as fail (the decision quarantines it)."""
    f = check(authentication, "authentication/fail.eml")
    assert _status(f) == ("fail", False)
    assert "dmarc=fail" in reasons(f)


def test_forged_header_from_other_authserv_is_ignored(check):
    """A pass from another authserv-id does not hide the trusted fail, and is counted as ignored."""
    f = check(authentication, "authentication/forged-other-authserv.eml")
    assert _status(f) == ("fail", False)
    assert "1 en-tête(s) Authentication-Results d'un autre serveur ignoré(s)" in reasons(f)


def test_untrusted_fail_alone_is_not_a_fail(check):
    """A fail stamped by an untrusted host counts as no result at all."""
    f = check(authentication, "authentication/untrusted-fail-only.eml")
    assert _status(f) == ("absent", False)


def test_only_topmost_trusted_block_counts(check):
    """A trusted-looking header below a Received line came with the message and is ignored."""
    f = check(authentication, "authentication/lower-forged-trusted.eml")
    assert _status(f) == ("pass", True)


def test_pass_for_another_domain_is_not_authenticated(check):
    """dmarc=pass for a domain not aligned with From does not authenticate; comments are skipped."""
    f = check(authentication, "authentication/pass-unaligned.eml")
    assert _status(f) == ("pass", False)
    assert "sendgrid.net" in reasons(f)


def test_no_header_is_unauthenticated_not_failed(check):
    """With no Authentication-Results the sender is simply not authenticated."""
    f = check(authentication, "authentication/none.eml")
    assert _status(f) == ("absent", False)
    assert "aucun résultat DMARC" in reasons(f)
