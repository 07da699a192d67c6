"""Compose the outgoing reply: headers only from validated addresses and one-line text.

The Python on these machines predates the fix for CVE-2024-6923 (``verify_generated_headers``),
so the project enforces it itself: every header value is stripped of CR, LF and the other line
separators, every address is checked with email-validator, and the finished bytes are parsed
again to check that they name exactly the intended recipient and no other header appeared.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser

from email_validator import EmailNotValidError, validate_email

from triage.config import Department
from triage.draft import one_line
from triage.errors import TriageError
from triage.rules.automatic import LOOP_HEADER

#: A ticket number has no leading zero and at most ten digits (ids are 32-bit).
TICKET_REF = re.compile(r"\[réf\. T([1-9]\d{0,9})\]")


class ComposeError(TriageError):
    """The reply cannot be built safely (an invalid address, an injected header)."""


@dataclass(frozen=True)
class Outgoing:
    message_id: str
    from_addr: str
    to_addr: str
    raw: bytes


def _address(value: str) -> str:
    """The address in ASCII form (IDNA domain), as it goes in headers and the envelope."""
    try:
        info = validate_email(value, check_deliverability=False, allow_quoted_local=True)
    except EmailNotValidError as exc:
        raise ComposeError(f"invalid address {value!r}: {exc}") from exc
    if not info.ascii_email:
        raise ComposeError(f"address {value!r} needs SMTPUTF8, which the relay is not asked for")
    return str(info.ascii_email)


def new_message_id(domain: str) -> str:
    return f"{uuid.uuid4().hex}@{domain}"


def compose(*, department: Department, to: str, subject: str, body: str, ticket_id: int,
            in_reply_to: str | None, references: str | None, message_id: str,
            loop_token: str) -> Outgoing:
    """The reply's bytes: UTF-8 plain text, threaded on the original, with our loop header."""
    sender = _address(department.mailbox)
    recipient = _address(to)
    subject = one_line(subject, 250)
    if not TICKET_REF.search(subject):
        subject = f"{subject} [réf. T{ticket_id}]"
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr((f"DDFIP {department.code} – {department.name}", sender))
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<{one_line(message_id, 300)}>"
    refs: list[str] = []
    if references:
        refs = [f"<{r}>" for r in re.findall(r"<([^<>\s]+)>", one_line(references, 4000))][-10:]
    if in_reply_to:
        parent = f"<{one_line(in_reply_to, 300).strip('<>')}>"
        msg["In-Reply-To"] = parent
        if parent not in refs:
            refs.append(parent)
    if refs:
        msg["References"] = " ".join(refs)
    msg[LOOP_HEADER] = one_line(loop_token, 200)
    msg.set_content(body.replace("\r\n", "\n"), charset="utf-8", cte="quoted-printable")
    raw = msg.as_bytes()
    _verify(raw, recipient, message_id)
    return Outgoing(message_id, sender, recipient, raw)


def _verify(raw: bytes, recipient: str, message_id: str) -> None:
    """Parse the bytes again: one recipient, the one intended, and no smuggled header."""
    parsed = BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)
    tos = [a for _n, a in email.utils.getaddresses(parsed.get_all("To") or [])]
    if tos != [recipient]:
        raise ComposeError(f"the reply would go to {tos!r}, not {recipient!r}")
    for name in ("Cc", "Bcc", "Reply-To", "Sender", "Resent-To"):
        if parsed.get(name) is not None:
            raise ComposeError(f"unexpected {name} header in the reply")
    if len(parsed.get_all("Subject") or []) != 1 or parsed.get("Message-ID") != f"<{message_id}>":
        raise ComposeError("the reply's headers were altered while composing")
