"""Did the receiving server authenticate the sender (DMARC), by a header we can trust?

Only ``Authentication-Results`` headers whose authserv-id is trusted count, and of those only the
topmost block (RFC 8601 §5: our border MTA prepends its own; anything lower may have come with
the message). A header from any other authserv-id is ignored, as is its absence. ``dmarc=fail``
in a trusted header quarantines the message; ``dmarc=pass`` with a ``header.from`` aligned on the
From domain marks the sender authenticated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding

NAME = "authentication"
DESCRIPTION = ("authentification de l'expéditeur (DMARC) selon l'en-tête "
               "Authentication-Results de confiance")


@dataclass(frozen=True)
class AuthResult:
    dmarc: str  # "pass", "fail", "none", ..., or "absent" when no trusted header says anything
    authenticated: bool
    header_from: str | None = None


_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"(?:^|;)\s*dmarc\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_HEADER_FROM = re.compile(r"header\.from\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


def parse_authres(value: str) -> tuple[str, str]:
    """Split a header value into (authserv-id, the rest with comments removed)."""
    text = value
    for _ in range(5):  # nested comments, innermost first
        text = _COMMENT.sub(" ", text)
    authserv, _sep, rest = text.partition(";")
    return authserv.strip().split()[0].lower() if authserv.strip() else "", rest


def trusted_headers(message: MessageView, trusted: tuple[str, ...]) -> list[str]:
    """The topmost contiguous block of trusted Authentication-Results headers."""
    block: list[str] = []
    last = -2
    for index, value in message.header_positions("Authentication-Results"):
        authserv, _ = parse_authres(value)
        if authserv not in trusted:
            continue
        if block and index != last + 1 and _received_between(message, last, index):
            break  # a lower, separate block: not stamped by our border on arrival
        block.append(value)
        last = index
    return block


def _received_between(message: MessageView, a: int, b: int) -> bool:
    return any(k.lower() == "received" for k, _v in message.headers[a + 1:b])


def _aligned(header_from: str | None, from_domain: str | None) -> bool:
    if not header_from or not from_domain:
        return False
    a, b = header_from.lower().rstrip("."), from_domain.lower().rstrip(".")
    # Relaxed alignment (RFC 7489 §3.1): one is the other or a subdomain of it.
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def check(message: MessageView, ctx: Context) -> Finding[AuthResult]:
    trusted = ctx.settings.trusted_authserv_ids
    headers = trusted_headers(message, trusted)
    ignored = len(message.headers_named("Authentication-Results")) - len(headers)
    notes = []
    if ignored:
        notes.append(f"{ignored} en-tête(s) Authentication-Results d'un autre serveur ignoré(s)")
    for value in headers:
        authserv, rest = parse_authres(value)
        match = _RESULT.search(";" + rest)
        if not match:
            continue
        result = match.group(1).lower()
        hf = _HEADER_FROM.search(match.group(2))
        header_from = hf.group(1) if hf else None
        sender = message.sender_address
        aligned = _aligned(header_from, sender.domain if sender else None)
        authenticated = result == "pass" and aligned
        if result == "fail":
            text = f"dmarc=fail selon {authserv} : l'expéditeur n'est pas authentifié"
        elif authenticated:
            text = f"dmarc=pass selon {authserv}, domaine {header_from} aligné sur l'adresse From"
        elif result == "pass":
            text = (f"dmarc=pass selon {authserv} mais pour le domaine {header_from}, "
                    "différent de celui de l'adresse From")
        else:
            text = f"dmarc={result} selon {authserv} : expéditeur non authentifié"
        return finding(NAME, AuthResult(result, authenticated, header_from), text, *notes)
    return finding(NAME, AuthResult("absent", False),
                   "aucun résultat DMARC d'un serveur de confiance : expéditeur non authentifié",
                   *notes)
