"""Does anything about the sender's address deserve the agent's attention?

Never a quarantine on its own: these are warnings shown with the decision. Signals (from the
Ticket Trick and display-name spoofing cases, and UTS #39 for confusables): Reply-To or Sender
differing from From (the reply only ever goes to From); a display name that contains an
address; a punycode or mixed-script domain; a domain that looks like one of the helpdesk's own
without being it; a comment or a quoted local part in the address.
"""

from __future__ import annotations

import re
import unicodedata

from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding

NAME = "trust"
DESCRIPTION = "signes d'usurpation ou d'adresse trompeuse chez l'expéditeur"

# A small skeleton map (UTS #39 style) for the look-alikes seen in phishing domains.
_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j",
    "ԁ": "d", "ɡ": "g", "ѕ": "s", "ο": "o", "ν": "v", "α": "a", "ι": "i", "κ": "k", "τ": "t",
    "0": "o", "1": "l", "5": "s", "|": "l",
})
_ADDRESS_IN_NAME = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def skeleton(domain: str) -> str:
    text = unicodedata.normalize("NFKC", domain.lower()).translate(_CONFUSABLES)
    return text.replace("rn", "m").replace("vv", "w").replace("-", "").replace("_", "")


def _scripts(text: str) -> set[str]:
    out = set()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            out.add(name.split(" ")[0] if name else "?")
    return out


def _near(a: str, b: str) -> bool:
    """Equal, or one edit apart (a letter added, dropped or changed)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def check(message: MessageView, ctx: Context) -> Finding[tuple[str, ...]]:
    sender = message.sender_address
    if sender is None:
        return finding(NAME, ())
    warnings: list[str] = []
    for label, addrs in (("Reply-To", message.reply_to), ("Sender", message.sender)):
        others = sorted({a.address for a in addrs} - {sender.address})
        if others:
            warnings.append(f"{label} ({', '.join(others)}) diffère de From ({sender.address}) : "
                            "la réponse n'ira qu'à l'adresse From")
    match = _ADDRESS_IN_NAME.search(sender.display_name)
    if match and match.group(0).lower() != sender.address:
        warnings.append(f"le nom affiché contient une autre adresse ({match.group(0)}) que "
                        f"l'adresse réelle {sender.address}")
    domain = sender.domain
    if "xn--" in message.from_header.lower() or not domain.isascii():
        # The parser shows punycode decoded: either form means an internationalised domain.
        warnings.append(f"domaine internationalisé ou en punycode ({domain}) : il peut imiter "
                        "un autre domaine")
    scripts = _scripts(domain)
    if len(scripts - {"DIGIT"}) > 1:
        warnings.append(f"domaine mêlant plusieurs écritures ({', '.join(sorted(scripts))}) : "
                        f"{domain}")
    own = {a.rpartition("@")[2] for a in ctx.settings.helpdesk_addresses}
    for ours in own:
        if domain != ours and (skeleton(domain) == skeleton(ours) or _near(domain, ours)):
            warnings.append(f"domaine {domain} ressemblant à celui du service ({ours})")
            break
    raw = message.from_header
    if re.search(r"\([^)]*\)", raw.split("<")[-1] if "<" in raw else raw) or re.search(
            r'"[^"]*"@', raw):
        warnings.append(f"adresse avec un commentaire ou une partie locale entre guillemets : "
                        f"{raw[:120]}")
    return finding(NAME, tuple(warnings), *warnings)
