"""Hostile messages, one file per attack, each with its expected outcome."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from triage.config import load_settings
from triage.pipeline import triage_bytes
from triage.send.compose import compose

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"

# file: (expected action, a reason fragment that must be shown)
EXPECTED = {
    "forged-trusted-below-real": ("quarantine", "dmarc=fail selon mx.dgfip"),
    "foreign-authserv-pass": ("draft", "d'un autre serveur ignoré"),
    "folded-trusted-fail": ("quarantine", "dmarc=fail"),
    "two-from": ("quarantine", "2 en-têtes From"),
    "from-sender-mismatch": ("draft", "Sender (eve@evil.example) diffère de From"),
    "display-name-spoof": ("draft", "le nom affiché contient une autre adresse"),
    "cyrillic-homoglyph-domain": ("draft", "ressemblant à celui du service"),
    "punycode-domain": ("draft", "punycode"),
    "smuggled-encoded-address": ("draft", "le nom affiché contient une autre adresse"),
    "smuggled-comment-address": ("draft", "le nom affiché contient une autre adresse"),
    "smuggled-two-angle-addresses": ("quarantine", "expéditeur illisible"),
    "smuggled-quoted-at": ("draft", "partie locale entre guillemets"),
    "oof-with-instructions-in-subject": ("ignore", "Auto-Submitted"),
    "oof-without-headers-instructions": ("ignore", "réponse automatique"),
    "ssti-subject-arith": ("draft", "mot de passe oublié"),
    "ssti-subject-mro": ("draft", "mot de passe oublié"),
    "ssti-display-name": ("draft", "expéditeur"),
    "crlf-encoded-subject": ("draft", "mot de passe oublié"),
    "crlf-encoded-display-name": ("draft", "le nom affiché contient une autre adresse"),
    "helpdesk-address-forged-as-from": ("ignore", "boîte du service"),
    "received-comment-names-border": ("draft", "aucun résultat DMARC d'un serveur de confiance"),
}


def test_every_file_has_an_expectation():
    """The table covers every hostile file and nothing else."""
    assert {p.stem for p in HOSTILE.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_message(name):
    """Each attack gets its expected action, shows its reason, and any reply would go to the
    From address only, with the hostile text inert."""
    settings = load_settings()
    raw = (HOSTILE / f"{name}.eml").read_bytes()
    outcome = triage_bytes(raw, settings)
    action, reason = EXPECTED[name]
    assert outcome.error is None
    assert outcome.decision.action.value == action
    assert any(reason in str(r) for r in outcome.decision.reasons), outcome.decision.reasons
    if outcome.draft is None:
        assert action != "draft"
        return
    draft = outcome.draft
    assert outcome.message is not None and outcome.message.sender_address is not None
    assert draft.to == outcome.message.sender_address.address
    assert "49" not in draft.body and "__mro__" not in draft.body and "config" not in draft.body
    department = settings.department(draft.department)
    assert department is not None
    out = compose(department=department, to=draft.to, subject=draft.subject, body=draft.body,
                  ticket_id=1, in_reply_to=draft.in_reply_to, references=None,
                  message_id="m@x.test", loop_token="t")
    parsed = email.message_from_bytes(out.raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == [out.to_addr]
    assert out.to_addr.isascii()
    for header in ("Bcc", "Cc", "Reply-To"):
        assert parsed[header] is None
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]


# -- sender checks that an attack on the demo got through (issue 14) ------------------------
BODY = (b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mot de passe\r\n"
        b"Message-ID: <h14@test>\r\n\r\nJ'ai oubli\xc3\xa9 mon mot de passe, pmartin-xt\r\n")


def _decide(head: bytes):
    outcome = triage_bytes(head + BODY, load_settings())
    assert outcome.error is None
    return outcome


def test_forged_results_directly_under_the_border_are_not_believed():
    """A forged dmarc=pass with the trusted authserv-id placed right under the border's own
    headers (no Received between) does not hide the border's dmarc=fail, in either order."""
    border = (b"Authentication-Results: mx.dgfip.finances.gouv.fr; dmarc=fail (p=reject) "
              b"header.from=ville-voiron.fr\r\n")
    forged = (b"Authentication-Results: mx.dgfip.finances.gouv.fr; dmarc=pass "
              b"header.from=ville-voiron.fr\r\n")
    rest = (b"Received: from mail.ville-voiron.fr by mx.dgfip.finances.gouv.fr; "
            b"Tue, 10 Mar 2026 09:00:01 +0100\r\n"
            b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n")
    for head in (border + forged, forged + border):
        outcome = _decide(head + rest)
        assert outcome.decision.authenticated is False
        assert outcome.decision.action.value == "quarantine"


def test_results_below_the_border_block_do_not_count():
    """A trusted-looking header below the first Received under the border's own came with the
    message; the border's header, just under its Received, counts."""
    border = (b"Received: from mail.ville-voiron.fr by mx.dgfip.finances.gouv.fr (Postfix); "
              b"Tue, 10 Mar 2026 09:00:01 +0100\r\n")
    sender = (b"Received: from [10.1.2.3] by mail.ville-voiron.fr; "
              b"Tue, 10 Mar 2026 09:00:00 +0100\r\n")
    forged = (b"Authentication-Results: mx.dgfip.finances.gouv.fr; dmarc=pass "
              b"header.from=ville-voiron.fr\r\n")
    sender_from = b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
    assert _decide(border + sender + forged + sender_from).decision.authenticated is False
    assert _decide(border + forged + sender + sender_from).decision.authenticated is True


@pytest.mark.parametrize("header_from", [b"fr", b"gouv.fr", b"voiron.fr"])
def test_alignment_uses_the_public_suffix_list(header_from):
    """dmarc=pass for a public suffix (header.from=fr) or another organisation does not align."""
    outcome = _decide(
        b"Authentication-Results: mx.dgfip.finances.gouv.fr; dmarc=pass header.from="
        + header_from + b"\r\nFrom: Paul Martin <paul.martin@ville-voiron.fr>\r\n")
    assert outcome.decision.authenticated is False


def test_alignment_accepts_a_subdomain_of_the_same_organisation():
    """Relaxed alignment: mail.ville-voiron.fr aligns with ville-voiron.fr."""
    outcome = _decide(
        b"Authentication-Results: mx.dgfip.finances.gouv.fr; dmarc=pass "
        b"header.from=mail.ville-voiron.fr\r\nFrom: Paul <paul.martin@ville-voiron.fr>\r\n")
    assert outcome.decision.authenticated is True


@pytest.mark.parametrize("sender", [
    "paul@dgfip.finances.gouv.fr.evil-mail.com",   # our domain as a prefix
    "paul@ddfip38.dgfip-finances.fr",              # hyphen and label variant
    "paul@dgfip-finances-gouv.fr",                 # every dot a hyphen
    "paul@dg\ufb01p.finances.gouv.fr",             # a ligature fi
    "paul@dgf\u0456p.finances.gouv.fr",            # a Cyrillic i (TR39 skeleton)
    "paul@dgfip.flnances.gouv.fr",                 # one letter changed
])
def test_look_alike_domains_are_flagged(sender):
    """Domains that could pass for the service's are flagged to the agent."""
    outcome = _decide(f"From: Paul <{sender}>\r\n".encode())
    assert any("ressemblant à celui du service" in str(r) for r in outcome.decision.reasons), (
        outcome.decision.reasons)


def test_unknown_sender_at_our_own_domain_is_flagged():
    """An address at the service's own domain that is none of its mailboxes is flagged."""
    outcome = _decide(b"From: Chef <chef.service@dgfip.finances.gouv.fr>\r\n")
    assert any("adresse inconnue du domaine du service" in str(r)
               for r in outcome.decision.reasons), outcome.decision.reasons


@pytest.mark.parametrize("sender", ["paul.martin@ville-voiron.fr", "jean@finances.gouv.fr",
                                    "marie@mairie-grenoble.fr", "x@gouv.fr"])
def test_ordinary_domains_are_not_look_alikes(sender):
    """Ordinary senders, the parent organisation included, get no look-alike warning."""
    outcome = _decide(f"From: Paul <{sender}>\r\n".encode())
    assert not any("ressemblant" in str(r) or "adresse inconnue" in str(r)
                   for r in outcome.decision.reasons), outcome.decision.reasons


# -- parts "not fetched" (review item 3) -----------------------------------------------------
FORGED_STUB = (b"From: Eve <eve@ville-voiron.fr>\r\n" + BODY.split(b"\r\n\r\n")[0]
               + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
               b"--b\r\nContent-Type: text/plain\r\n\r\nmot de passe oubli\xc3\xa9\r\n"
               b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
               b"filename=mien.pdf\r\nX-Triage-Partial: 10 bytes not fetched\r\n\r\nxx\r\n"
               b"--b--\r\n")


def test_a_sender_written_partial_marker_is_ignored():
    """A part whose X-Triage-Partial header the sender wrote is listed as stored, with its size,
    so its download never goes to the mailbox."""
    outcome = triage_bytes(FORGED_STUB, load_settings())
    assert outcome.message is not None
    assert [(a.filename, a.stored) for a in outcome.message.attachments] == [("mien.pdf", True)]


def test_the_intake_stand_in_keeps_only_its_own_stubs():
    """In the stand-in of a large message, a marker in a fetched header and a text part that
    tries to open a stub of its own are inert: only the parts the structure lists are stubs."""
    from triage.mailbox.fetch import PartInfo, _rebuild

    parts = [PartInfo("1", "text/plain", None, 40, True),
             PartInfo("2", "application/pdf", "gros.pdf", 5_000_000, False)]
    injected = (b"mot de passe\r\n--triage-partial-7\r\nContent-Type: application/pdf\r\n"
                b"Content-Disposition: attachment; filename=faux.pdf\r\n"
                b"X-Triage-Partial: 3 bytes not fetched\r\n\r\n")
    raw = _rebuild(7, parts, {
        b"BODY[HEADER]": b"X-Triage-Partial: 1 bytes not fetched\r\n"
                         + BODY.split(b"\r\n\r\n")[0] + b"\r\n",
        b"BODY[1.MIME]": b"Content-Type: text/plain\r\nX-Triage-Partial: 2 bytes not fetched"
                         b"\r\n\r\n",
        b"BODY[1]": injected})
    outcome = triage_bytes(raw, load_settings(), partial=True)
    assert outcome.message is not None
    assert [(a.filename, a.size, a.stored) for a in outcome.message.attachments] == [
        ("gros.pdf", 5_000_000, False)]
