"""The trust rule: warnings about misleading sender addresses, never a quarantine."""

from __future__ import annotations

from triage.config import load_settings
from triage.decision import Action
from triage.parse import parse_message
from triage.pipeline import triage_bytes
from triage.rules import trust
from triage.rules.base import Context

BODY = b"\r\n\r\nJ'ai oubli\xc3\xa9 mon mot de passe Chorus Pro, identifiant pmartin-xt.\r\n"
TO = b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mot de passe\r\n"


def warnings(headers: bytes) -> tuple[str, ...]:
    settings = load_settings()
    view = parse_message(headers + TO + BODY, settings.limits)
    value: tuple[str, ...] = trust.check(view, Context(settings=settings)).value
    return value


def test_plain_sender_has_no_warning():
    """An ordinary address gets no warning."""
    assert warnings(b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n") == ()


def test_reply_to_and_sender_mismatch():
    """Reply-To and Sender that differ from From are both reported."""
    found = warnings(b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
                     b"Reply-To: pm@evil.example\r\nSender: relay@evil.example\r\n")
    assert any("Reply-To (pm@evil.example)" in w for w in found)
    assert any("Sender (relay@evil.example)" in w for w in found)


def test_display_name_with_address():
    """A display name carrying another address is reported."""
    found = warnings(b'From: "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr" <x@evil.example>\r\n')
    assert any("nom affiché contient une autre adresse" in w for w in found)


def test_homoglyph_and_punycode_lookalikes():
    """A Cyrillic homoglyph of the service's domain and a punycode domain are reported."""
    found = warnings("From: Paul <paul@dgfіp.finances.gouv.fr>\r\n".encode())
    assert any("plusieurs écritures" in w for w in found)
    assert any("ressemblant à celui du service" in w for w in found)
    found = warnings(b"From: Paul <paul@xn--dgfp-finances-xyz.fr>\r\n")
    assert any("punycode" in w for w in found)
    found = warnings(b"From: Paul <paul@dgfip-finances.gouv.fr>\r\n")
    assert any("ressemblant" in w for w in found)


def test_warnings_do_not_quarantine():
    """A Reply-To mismatch is shown to the agent but the request is still drafted."""
    raw = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\nReply-To: pm@evil.example\r\n"
           + TO + BODY)
    outcome = triage_bytes(raw, load_settings())
    assert outcome.decision.action is Action.DRAFT
    assert any(r.rule == "trust" for r in outcome.decision.reasons)
    assert outcome.draft is not None and outcome.draft.to == "paul.martin@ville-voiron.fr"


def test_department_requiring_authentication(tmp_path):
    """Where a department requires DMARC, an unauthenticated reset goes to an agent."""
    from tests.review.conftest import make_settings

    strict = make_settings(tmp_path)
    depts = [d.model_copy(update={"require_authentication": d.code == "38"})
             for d in strict.departments]
    strict = strict.model_copy(update={"departments": tuple(depts)})
    raw = b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n" + TO + BODY
    decision = triage_bytes(raw, strict).decision
    assert decision.action is Action.HUMAN and decision.link == "authentication-required"
    authed = (b"Authentication-Results: mx.dgfip.finances.gouv.fr; dmarc=pass "
              b"header.from=ville-voiron.fr\r\n" + raw)
    assert triage_bytes(authed, strict).decision.action is Action.DRAFT
