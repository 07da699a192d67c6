"""Does the sender's address name a person (nominative) rather than a role or an organisation?

The local part is split into words (``jean.dupont`` -> jean, dupont). A role or generic word from
the configuration (``mairie``, ``contact``, ``secretariat``, ``compta`` …) makes it a service
address, unless the person's own name from the display name is also there
(``pierre.fargier.mairie@``). A person's display name on a role address does not make the
address nominative (« Sophie Martin <accueil@…> »). Without a role word, the address is
nominative when it matches the display name, has the shape of a name (``j.dupont``,
``jean.dupont``), or is a single word beside a person's display name; an organisation's display
name (« Mairie de Sixt ») or a local part that is the commune's own name makes it a service
address.
"""

from __future__ import annotations

import re

from triage.parse import Address, MessageView
from triage.rules.base import Context, Finding, finding
from triage.rules.communes import name_key
from triage.text import fold

NAME = "nominative"
LABEL = "Adresse nominative"
DESCRIPTION = "adresse nominative (une personne) ou adresse de service"


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z]+", fold(text)) if w]


# Per configured list, kept by the list's identity: the configuration keeps its lists all run
# long, and hashing a list of a hundred words at each lookup cost more than the lookup.
_RANKS: dict[int, tuple[tuple[str, ...], dict[str, int]]] = {}


def _ranks(words: tuple[str, ...]) -> dict[str, int]:
    """Each configured word -> its first place in the list (the configuration's order)."""
    kept = _RANKS.get(id(words))
    if kept is not None and kept[0] is words:
        return kept[1]
    ranks: dict[str, int] = {}
    for rank, word in enumerate(words):
        ranks.setdefault(word, rank)
    if len(_RANKS) >= 16:
        _RANKS.clear()
    _RANKS[id(words)] = (words, ranks)  # the list kept too: its id is not reused
    return ranks


def _listed(token: str, words: tuple[str, ...]) -> str | None:
    """The first of ``words`` that is ``token``, or of five letters or more begins it
    (« secretariat » for « secretariatmairie »); looked up by the token's own beginnings, so
    that a long list costs no more than a short one."""
    ranks = _ranks(words)
    found = [ranks[p] for p in (token, *(token[:n] for n in range(5, len(token))))
             if p in ranks and (p == token or len(p) >= 5)]
    return words[min(found)] if found else None


def _role_word(tokens: list[str], roles: tuple[str, ...]) -> str | None:
    for token in tokens:
        role = _listed(token, roles)
        if role is not None:
            return role
    return None


def _person_display(display: str, orgs: tuple[str, ...]) -> list[str]:
    """The name words of a display name that reads as a person's, else [].

    « Sophie Martin - Mairie de Bozel » reads as the person, before the separator.
    """
    if display.count(",") != 1:  # « Martin, Paul » is one name
        display = re.split(r"\s[-–|/]\s|\(|,\s", display)[0]
    words = _words(display)
    if not words or len(words) > 4 or "@" in display or re.search(r"\d", display):
        return []
    if any(_listed(w, orgs) is not None for w in words):
        return []
    if not all(len(w) >= 2 or len(words) > 1 for w in words):
        return []
    return words


def _matches_name(tokens: list[str], local: str, name_words: list[str]) -> str | None:
    squeezed = "".join(tokens)
    for word in name_words:
        if len(word) >= 3 and (word in tokens or word in squeezed):
            return word
    if len(name_words) >= 2:
        first, last = name_words[0], name_words[-1]
        for a, b in ((first, last), (last, first)):
            if squeezed in (a[0] + b, b + a[0], a + b, b + a):
                return f"{a} {b}"
    return None


_ARTICLES = {"le", "la", "les", "de", "du", "des", "l", "d", "au", "aux"}
_PARTICLES = _ARTICLES | {"van", "von", "der", "den", "di", "da", "del", "della", "dos", "mac"}
# A household's address (« famille.martin@ », « mr.mme.durand@ », « jean.et.marie@ »,
# « famille.dupont@ ») is not one person's.
_HOUSEHOLD = re.compile(r"^(famille|family|foyer|familia)$")
_COUPLE = ({"mr", "m", "monsieur"}, {"mme", "madame", "mm"})


def _joined_particles(words: list[str]) -> list[str]:
    """« yannick le goff » -> [yannick, legoff]: a surname with its particle, as addresses
    write it."""
    out: list[str] = []
    pending = ""
    for i, word in enumerate(words):
        if i > 0 and word in _PARTICLES and i < len(words) - 1:
            pending += word
            continue
        out.append(pending + word)
        pending = ""
    return out


def _household(tokens: list[str]) -> str | None:
    for token in tokens:
        if _HOUSEHOLD.match(token):
            return token
    if set(tokens) & _COUPLE[0] and set(tokens) & _COUPLE[1]:
        return "monsieur et madame"
    if "et" in tokens[1:-1] or "and" in tokens[1:-1]:
        return "deux personnes"
    return None


def check(message: MessageView, ctx: Context) -> Finding[bool]:
    address: Address | None = message.sender_address
    if address is None:
        return finding(NAME, False, "pas d'adresse d'expéditeur lisible")
    settings = ctx.settings
    local = address.local_part.split("+")[0]
    tokens = _words(local)
    roles, organisations = _ranks(settings.role_words), _ranks(settings.organisation_words)
    name_words = [w for w in _person_display(address.display_name, settings.organisation_words)
                  if w not in roles and w not in organisations]
    shown_words = _words(address.display_name)
    household = _household(tokens)
    if household:
        return finding(NAME, False, f"adresse d'un foyer ou de plusieurs personnes "
                                    f"(« {household} » dans {address.address})")
    particled = _joined_particles(name_words)
    if (len(particled) < len(name_words) and shown_words[:1] and shown_words[0] not in _ARTICLES
            and _matches_name(tokens, local, [w for w in particled if w not in _PARTICLES])):
        name_words = particled  # « Yannick Le Goff » <yannick.legoff@>: a person's name
    elif name_words and (any(w in _ARTICLES for w in shown_words[:1]) or any(
            w in _ARTICLES - {"de", "d"} for w in shown_words[1:])):
        name_words = []  # « Le Maire de X », « SIAEP des Vallons »: not a person's name
    role = _role_word(tokens, settings.role_words)
    named = _matches_name(tokens, local, name_words) if name_words else None
    initial = (len(tokens) == 2 and len(tokens[0]) <= 2 and len(tokens[1]) >= 3
               and tokens[0] not in roles and re.match(r"^[a-z]{1,2}[._-]", local))
    shape = (len(tokens) >= 2 and all(len(t) >= 2 for t in tokens[:2]) and not role
             and not any(t in _ARTICLES for t in tokens))
    if named:
        return finding(NAME, True, f"adresse nominative : {address.address} correspond au nom "
                                   f"« {address.display_name} »")
    if role and initial:
        return finding(NAME, True, f"adresse nominative : {address.address} a la forme "
                                   "initiale.nom")
    if role:
        extra = f" (le nom affiché « {address.display_name} » n'y change rien)" \
            if address.display_name else ""
        return finding(NAME, False,
                       f"adresse de service : « {role} » dans {address.address}{extra}")
    if name_words:
        # A person's name is shown but the address does not carry it: a shared address.
        return finding(NAME, False, f"adresse de service : {address.address} ne porte pas le "
                                    f"nom affiché « {address.display_name} »")
    shown = {w for w in _words(address.display_name) if len(w) >= 3}
    if address.display_name and shown & set(tokens):
        return finding(NAME, False, f"adresse d'organisation : {address.address} reprend le nom "
                                    f"affiché « {address.display_name} »")
    if shape or initial:
        return finding(NAME, True, f"adresse nominative : {address.address} a la forme "
                                   "prénom.nom")
    if address.display_name and _words(address.display_name):
        return finding(NAME, False, f"adresse d'organisation : le nom affiché "
                                    f"« {address.display_name} » n'est pas celui d'une personne")
    if name_key(local) in ctx.communes.by_name or name_key(local) == name_key(
            address.domain.rsplit(".", 1)[0]):
        return finding(NAME, False, f"adresse d'organisation : {address.address} porte le nom de "
                                    "la commune ou du domaine")
    if not tokens:
        return finding(NAME, False, f"adresse sans nom de personne : {address.address}")
    return finding(NAME, True, f"adresse nominative : {address.address} ne contient aucun mot "
                               "de service")
