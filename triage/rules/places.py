"""Find statements of place in a text: department names and numbers, postal codes, SIREN/SIRET
and commune names. Each statement names a department, carries a weight and says where it was
seen. Used by :mod:`triage.rules.department`, which weighs them.

Guards against the usual false friends: phone numbers and amounts are not postal codes
(a postal code is exactly five digits, never inside a longer number, never after « CS », « BP »,
« n° »); « Haute-Savoie » is not « Savoie »; « Romans-sur-Isère » is a Drôme commune, not a
statement about the Isère; a commune name counts only where it is written as a place (after
« mairie de », beside a postal code, alone on a signature line) and capitalised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.rules.communes import CommuneIndex, name_key
from triage.text import fold

DEPARTMENT_CODES = ("07", "26", "38", "73", "74")


@dataclass(frozen=True)
class Statement:
    department: str
    weight: int
    text: str  # French, for the agent


_DEPT_NAMES = (
    ("74", re.compile(r"(?<![\w-])(haute|hte|h\.?)[\s-]*savoie(?![\w-])")),
    ("73", re.compile(r"(?<![\w-])(?<!haute )(?<!haute-)(?<!hte )(?<!hte-)(?<!h\. )(?<!h\.)"
                      r"savoie(?![\w-])(?! mont[\s-]blanc)")),
    ("38", re.compile(r"(?<![\w-])(?<!sur )isere(?![\w-])")),
    ("26", re.compile(r"(?<![\w-])(?<!sur )drome(?![\w-])")),
    ("07", re.compile(r"(?<![\w-])(?<!sur )ardeche(?![\w-])")),
)
_NAMES = {"07": "Ardèche", "26": "Drôme", "38": "Isère", "73": "Savoie", "74": "Haute-Savoie"}
_DEPT_NUMBER = re.compile(
    r"(?<![\w-])(ddfip|dgfip|departement|dept|dpt|dep)\.?\s*(n°|no|du|de la|de l'|de)?\s*"
    r"(0?7|26|38|73|74)(?!\d)")
_ACCOUNT_VERBS = re.compile(
    r"(cree|creee|ouvert|ouverte|rattache|rattachee|enregistre|enregistree|depend|gere|geree|"
    r"aupres)[^.!?\n]{0,60}$")
_POSTAL = re.compile(r"(?<![\d.,/\w])(\d{5})(?![\d,]|\.\d|/\d)")
# « 73 230 St-Alban-Leysse », « F-74000 Annecy »: only when a capitalised name follows.
_POSTAL_SPACED = re.compile(r"(?<![\d.,/\w])(?:F-)?(\d{2}) (\d{3})(?=\s+[A-ZÀ-Ý])")
_NOT_POSTAL_BEFORE = re.compile(
    r"(\bcs|\bbp|\btsa|n°|\bno\.?|\bnum(ero)?|\bref\.?|\bfacture|\bmandat|\bbordereau|\bdossier|"
    r"\bticket|\bdemande|\bcompte|\bsiret|\bsiren|\btel\.?|\bfax|\+33|€|\bcommande|\bbc|"
    r"\bdevis|\bmarche|\bengagement|\bej|\bmandat|\btitre|\bbon)\s*(n°|no\.?|numero)?\s*:?\s*$")
_NOT_POSTAL_AFTER = re.compile(r"^\s*(€|eur\b|euros?|ht\b|ttc|factures?|k€|m€|habitants)")
_SIRET = re.compile(r"\b(siret|siren)\b[^\d\n]{0,40}?((?:\d[\s.]?){9,14})", re.IGNORECASE)
_BARE_SIRET = re.compile(r"(?<![\d ])(2[1-8]\d{12}|2[1-8]\d[ .]\d{3}[ .]\d{3}[ .]\d{5})(?!\d)")
_PLACE_BEFORE = re.compile(
    r"(mairie|ville|commune|ccas|cias|sivos|sivom|sivu|ehpad|hotel de ville|ecole|secretaire|"
    r"secretariat|syndicat|office|residence|agent|comptable)\s+"
    r"(de la |de l'|de |du |des |d'|a |a la |-\s*)?$")
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)


_IN_COMMUNE_NAME = re.compile(r"\w-(d'|de-l'|de l'|du-|des-|de-|l'|la-|sur-)$")
_BARE_NUMBER = re.compile(r"\((0?7|26|38|73|74)\)")


# « envoyée par erreur à la DDFIP de la Savoie »: a wrong recipient, not where the account is.
_MISDIRECTED = re.compile(r"(par erreur|envoye\w* a|transmis\w* a|ecrit a|adresse\w* a|"
                          r"copie a|cc a)[^.!?\n]{0,40}$")


def department_names(text: str, weight: int, where: str) -> list[Statement]:
    folded = fold(text)
    out = []
    for code, pattern in _DEPT_NAMES:
        for match in pattern.finditer(folded):
            before = folded[max(0, match.start() - 80):match.start()]
            if _IN_COMMUNE_NAME.search(before[-12:]):
                continue  # Val-d'Isère, Pont-de-l'Isère: a commune's name, not a statement
            if _MISDIRECTED.search(before):
                continue
            account = bool(_ACCOUNT_VERBS.search(before))
            out.append(Statement(code, weight + (6 if account else 0),
                                 f"département {code} : « {_NAMES[code]} » cité dans {where}"
                                 + (" comme département du compte" if account else "")))
    for match in _DEPT_NUMBER.finditer(folded):
        code = match.group(3).zfill(2)
        before = folded[max(0, match.start() - 80):match.start()]
        account = bool(_ACCOUNT_VERBS.search(before))
        out.append(Statement(code, weight + (6 if account else 0),
                             f"département {code} : « {match.group(0).strip()} » dans {where}"))
    for match in _BARE_NUMBER.finditer(folded):
        code = match.group(1).zfill(2)
        out.append(Statement(code, weight - 1,
                             f"département {code} : « {match.group(0)} » dans {where}"))
    return out


def postal_codes(text: str, communes: CommuneIndex, weight: int, where: str) -> list[Statement]:
    out = []
    found = [(m, m.group(1)) for m in _POSTAL.finditer(text)]
    found += [(m, m.group(1) + m.group(2)) for m in _POSTAL_SPACED.finditer(text)]
    for match, code in found:
        before = fold(text[max(0, match.start() - 14):match.start()])
        after = fold(text[match.end():match.end() + 12])
        if _NOT_POSTAL_BEFORE.search(before) or _NOT_POSTAL_AFTER.match(after):
            continue
        depts = communes.by_postal_code.get(code)
        if depts and len(depts) == 1:
            dept = next(iter(depts))
        elif code[:2] in DEPARTMENT_CODES and (depts is None or code[:2] in depts):
            dept = code[:2]
        else:
            continue  # another department's code: not a statement about ours
        out.append(Statement(dept, weight, f"département {dept} : code postal {code} dans {where}"))
    return out


def sirets(text: str, communes: CommuneIndex, where: str) -> list[Statement]:
    out = []
    numbers = [re.sub(r"\D", "", m.group(2)) for m in _SIRET.finditer(text)]
    numbers += [re.sub(r"\D", "", m.group(1)) for m in _BARE_SIRET.finditer(text)]
    for digits in dict.fromkeys(numbers):
        if len(digits) not in (9, 14):
            continue
        siren = digits[:9]
        known = communes.by_siren.get(siren)
        if known:
            dept, name = known
            out.append(Statement(dept, 5,
                                 f"département {dept} : SIREN {siren} ({name}) dans {where}"))
        elif siren[0] == "2" and siren[1] in "12345678" and siren[2:4] in DEPARTMENT_CODES:
            dept = siren[2:4]
            out.append(Statement(dept, 4, f"département {dept} : SIREN {siren} d'une collectivité "
                                          f"du {dept} dans {where}"))
    return out


def commune_names(text: str, communes: CommuneIndex, where: str, signature: bool
                  ) -> list[Statement]:
    """Commune names written as places; in a signature, also alone or beside a separator."""
    out = []
    for line in text.splitlines():
        tokens = list(_TOKEN.finditer(line))
        keys = [name_key(t.group(0)) for t in tokens]  # a span's key is its tokens' keys joined
        i = 0
        while i < len(tokens):
            if tokens[i].start() > 0 and line[tokens[i].start() - 1] in "-'’":
                i += 1  # never start a name in the middle of « Pont-de-Beauvoisin »
                continue
            hit = _longest_commune(line, tokens, keys, i, communes)
            if hit is None:
                i += 1
                continue
            j, key = hit
            start, end = tokens[i].start(), tokens[j - 1].end()
            name = line[start:end]
            before = fold(line[:start])
            after = line[end:].strip()
            placed = bool(_PLACE_BEFORE.search(before))
            postal_near = bool(re.match(r"^[\s,(-–]*\d{5}", after)
                               or re.search(r"\d{5}\s*[-–,]?\s*$", line[:start]))
            alone = signature and (not before.strip() or before.rstrip().endswith(("-", ",", "|"))
                                   ) and (not after or after[0] in "-–,(|")
            capitalised = name[:1].isupper()
            depts = communes.departments_of_name(key)
            lowercase_ok = placed and key not in _COMMON_WORDS
            readable = capitalised or lowercase_ok
            if (placed or postal_near or alone) and readable and len(depts) == 1:
                dept = next(iter(depts))
                official = communes.by_name[key][0].name
                out.append(Statement(dept, 3 if (placed or postal_near) else 2,
                                     f"département {dept} : commune de {official} dans {where}"))
            i = j
    return out


# Commune names that are also ordinary words: read only when written with a capital.
_COMMON_WORDS = {"montagne", "plan", "bonne", "vif", "rives", "sales", "marches", "fontaine",
                 "chatte", "allan", "corps", "mens", "die", "bourg", "pont", "ville", "vienne",
                 "crest", "allex", "hostun", "lens", "saint", "mont", "val", "serre", "bois",
                 "rochefort", "treffort", "champ", "moutiers", "ecole", "villard"}


_ARTICLE_OF = {"du": "le", "des": "les", "au": "le", "aux": "les"}
_NOT_IN_NAME = re.compile(r"[^\w\s'’-]")


def _longest_commune(line: str, tokens: list[re.Match[str]], keys: list[str], i: int,
                     communes: CommuneIndex) -> tuple[int, str] | None:
    before = line[max(0, tokens[i].start() - 5):tokens[i].start()].lower().split()
    # « Mairie du Pont-de-Beauvoisin » is « Le Pont-de-Beauvoisin »
    prefixes = ("", _ARTICLE_OF[before[-1]]) if before and before[-1] in _ARTICLE_OF else ("",)
    for j in range(min(len(tokens), i + communes.max_words), i, -1):
        if j - i > 1 and _NOT_IN_NAME.search(line, tokens[i].start(), tokens[j - 1].end()):
            continue  # a place name is words, dashes and apostrophes
        joined = "".join(keys[i:j])
        for prefix in prefixes:
            key = prefix + joined
            if len(key) >= 3 and key in communes.by_name:
                return j, key
    return None


_FREEMAIL = {"gmail", "googlemail", "orange", "wanadoo", "free", "laposte", "hotmail", "yahoo",
             "outlook", "live", "msn", "sfr", "neuf", "bbox", "icloud", "me", "aol", "gmx",
             "protonmail", "proton", "yopmail", "numericable", "club-internet", "aliceadsl"}
_DOMAIN_PREFIX = re.compile(r"^(mairiede|villede|communede|mairie|ville|commune|ccas|cias)[-.]?")


def domain_commune(domain: str, communes: CommuneIndex) -> list[Statement]:
    """A sender domain that names a commune (``mairie-bozel.fr``, ``saint-agreve.fr``)."""
    labels = domain.lower().split(".")
    if len(labels) < 2 or labels[-2] in _FREEMAIL:
        return []
    label = re.sub(r"(0?7|26|38|73|74)$", "", labels[-2]) or labels[-2]
    for stem in dict.fromkeys((label, _DOMAIN_PREFIX.sub("", label))):
        key = name_key(stem)
        depts = communes.departments_of_name(key)
        if len(key) >= 4 and len(depts) == 1:
            dept = next(iter(depts))
            name = communes.by_name[key][0].name
            return [Statement(dept, 2, f"département {dept} : le domaine {domain} désigne la "
                                       f"commune de {name}")]
    key = name_key(label)
    for epci_key, dept, name in communes.epcis:
        if key == epci_key:
            return [Statement(dept, 2, f"département {dept} : le domaine {domain} désigne "
                                       f"{name}")]
    return []


def epci_names(text: str, communes: CommuneIndex, where: str) -> list[Statement]:
    """Names of groupings of communes (« Annonay Rhône Agglo », « Rumilly Terre de Savoie »)."""
    out = []
    for line in text.splitlines():
        key = name_key(line)
        for epci_key, dept, name in communes.epcis:
            if epci_key in key:
                out.append(Statement(dept, 3, f"département {dept} : {name} dans {where}"))
    return out


def mask_epci_names(text: str, communes: CommuneIndex) -> str:
    """``text`` with grouping names blanked, so « … Terre de Savoie » is not read as 73."""
    out = []
    for line in text.splitlines():
        key = name_key(line)
        if any(epci_key in key for epci_key, _d, _n in communes.epcis):
            line = " "
        out.append(line)
    return "\n".join(out)
