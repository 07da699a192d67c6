"""The automatic rule: auto-replies, bounces, lists and our own mail are never answered.

One fixture per signal of RFC 3834 §2 / RFC 5230 §4.5 and security note B, each otherwise a
genuine password request (so only the signal can make it automatic), and the misses a rule
that is too eager would get wrong.
"""

import pytest

from triage.config import load_settings
from triage.decision import Action
from triage.pipeline import triage_bytes
from triage.rules import automatic

from .conftest import DATA, reasons

HITS = [
    # fixture, words the reason must contain (naming the signal)
    ("auto-submitted-auto-replied", "Auto-Submitted: auto-replied"),
    ("auto-submitted-auto-generated", "Auto-Submitted: auto-generated"),
    ("x-autoreply", "X-Autoreply: yes"),
    ("x-autorespond", "X-Autorespond"),
    ("precedence-bulk", "Precedence: bulk"),
    ("precedence-junk", "Precedence: junk"),
    ("precedence-list", "Precedence: list"),
    ("precedence-auto-reply", "Precedence: auto_reply"),
    ("list-id", "List-Id"),
    ("list-unsubscribe", "List-Unsubscribe"),
    ("x-auto-response-suppress-all", "X-Auto-Response-Suppress: All"),
    ("x-auto-response-suppress-oof", "X-Auto-Response-Suppress: DR, RN, NRN, OOF"),
    ("x-loop", "X-Loop"),
    ("x-triage-loop", "X-Triage-Loop"),
    ("return-path-null", "Return-Path: <>"),
    ("return-path-owner", "Return-Path (owner-secretaires@lists.example.fr)"),
    ("from-null", "From: <>"),
    ("from-mailer-daemon", "mailer-daemon@mx.mairie-bozel.fr"),
    ("from-postmaster", "postmaster@mairie-bozel.fr"),
    ("from-owner", "owner-secretaires@lists.example.fr"),
    ("from-request", "secretaires-request@lists.example.fr"),
    ("from-listserv", "listserv@lists.example.fr"),
    ("from-majordomo", "majordomo@lists.example.fr"),
    ("from-no-reply", "ne-pas-repondre@chorus-pro.gouv.fr"),
    ("from-display-mail-delivery-subsystem", "Mail Delivery Subsystem"),
    ("from-own-mailbox", "boîte du service (ddfip26.pgp.spl-pes@dgfip.finances.gouv.fr)"),
    ("sender-own-mailbox", "Sender: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"),
    ("sender-owner", "Sender (owner-secretaires@lists.example.fr)"),
    ("multipart-report", "multipart/report"),
    ("delivery-status-in-mixed", "message/delivery-status"),
    ("read-receipt", "multipart/report"),
    ("subject-reponse-automatique", "objet de message automatique"),
    ("subject-out-of-office", "Out of Office"),
    ("subject-undeliverable", "Non remis"),
    ("text-reponse-automatique", "ceci est une reponse automatique"),
    ("text-absence-in-reply", "je suis absente du"),
]


@pytest.mark.parametrize("fixture, words", HITS, ids=[h[0] for h in HITS])
def test_each_signal_makes_the_message_automatic(check, fixture, words):
    """Each signal alone makes an otherwise genuine request automatic, and the reason names it."""
    f = check(automatic, f"automatic/{fixture}.eml")
    assert f.value is True
    assert words in reasons(f)


@pytest.mark.parametrize("fixture", [
    "plain-request",
    "auto-submitted-no",
    "person-mentions-absente",
    "forwarded-chorus-expiry-notice",
    "person-attaches-a-bounce",
])
def test_person_written_requests_are_not_automatic(check, fixture):
    """A person's request is not automatic: ``Auto-Submitted: no``, « absente » said in passing,
    a forwarded portal notice that says « message automatique », an attached bounce."""
    f = check(automatic, f"automatic/{fixture}.eml")
    assert f.value is False
    assert f.reasons == ()


def test_every_signal_found_is_recorded(check):
    """All the signals present are recorded, not only the first, so agents see the evidence."""
    f = check(automatic, "automatic/auto-submitted-auto-replied.eml")
    text = reasons(f)
    assert "Auto-Submitted" in text and "texte de réponse automatique" in text


def test_forwarded_notice_is_answered_by_the_pipeline():
    """The person's forward of the Chorus Pro expiry notice is drafted, not ignored."""
    raw = (DATA / "automatic" / "forwarded-chorus-expiry-notice.eml").read_bytes()
    outcome = triage_bytes(raw, load_settings())
    assert outcome.decision.action is Action.DRAFT
    assert outcome.decision.template == "expired_password"


@pytest.mark.parametrize("fixture", ["auto-submitted-auto-replied", "multipart-report",
                                     "from-own-mailbox", "x-loop"])
def test_automatic_message_is_ignored_by_the_pipeline(fixture):
    """An automatic message is ignored, whatever its text asks, and the decision says why."""
    raw = (DATA / "automatic" / f"{fixture}.eml").read_bytes()
    decision = triage_bytes(raw, load_settings()).decision
    assert decision.action is Action.IGNORE
    assert decision.link == "automatic"
    assert any(r.rule == "automatic" for r in decision.reasons)


@pytest.mark.parametrize("fixture, words", [
    ("from-own-mailbox-plus-addressed", "ddfip38.pgp.spl-pes+transfert@"),
    ("english-away", "Away:"),
    ("english-away-text-only", "out of the office"),
    ("german-abwesend", "Abwesend"),
])
def test_own_subaddress_and_absence_in_other_languages(check, fixture, words):
    """Our own mailbox written ``box+tag@`` is ours; an absence notice in English (« I'm away »,
    « Away: ») or German with no automatic header is automatic all the same."""
    f = check(automatic, f"automatic/{fixture}.eml")
    assert f.value is True
    assert words in reasons(f)


def test_auto_submitted_no_outweighs_outlook_suppress_header(check):
    """``Auto-Submitted: no`` says a person wrote it: Outlook's ``X-Auto-Response-Suppress``
    beside it does not make the message automatic."""
    f = check(automatic, "automatic/auto-submitted-no-with-suppress.eml")
    assert f.value is False


def test_configured_subjects_and_senders_are_automatic(settings):
    """``patterns.automatic_subjects`` and ``patterns.ignore_senders`` of the configuration
    make a message automatic (ignored), with the pattern named; without them it is not."""
    from triage.parse import parse_message
    from triage.rules.base import Context

    configured = settings.model_copy(update={"patterns": settings.patterns.model_copy(update={
        "automatic_subjects": (r"^\[ticket #\d+\] accuse d'enregistrement",),
        "ignore_senders": (r"@notifications\.cc-vanoise\.fr$",)})})
    for fixture, words in (("configured-subject", "motif « ^\\[ticket"),
                           ("configured-sender", "expéditeur à ignorer selon la configuration")):
        view = parse_message((DATA / "automatic" / f"{fixture}.eml").read_bytes(),
                             settings.limits)
        assert automatic.check(view, Context(settings=settings)).value is False
        f = automatic.check(view, Context(settings=configured))
        assert f.value is True
        assert words in reasons(f)
        assert triage_bytes((DATA / "automatic" / f"{fixture}.eml").read_bytes(),
                            configured).decision.action is Action.IGNORE
