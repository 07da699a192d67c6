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


def test_a_fail_on_either_side_of_the_border_received_counts(check):
    """In the border's block a dmarc=fail counts whether it stands above or below the border's
    Received, and a pass beside it does not hide it."""
    f = check(authentication, "authentication/lower-forged-trusted.eml")
    assert _status(f) == ("fail", False)


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


def _inline(settings, head: str) -> Finding[authentication.AuthResult]:
    from triage.parse import parse_message
    from triage.rules.base import Context

    raw = (head + "From: Paul <paul@ville-voiron.fr>\r\n"
           "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mdp\r\n"
           "Message-ID: <m@x>\r\n\r\nbody\r\n").encode()
    return authentication.check(parse_message(raw, settings.limits),
                                Context(settings=settings, mailbox=None))


BORDER = ("Received: from smtp.ville-voiron.fr (smtp.ville-voiron.fr [192.0.2.5]) by\r\n"
          " mx.dgfip.finances.gouv.fr (Postfix) with ESMTPS id 1; Tue, 6 Jan 2026 14:47:13"
          " +0100\r\n")
SENDER_HOP = ("Received: from [192.168.1.3] by smtp.ville-voiron.fr; Tue, 6 Jan 2026 14:47:01"
              " +0100\r\n")
AR = "Authentication-Results: mx.dgfip.finances.gouv.fr; "


def test_a_fail_in_any_header_of_the_border_block_is_fail(settings):
    """The border's milters write SPF, DKIM and DMARC in separate headers: a dmarc=fail in the
    third of them fails the message."""
    f = _inline(settings, BORDER + AR + "spf=softfail smtp.mailfrom=ville-voiron.fr\r\n"
                + AR + "dkim=fail header.d=ville-voiron.fr\r\n"
                + AR + "dmarc=fail (p=reject) header.from=ville-voiron.fr\r\n" + SENDER_HOP)
    assert _status(f) == ("fail", False)


def test_pass_in_one_border_header_and_fail_in_another_is_fail(settings):
    """Within the border's block a dmarc=pass never hides a dmarc=fail, whatever their order."""
    f = _inline(settings, BORDER + AR + "dmarc=pass header.from=ville-voiron.fr\r\n"
                + AR + "dmarc=fail header.from=ville-voiron.fr\r\n" + SENDER_HOP)
    assert _status(f) == ("fail", False)


def test_pass_in_a_later_border_header_authenticates(settings):
    """A dmarc=pass in the third trusted header of the border's block, none failing,
    authenticates."""
    f = _inline(settings, BORDER + AR + "spf=pass smtp.mailfrom=ville-voiron.fr\r\n"
                + AR + "dkim=pass header.d=ville-voiron.fr\r\n"
                + AR + "dmarc=pass header.from=ville-voiron.fr\r\n" + SENDER_HOP)
    assert _status(f) == ("pass", True)


def test_by_in_a_received_comment_does_not_move_the_border(settings):
    """A sender's Received whose comment names the border host ("(by mx…)") is not the border:
    a trusted-looking header below it came with the message and counts for nothing."""
    f = _inline(settings, "Received: from a by mx1.dgfip.finances.gouv.fr; Tue, 6 Jan 2026\r\n"
                "Received: from q (by mx.dgfip.finances.gouv.fr) by z; Tue, 6 Jan 2026\r\n"
                + AR + "dmarc=pass header.from=ville-voiron.fr\r\n")
    assert _status(f) == ("absent", False)


def test_only_the_border_block_counts(settings):
    """A trusted-looking header below the sender's own Received came with the message and is
    ignored: only the border's block speaks."""
    f = _inline(settings, BORDER + AR + "spf=pass smtp.mailfrom=ville-voiron.fr\r\n"
                + SENDER_HOP + AR + "dmarc=pass header.from=ville-voiron.fr\r\n")
    assert _status(f) == ("absent", False)
    f = _inline(settings, BORDER + AR + "dmarc=fail header.from=ville-voiron.fr\r\n"
                + SENDER_HOP + AR + "dmarc=pass header.from=ville-voiron.fr\r\n")
    assert _status(f) == ("fail", False)
