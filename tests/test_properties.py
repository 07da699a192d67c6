"""Property-based tests: parse → rules → draft → outgoing message on arbitrary input."""

from __future__ import annotations

import email
import email.policy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.config import load_settings
from triage.decision import Action
from triage.pipeline import triage_bytes
from triage.send.compose import ComposeError, compose

SETTINGS = load_settings()
ACTIONS = {a for a in Action}
header_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_get_a_decision(raw):
    """Any bytes get a decision without an internal error."""
    outcome = triage_bytes(raw, SETTINGS)
    assert outcome.decision.action in ACTIONS
    assert outcome.error is None, outcome.error


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# UTF-7's alphabet, shifts included: its decoder is the one that yields lone surrogates.
utf7_text = st.text(alphabet="+-/ADdSOzk029 ", max_size=200).map(str.encode)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=utf7_text, body=utf7_text)
def test_decoded_text_is_always_utf8(subject, body):
    """Whatever a UTF-7 body or encoded word decodes to, the view's text is text UTF-8 can
    carry (the rules' RE2, the store and the logs encode it), and the message is decided."""
    word = subject.replace(b" ", b"_").replace(b"?", b"")
    raw = (b"From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
           b"Subject: =?utf-7?Q?" + word + b"?=\r\n"
           b"Content-Type: text/plain; charset=utf-7\r\n\r\n"
           b"Mot de passe de pmartin-xt oubli+AOk-. " + body + b"\r\n")
    outcome = triage_bytes(raw, SETTINGS)
    assert outcome.error is None, outcome.error
    view = outcome.message
    assert view is not None
    fields = [view.text, view.new_text, view.subject, view.from_header]
    assert all(_utf8(field) for field in fields + [v for _k, v in view.headers]), fields


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=header_text, name=header_text, body=st.text(max_size=500))
def test_hostile_headers_never_reach_other_recipients(subject, name, body):
    """Whatever the subject and display name hold, a drafted reply re-parses with exactly the
    intended recipient and no smuggled header."""
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["To"] = "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"
    try:
        msg["From"] = email.headerregistry.Address(name, "paul.martin", "ville-voiron.fr")
        msg["Subject"] = subject
    except (ValueError, TypeError, IndexError, email.errors.HeaderParseError):
        return  # the generator itself refuses it: nothing to deliver
    msg.set_content("J'ai oublié mon mot de passe Chorus Pro, identifiant pmartin-xt.\n" + body)
    try:
        raw = msg.as_bytes()
    except (ValueError, UnicodeError, email.errors.HeaderWriteError):
        return
    outcome = triage_bytes(raw, SETTINGS)
    assert outcome.error is None, outcome.error
    draft = outcome.draft
    if draft is None:
        return
    department = SETTINGS.department(draft.department)
    assert department is not None
    try:
        out = compose(department=department, to=draft.to, subject=draft.subject,
                      body=draft.body, ticket_id=7, in_reply_to=draft.in_reply_to,
                      references=None, message_id="p@x.test", loop_token="t")
    except ComposeError:
        return  # refused rather than sent unsafely
    parsed = email.message_from_bytes(out.raw, policy=email.policy.compat32)
    assert email.utils.getaddresses(parsed.get_all("To")) == [("", out.to_addr)]
    for header in ("Cc", "Bcc", "Reply-To", "Sender"):
        assert parsed.get(header) is None
    assert len(parsed.get_all("Subject")) == 1
