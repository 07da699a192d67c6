"""Did the receiving server authenticate the sender (DMARC), by a header we can trust?

Only ``Authentication-Results`` headers whose authserv-id is trusted count, and only in the
topmost block: the headers our border MTA added on arrival, i.e. those above the first
``Received`` header below the border's own ``Received`` (the topmost one whose ``by`` names a
trusted host; the border writes its results next to it). Anything lower came with the message
(RFC 8601 §5). The ``by`` of a ``Received`` is read with its comments removed: a sender's
own ``Received`` may name the border in a comment. Every trusted header of the block counts:
the border's milters commonly write SPF, DKIM and DMARC in separate headers, and the border
strips incoming headers that carry its authserv-id (docs/configuration.md says what the border
must do). A header from any other authserv-id is ignored, as is its absence. A ``dmarc=fail``
in any trusted header quarantines the message; otherwise a ``dmarc=pass`` with a
``header.from`` aligned on the From domain (relaxed alignment, RFC 7489 §3.1: the same
organizational domain after the Public Suffix List) marks the sender authenticated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding
from triage.rules.domains import organizational_domain

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


def _uncommented(value: str) -> str:
    """``value`` without its RFC 5322 comments (nested ones too, innermost first)."""
    text = value
    for _ in range(5):
        if "(" not in text:  # no comment left: the other passes would change nothing
            break
        text = _COMMENT.sub(" ", text)
    return text


def parse_authres(value: str) -> tuple[str, str]:
    """Split a header value into (authserv-id, the rest with comments removed)."""
    authserv, _sep, rest = _uncommented(value).partition(";")
    return authserv.strip().split()[0].lower() if authserv.strip() else "", rest


_BY = re.compile(r"\bby\s+([^\s;()]+)", re.IGNORECASE)


def trusted_headers(message: MessageView, trusted: tuple[str, ...]) -> list[str]:
    """The trusted Authentication-Results of the border's block, top first."""
    received = [(i, v) for i, (k, v) in enumerate(message.headers) if k.lower() == "received"]
    border = next((n for n, (_i, v) in enumerate(received)
                   if (m := _BY.search(_uncommented(v)))
                   and m.group(1).lower().rstrip(".") in trusted), None)
    # The block ends at the first Received below the border's own (without a Received by a
    # trusted host, at the first Received of all).
    after = (border + 1) if border is not None else 0
    end = received[after][0] if after < len(received) else len(message.headers)
    return [value for index, value in message.header_positions("Authentication-Results")
            if index < end and parse_authres(value)[0] in trusted]


def _aligned(header_from: str | None, from_domain: str | None) -> bool:
    """Relaxed alignment (RFC 7489 §3.1): both domains have one organizational domain, found
    with the Public Suffix List; a public suffix (``fr``) aligns with nothing."""
    if not header_from or not from_domain:
        return False
    a = organizational_domain(header_from)
    return a is not None and a == organizational_domain(from_domain)


def check(message: MessageView, ctx: Context) -> Finding[AuthResult]:
    trusted = ctx.settings.trusted_authserv_ids
    headers = trusted_headers(message, trusted)
    ignored = len(message.headers_named("Authentication-Results")) - len(headers)
    notes = []
    if ignored:
        notes.append(f"{ignored} en-tête(s) Authentication-Results d'un autre serveur ignoré(s)")
    results = []
    for value in headers:
        authserv, rest = parse_authres(value)
        for match in _RESULT.finditer(";" + rest):
            hf = _HEADER_FROM.search(match.group(2))
            results.append((authserv, match.group(1).lower(), hf.group(1) if hf else None))
    if not results:
        return finding(NAME, AuthResult("absent", False),
                       "aucun résultat DMARC d'un serveur de confiance : expéditeur non "
                       "authentifié", *notes)
    # A failure anywhere in the block wins; else a pass (an aligned one first) speaks.
    sender = message.sender_address
    from_domain = sender.domain if sender else None
    failed = [r for r in results if r[1] == "fail"]
    passed = sorted((r for r in results if r[1] == "pass"),
                    key=lambda r: not _aligned(r[2], from_domain))
    authserv, result, header_from = (failed or passed or results)[0]
    authenticated = result == "pass" and _aligned(header_from, from_domain)
    if result == "fail":
        text = f"dmarc=fail selon {authserv} : l'expéditeur n'est pas authentifié"
    elif authenticated:
        text = f"dmarc=pass selon {authserv}, domaine {header_from} aligné sur l'adresse From"
    elif result == "pass":
        text = (f"dmarc=pass selon {authserv} mais pour le domaine {header_from}, "
                "non aligné sur celui de l'adresse From")
    else:
        text = f"dmarc={result} selon {authserv} : expéditeur non authentifié"
    return finding(NAME, AuthResult(result, authenticated, header_from), text, *notes)
