"""Does anything about the sender's address deserve the agent's attention?

Never a quarantine on its own: these are warnings shown with the decision. Signals (from the
Ticket Trick and display-name spoofing cases, and UTS #39 for confusables): Reply-To or Sender
differing from From (the reply only ever goes to From); a display name that contains an
address; a punycode, non-ASCII or mixed-script domain (a ligature such as ``ﬁ`` is unfolded by
the address parser, so the domain as written is checked too); a domain that looks like one of
the helpdesk's own without being it: same confusable skeleton (:mod:`triage.rules.domains`),
one edit away, our domain used as a prefix (``dgfip.finances.gouv.fr.evil-mail.com``), or our
name rearranged with hyphens and other labels (``ddfip38.dgfip-finances.fr``); an address at
our own domain that is none of the service's mailboxes (the From header is easy to forge); a
comment or a quoted local part in the address.
"""

from __future__ import annotations

import re
import unicodedata

from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding
from triage.rules.domains import public_suffix, skeleton, within

NAME = "trust"
DESCRIPTION = "signes d'usurpation ou d'adresse trompeuse chez l'expéditeur"

_ADDRESS_IN_NAME = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_SEPARATORS = re.compile(r"[.\-_]")


def _scripts(text: str) -> set[str]:
    if text.isascii():  # most domains: the letters are Latin ones
        return {"LATIN"} if any(ch.isalpha() for ch in text) else set()
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


def _core(domain: str) -> str:
    """The name without its public suffix, separators removed, as a skeleton:
    ``dgfip.finances.gouv.fr`` -> ``dgfipfinances``, ``dgfip-finances.fr`` -> the same."""
    suffix = public_suffix(domain)
    name = domain[: -len(suffix) - 1] if suffix and domain.endswith("." + suffix) else domain
    return _SEPARATORS.sub("", skeleton(name))


def looks_like(domain: str, ours: str) -> bool:
    """``domain`` is not ``ours`` (nor below it) but could pass for it."""
    if not domain or within(domain, ours):
        return False
    if skeleton(domain) == skeleton(ours) or _near(domain, ours):
        return True
    if ours in domain:  # our domain as a prefix or inside: dgfip.finances.gouv.fr.evil.com
        return True
    core, our_core = _core(domain), _core(ours)
    if our_core and our_core in core:  # hyphen and label variants: ddfip38.dgfip-finances.fr
        return True
    # Our most specific label alone, as a label or hyphen-separated part of the name.
    first = skeleton(ours.split(".")[0])
    return len(first) >= 4 and first in _SEPARATORS.split(skeleton(domain))


def _written_domain(from_header: str, address: str) -> str:
    """The domain as the From header writes it (before the parser's normalisation), lower
    case; the parsed address's domain when the header's cannot be found."""
    local = address.rpartition("@")[0]
    for match in re.finditer(r"@([^\s<>@,;\"()]+)", from_header):
        before = from_header[: match.start()]
        if before.lower().endswith(local) or not local:
            return match.group(1).lower().rstrip(".>")
    return address.rpartition("@")[2]


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
    written = _written_domain(message.from_header, sender.address)
    if "xn--" in message.from_header.lower() or not domain.isascii() or not written.isascii():
        # The parser shows punycode decoded and unfolds ligatures: any of these forms means an
        # internationalised domain.
        shown = domain if written == domain else f"{written}, lu {domain}"
        warnings.append(f"domaine internationalisé ou en punycode ({shown}) : il peut imiter "
                        "un autre domaine")
    scripts = _scripts(written or domain)
    if len(scripts - {"DIGIT"}) > 1:
        warnings.append(f"domaine mêlant plusieurs écritures ({', '.join(sorted(scripts))}) : "
                        f"{written or domain}")
    own = sorted({a.rpartition("@")[2] for a in ctx.settings.helpdesk_addresses})
    for ours in own:
        if within(domain, ours) and within(written, ours):
            continue
        if looks_like(written or domain, ours) or looks_like(domain, ours):
            warnings.append(f"domaine {written or domain} ressemblant à celui du service ({ours})")
            break
    if any(within(domain, ours) for ours in own) and (
            sender.address not in ctx.settings.helpdesk_addresses):
        warnings.append(f"adresse inconnue du domaine du service ({sender.address}) : l'en-tête "
                        "From se falsifie aisément, vérifiez qu'il s'agit bien d'un collègue")
    raw = message.from_header
    if re.search(r"\([^)]*\)", raw.split("<")[-1] if "<" in raw else raw) or re.search(
            r'"[^"]*"@', raw):
        warnings.append(f"adresse avec un commentaire ou une partie locale entre guillemets : "
                        f"{raw[:120]}")
    return finding(NAME, tuple(warnings), *warnings)
