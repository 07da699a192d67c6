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
