"""In which department was the account created?

By default, the receiving mailbox's: the single department mailbox among To and Cc; when To
and Cc name none, the one in Delivered-To / X-Original-To; last, the mailbox the message was
fetched from. A message addressed to several department mailboxes has none by default.

A clear statement in the sender's new text (signature included) overrides the default: the
department named (« compte créé auprès de la DDFIP de la Haute-Savoie »), a postal code, a
SIREN/SIRET, a commune, or a sender domain that names a commune or that the configuration
assigns to a department. Statements are weighed; on a tie the default wins if it is among them,
else the department stays undetermined.
"""

from __future__ import annotations

from collections import defaultdict

from triage.parse import MessageView
from triage.rules import places
from triage.rules.base import Context, Finding, Reason
from triage.text import fold

NAME = "department"
LABEL = "Département"
ACCOUNT_WEIGHT = 8
DESCRIPTION = "département où le compte a été créé (boîte destinataire ou lieu cité)"


def default_department(message: MessageView, ctx: Context) -> tuple[str | None, str]:
    settings = ctx.settings

    def codes(addresses: list[str]) -> list[str]:
        found = []
        for a in addresses:
            dept = settings.department_of_mailbox(a)
            if dept and dept.code not in found:
                found.append(dept.code)
        return found

    direct = codes([a.address for a in message.recipients])
    if len(direct) == 1:
        return direct[0], f"adressé à la boîte du {direct[0]}"
    if len(direct) > 1:
        return None, f"adressé à plusieurs boîtes départementales ({', '.join(direct)})"
    delivered = codes(list(message.delivered_to))
    if len(delivered) == 1:
        return delivered[0], f"remis à la boîte du {delivered[0]} (Delivered-To / X-Original-To)"
    if len(delivered) > 1:
        return None, f"remis à plusieurs boîtes départementales ({', '.join(delivered)})"
    if ctx.mailbox:
        dept = settings.department_of_mailbox(ctx.mailbox)
        if dept:
            return dept.code, f"relevé dans la boîte du {dept.code}"
    return None, "aucune boîte départementale parmi les destinataires"


def statements(message: MessageView, ctx: Context) -> list[places.Statement]:
    geo = ctx.geography
    new, sig = message.new_text, message.signature
    body = new[: len(new) - len(sig)] if sig and new.endswith(sig) else new
    body_lines = places.read_lines(body, geo, fold(body))  # read by several finders
    sig_lines = places.read_lines(sig, geo)
    found: list[places.Statement] = []
    found += places.department_names_outside_epcis(body, geo, 3, "le texte", body_lines)
    found += places.department_names_outside_epcis(sig, geo, 3, "la signature", sig_lines)
    # The message's lines are the body's then the signature's when the body is empty or ends
    # with a line break that cannot join the signature's first character (« \r » + « \n »).
    whole = (body is not new or not sig) and (not body or not sig or body.endswith("\n"))
    found += places.epci_names(new, geo, "le message",
                               body_lines.epcis + sig_lines.epcis if whole else None)
    found += places.department_names(message.subject, geo, 2, "l'objet")
    found += places.postal_codes(body, geo, 3, "le texte")
    found += places.postal_codes(sig, geo, 4, "la signature")
    found += places.sirets(new, geo, "le message")
    found += places.commune_names(body, geo, "le texte", signature=False,
                                  folded=body_lines.folded)
    found += places.commune_names(sig, geo, "la signature", signature=True)
    found += places.account_places(new, geo, "le message")
    found += places.other_placed_communes(body, geo, "le texte")
    found += places.other_placed_communes(sig, geo, "la signature")
    sender = message.sender_address
    if sender is not None:
        found += places.domain_commune(sender.domain, geo)
        for dept in ctx.settings.departments:
            if sender.domain in dept.extra_sender_domains:
                found.append(places.Statement(
                    dept.code, 3, f"département {dept.code} : domaine {sender.domain} rattaché "
                                  "à ce département dans la configuration"))
    return found


def check(message: MessageView, ctx: Context) -> Finding[str | None]:
    default, why = default_department(message, ctx)
    found = statements(message, ctx)
    reasons = [Reason(NAME, f"par défaut : {why}")]
    if not found:
        if default is None:
            reasons.append(Reason(NAME, "aucun lieu cité dans le message : département inconnu"))
        return Finding(NAME, default, tuple(reasons))
    totals: dict[str, int] = defaultdict(int)
    counted: set[str] = set()
    for s in sorted(found, key=lambda s: -s.weight):
        if s.text in counted:
            continue  # one piece of evidence counts once, wherever it was read
        counted.add(s.text)
        totals[s.department] += s.weight
    account = {s.department for s in found if s.weight >= ACCOUNT_WEIGHT}
    if len(account) == 1:
        # Where the account was created is what the department means: a clear statement of
        # it settles the question.
        code = next(iter(account))
        totals[code] = max(totals.values()) + 1
    best = max(totals.values())
    leaders = sorted(d for d, w in totals.items() if w == best)
    seen: set[str] = set()
    for s in sorted(found, key=lambda s: -s.weight):
        if s.text not in seen:
            seen.add(s.text)
            reasons.append(Reason(NAME, s.text))
    if len(leaders) == 1 and leaders[0] not in ctx.geography.codes:
        chosen: str | None = None
        reasons.append(Reason(NAME, f"le compte relève du département {leaders[0]}, que le "
                                    "service ne gère pas : à réorienter par un agent"))
    elif len(leaders) == 1:
        chosen = leaders[0]
        if default is not None and chosen != default:
            reasons.append(Reason(NAME, f"le lieu cité l'emporte sur la boîte destinataire : "
                                        f"{chosen} au lieu de {default}"))
    elif default in leaders:
        chosen = default
        reasons.append(Reason(NAME, f"lieux contradictoires ({', '.join(leaders)}) : la boîte "
                                    f"destinataire {default} départage"))
    else:
        chosen = None
        reasons.append(Reason(NAME, f"lieux contradictoires ({', '.join(leaders)}) : "
                                    "département inconnu"))
    return Finding(NAME, chosen, tuple(reasons))
