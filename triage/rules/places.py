"""Find statements of place in a text: department names and numbers, postal codes, SIREN/SIRET
and commune names. Each statement names a department, carries a weight and says where it was
seen. Used by :mod:`triage.rules.department`, which weighs them.

What is known comes from the configuration (the departments' codes, names and other spellings)
and from the data for all of France (:mod:`triage.rules.communes`), gathered once per
configuration in a :class:`Geography`. A postal code, a SIREN, or « compte créé par la DDFIP de
l'Ain » can name a department the service does not handle: the statement says so, and the
department rule then answers none, for an agent to redirect.

Guards against the usual false friends: phone numbers and amounts are not postal codes
(a postal code is exactly five digits, never inside a longer number, never after « CS », « BP »,
« n° »); « Haute-Savoie » is not « Savoie »; « Romans-sur-Isère » is a Drôme commune, not a
statement about the Isère; a commune name counts only where it is written as a place (after
« mairie de », beside a postal code, alone on a signature line) and capitalised.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from triage.config import Department, compile_bytes_pattern, compile_pattern
from triage.rules.communes import (
    CommuneIndex,
    Epci,
    commune_index,
    french_departments,
    line_keys,
    name_key,
    other_communes,
)
from triage.text import first_start, fold, for_re2, re2_start


@dataclass(frozen=True)
class Statement:
    department: str
    weight: int
    text: str  # French, for the agent


@dataclass(frozen=True)
class _Name:
    code: str
    name: str
    pattern: re.Pattern[str]  # the name itself, separators free (Python re, linear: a literal)
    last_word: str  # a quick test before the pattern: most texts name no department
    extra: tuple[Any, ...]  # the configured name_patterns (RE2)
    not_names: tuple[Any, ...]  # the configured not_names (RE2)


@dataclass(frozen=True, eq=False)
class Geography:
    """What the place rules know, from the configuration and the data: the configured
    departments (codes, names, other spellings), the communes of those departments, and the
    names of every other department (to recognise a statement about another DDFIP)."""

    codes: frozenset[str]
    names: dict[str, str]  # configured code -> name
    spelled: tuple[_Name, ...]
    communes: CommuneIndex
    foreign: dict[str, str]  # compact name of a department not configured -> code
    foreign_pattern: re.Pattern[str] | None
    number: re.Pattern[str]
    bare_number: re.Pattern[str]
    trailing_code: re.Pattern[str]

    @cached_property
    def epci_pattern(self) -> Any:
        """Any grouping's compact name (one search instead of one test per grouping), with RE2:
        it reads a text once whatever the number of names, where Python's re tries them at
        every position (27 ns a character)."""
        return compile_pattern("|".join(sorted({e.key for e in self.communes.epcis})))

    def epcis_in_lines(self, keys: list[str]) -> list[list[Epci]]:
        """The groupings whose compact name is in each line's compact form (``keys``)."""
        # Compact forms hold no line break: one search over them all finds whether any line
        # names a grouping (mostly none).
        if not self.communes.epcis or re2_start(self.epci_pattern,
                                                 for_re2("\n".join(keys))) < 0:
            return [[] for _ in keys]
        return [[e for e in self.communes.epcis if e.key in key] for key in keys]

    @cached_property
    def placed_epcis(self) -> dict[str, Epci]:
        """Compact name -> the first grouping of that name whose communes are all in one
        department: a sender domain is looked up, not compared with each grouping."""
        out: dict[str, Epci] = {}
        for epci in self.communes.epcis:
            if epci.department is not None:
                out.setdefault(epci.key, epci)
        return out

    def code_of(self, written: str) -> str | None:
        """A department number as written (« 7 », « 07 », « 2a ») -> its configured or known
        code, or None."""
        code = written.upper()
        if len(code) == 1:
            code = code.zfill(2)
            return code if code in self.codes else None  # « 7 » alone only for a configured 07
        return code if code in self.codes or code in self.foreign.values() else None


def _literal(name: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in re.split(r"[\s'-]+", fold(name)) if w]
    spelled = r"[\s'-]*".join(words)
    # The look-behind written after the first character (see _POSTAL): re then looks for that
    # character alone instead of trying the whole pattern at every position.
    first = re.escape(words[0][:1]) if words and words[0][:1].isalnum() else ""
    return re.compile(first + r"(?<![\w-]" + first + ")" + spelled[len(first):] + r"(?![\w-])")


@lru_cache(maxsize=8)
def geography(departments: tuple[Department, ...]) -> Geography:
    """The geography of a configuration (cached: computed once per set of departments)."""
    codes = frozenset(d.code for d in departments)
    spelled = tuple(_Name(d.code, d.name, _literal(d.name), re.split(r"[\s'-]+", fold(d.name))[-1],
                          tuple(compile_pattern(p) for p in d.name_patterns),
                          tuple(compile_pattern(p) for p in d.not_names))
                    for d in departments)
    others = {fold(name): code for code, name in french_departments().items()
              if code not in codes}
    foreign = {name_key(name): code for name, code in others.items()}
    foreign_pattern = None
    if others:
        names = "|".join(r"[\s'-]*".join(re.escape(w) for w in re.split(r"[\s'-]+", n) if w)
                         for n in sorted(others, key=len, reverse=True))
        # Only where it names a DDFIP or a department: « la DDFIP du Rhône », « département de
        # l'Ain ». A bare « Nord » or « Lot » is too often a word. The look-behinds written
        # after the first letter, as in _literal: re tries the pattern only at a « d » or « f ».
        foreign_pattern = re.compile(
            r"(d(?<![\w-]d)(?:dfip|rfip|gfip)|f(?<![\w-]f)inances publiques|"
            r"d(?<![\w-]d)(?:epartement|ept))\.?\s*"
            r"(de la |de l'|du |des |de |d'|l')?\s*(" + names + r")(?![\w-])")
    one_digit = "|".join(c[1] for c in sorted(codes) if c.startswith("0"))
    number = re.compile(  # the look-behind after the « d » (see foreign_pattern)
        r"(d(?<![\w-]d)(?:dfip|gfip|rfip|epartement|ept|pt|ep))\.?\s*(n°|no|du|de la|de l'|de)?"
        r"\s*(\d{2,3}|2a|2b" + (f"|{one_digit}" if one_digit else "") + r")(?![\d\w])")
    configured = "|".join(sorted({re.escape(c.lower()) for c in codes}
                                 | {c[1] for c in codes if c.startswith("0")}))
    return Geography(
        codes, {d.code: d.name for d in departments}, spelled, commune_index(codes), foreign,
        foreign_pattern, number,
        re.compile(r"\((" + configured + r")\)"),
        re.compile(r"(" + configured + r")$"))


_ACCOUNT_VERBS = re.compile(
    r"(cree|creee|ouvert|ouverte|rattache|rattachee|enregistre|enregistree|depend|gere|geree|"
    r"aupres)[^.!?\n]{0,60}$")
# Python's re skips ahead to where a match can begin only when the pattern begins with a
# character or a set of them: a look-behind (or re.IGNORECASE) first makes it try the whole
# pattern at every position. Hence the look-behinds written after the first character (of the
# same width plus that character) and the explicit cases of _SIRET below.
_POSTAL = re.compile(r"(\d(?<![\d.,/\w]\d)\d{4})(?![\d,]|\.\d|/\d)")  # not after [\d.,/\w]
# « 73 230 St-Alban-Leysse », « F-74000 Annecy »: only when a capitalised name follows.
_POSTAL_SPACED = re.compile(r"(?<![\d.,/\w])(?:F-)?(\d{2}) (\d{3})(?=\s+[A-ZÀ-Ý])")
# What _POSTAL_SPACED needs (« \d\d \d{3} »), found much faster: written from its space, re
# looks for that character alone and reads the digits around only there (see _POSTAL).
_SPACED_DIGITS = re.compile(r" (?<=\d\d )\d{3}")
# The words' boundaries written after their first letter (see _POSTAL): re then tries the
# pattern only at those letters, not at every position (0.9 instead of 8.7 us a search).
_NOT_POSTAL_BEFORE = re.compile(
    r"(c(?<!\wc)s|b(?<!\wb)p|t(?<!\wt)sa|n°|n(?<!\wn)o\.?|n(?<!\wn)um(ero)?|r(?<!\wr)ef\.?|"
    r"f(?<!\wf)acture|m(?<!\wm)andat|b(?<!\wb)ordereau|d(?<!\wd)ossier|t(?<!\wt)icket|"
    r"d(?<!\wd)emande|c(?<!\wc)ompte|s(?<!\ws)iret|s(?<!\ws)iren|t(?<!\wt)el\.?|f(?<!\wf)ax|\+33|€|"
    r"c(?<!\wc)ommande|b(?<!\wb)c|d(?<!\wd)evis|m(?<!\wm)arche|e(?<!\we)ngagement|e(?<!\we)j|"
    r"m(?<!\wm)andat|t(?<!\wt)itre|b(?<!\wb)on)\s*(n°|no\.?|numero)?\s*:?\s*$")
_NOT_POSTAL_AFTER = re.compile(r"^\s*(€|eur\b|euros?|ht\b|ttc|factures?|k€|m€|habitants)")
# « siret » or « siren » as re.IGNORECASE reads them (« ſ », « İ », « ı » included), at the
# beginning of a word.
_SIRET = re.compile(r"([Ssſ](?<!\w[Ssſ])[Iiİı][Rr][Ee][TtNn])\b[^\d\n]{0,40}?((?:\d[\s.]?){9,14})")
_BARE_SIRET = re.compile(  # not after a digit or a space
    r"(2(?<![\d ]2)[1-8](?:\d{12}|\d[ .]\d{3}[ .]\d{3}[ .]\d{5}))(?!\d)")
# The words after which a commune name is written as a place (« mairie de Bozel »).
_PLACE_NOUNS = ("mairie|ville|commune|ccas|cias|sivos|sivom|sivu|ehpad|hotel de ville|ecole|"
                "secretaire|secretariat|syndicat|office|residence|agent|comptable")
_PLACE_BEFORE = re.compile(
    r"(" + _PLACE_NOUNS + r")\s+(de la |de l'|de |du |des |d'|a |a la |-\s*)?$")
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# What a line must hold for a commune name outside a signature to count (see commune_names):
# a postal code (five digits) or one of _PLACE_BEFORE's words.
_DIGITS = re.compile(r"\d\d{4}")  # not \d{5}: see _POSTAL
_PLACE_WORDS = re.compile(_PLACE_NOUNS)
_ASCII_PLACE_WORDS = compile_bytes_pattern(_PLACE_NOUNS.encode("ascii"))  # words: the same


# « Val-d'Isère », « Pont-de-l'Isère », « Romans-sur-Isère », « Tournon sur Rhône »: a
# commune's name, not a statement about the department.
_IN_COMMUNE_NAME = re.compile(r"(\w-(d'|de-l'|de l'|du-|des-|de-|l'|la-|sur-|en-)|\bsur )$")


# « envoyée par erreur à la DDFIP de la Savoie »: a wrong recipient, not where the account is.
_MISDIRECTED = re.compile(r"(par erreur|envoye\w* a|transmis\w* a|ecrit a|adresse\w* a|"
                          r"copie a|cc a)[^.!?\n]{0,40}$")


def _joined(folded: str, i: int) -> bool:
    """True when position ``i`` continues a word (a name inside « Pont-de-Savoie-Est »)."""
    return 0 <= i < len(folded) and (folded[i].isalnum() or folded[i] == "-")


def _name_spans(folded: str, geo: Geography) -> list[tuple[int, int, str]]:
    """(start, end, code) of each configured department's name, a longer name winning over
    one inside it (« Haute-Savoie » over « Savoie »)."""
    found: list[tuple[int, int, str]] = []
    searched = for_re2(folded)
    for spelled in geo.spelled:
        spans = [m.span() for m in spelled.pattern.finditer(folded)] \
            if spelled.last_word in folded else []
        for extra in spelled.extra:
            if re2_start(extra, searched) < 0:
                continue  # mostly: no match, at the cost of one call
            for m in extra.finditer(searched):
                start, end = m.span()
                if start < end and not _joined(folded, start - 1) and not _joined(folded, end):
                    spans.append((start, end))
        excluded = [m.span() for p in spelled.not_names if re2_start(p, searched) >= 0
                    for m in p.finditer(searched)] if spans else []
        for start, end in spans:
            if not any(s <= start and end <= e for s, e in excluded):
                found.append((start, end, spelled.code))
    return [(s, e, c) for s, e, c in found
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _c in found)]


# A clause that says where the account was created, or where the sender worked before
# (« créé quand je travaillais à la mairie de Bozel », « anciennement à Chambéry »).
_ACCOUNT_CLAUSE = re.compile(
    r"(\b(cree|creee|ouvert|ouverte|rattache|rattachee|enregistre|enregistree|depend|gere|geree|"
    r"created|opened|registered|set up)\b|\b(when|while) i (worked|was)\b|\bpreviously\b|"
    r"\b(quand|lorsque|lorsqu'|alors que) (je|j'|j) ?(travaillais|etais|exercais|occupais)|"
    r"\banciennement\b|\bprecedemment\b|\bauparavant\b|\ba l'epoque\b|\bmon ancien(ne)? "
    r"(poste|employeur|commune|collectivite|mairie|structure)\b|\b(poste|emploi|employeur|"
    r"commune|collectivite|mairie|structure) precedent(e)?\b|\bmy (previous|former) (job|post|"
    r"employer|position)\b)")
# The same pattern read by RE2, which finds whether a text holds a clause in one pass where re
# tries it at every position: a quick test for the common case, exact since RE2 finds a match
# wherever re does (it ignores case, and its \b counts ASCII letters only as word characters:
# every boundary re sees, beside a letter of the pattern, it sees too).
_ANY_ACCOUNT_CLAUSE = compile_pattern(_ACCOUNT_CLAUSE.pattern)
_CLAUSE_SPLIT = re.compile(r"[.;!?\n]|\bmais\b|\bbut\b")
_CLAUSE_END = re.compile(r"[.;!?\n]|,|\bmais\b|\bet (je|j'|maintenant|desormais|aujourd)|"
                         r"\b(maintenant|desormais|aujourd'hui|actuellement)\b")


# Accented Latin letters and typographic marks to one plain character each (see fold).
_SAME_LENGTH = {chr(c): (fold(chr(c)) or " ")[:1]
                for c in (*range(0x80, 0x250), *range(0x2000, 0x2070))
                if fold(chr(c))[:1] != chr(c)}
# The characters of the table, found by one search: str.translate would look up every character
# of the text in a dict, several times slower on a message with a few accents.
_SAME_LENGTH_CHARS = re.compile("[" + "".join(map(re.escape, _SAME_LENGTH)) + "]")


# The characters of the table French mail holds most, replaced first by str.replace (one fast
# scan each, where the substitution calls back into Python for each of the many « é »): only
# those made ASCII, so that none is replaced twice.
_FRENCH = tuple((ch, _SAME_LENGTH[ch]) for ch in "éàèçêâôîûùëïüÉÀÈÊÇ«»’‘–—\xa0œ"
                if _SAME_LENGTH[ch].isascii())


def _same_length_fold(text: str) -> str:
    """``text`` lower-cased, each character of the table replaced by its plain one."""
    if not text.isascii():
        for accented, plain in _FRENCH:
            text = text.replace(accented, plain)
        if not text.isascii():
            text = _SAME_LENGTH_CHARS.sub(lambda m: _SAME_LENGTH[m.group()], text)
    return text.lower()


def account_places(text: str, geo: Geography, where: str) -> list[Statement]:
    """Communes and postal codes in a clause about where the account was created (or where
    the sender worked before): they outweigh where the sender works now."""
    # Folded keeping every character in place, so that offsets in the folded text are offsets
    # in ``text`` (commune names are then read with their capitals).
    folded = _same_length_fold(text)
    if len(folded) != len(text):  # a rare letter whose lower case is longer
        folded = "".join((fold(ch) or " ")[:1] for ch in text)
    out = []
    searched = for_re2(folded)
    hint = re2_start(_ANY_ACCOUNT_CLAUSE, searched)  # mostly -1: no clause, at one search's cost
    # The clauses _ACCOUNT_CLAUSE.finditer would find: re searches from where RE2 found the next
    # one, since it finds none before (RE2 matches wherever re does), instead of trying its
    # pattern at every position in between.
    while hint >= 0 and (match := _ACCOUNT_CLAUSE.search(folded, hint)):
        hint = re2_start(_ANY_ACCOUNT_CLAUSE, searched, match.end())
        end = _CLAUSE_END.search(folded, match.end())
        clause = text[match.start():end.start() if end else len(text)]
        found = postal_codes(clause, geo, 3, where) + commune_names(clause, geo, where, False)
        found += _other_places(clause, geo, where)
        for s in found:
            out.append(Statement(s.department, s.weight + 6,
                                 f"{s.text}, là où le compte a été créé"))
    return out


# The word boundary is written after the first letter (see _POSTAL): a pattern that begins
# with \b is tried at every position.
_PLACED_NAME = re.compile(
    r"(?:M(?<!\wM)(?:airie|AIRIE)|m(?<!\wm)airie|V(?<!\wV)(?:ille|ILLE)|v(?<!\wv)ille|"
    r"C(?<!\wC)(?:ommune|OMMUNE|CAS)|c(?<!\wc)ommune|"
    r"H(?<!\wH)ôtel de [Vv]ille|h(?<!\wh)ôtel de [Vv]ille)"
    r"\s+(de\s+|d['’]|du\s+|des\s+)?([A-ZÀ-Ý][^\W\d_]+(?:['’][^\W\d_]+)?)"
    # the whole name: the line, a separator or a postal code follows (« Vals les Bains » is not
    # « Vals »)
    r"(?=[ \t]*($|[,(|]|[–-][ \t]|\d{5}))", re.MULTILINE)


def other_placed_communes(text: str, geo: Geography, where: str) -> list[Statement]:
    """« Mairie de Givors »: a commune outside the service, named as the sender's place and
    known in one department only (one word: a name of several is not looked up)."""
    out = []
    for match in _PLACED_NAME.finditer(text):
        key = name_key(match.group(2))
        article = _ARTICLE_OF.get((match.group(1) or "").strip())
        if len(key) < 4 or key in geo.communes.by_name or (
                article and article + key in geo.communes.by_name):
            continue  # ours (« Mairie des Clefs » is Les Clefs)
        depts = other_communes(geo.codes).get(key, frozenset())
        if len(depts) == 1:
            code = next(iter(depts))
            out.append(Statement(code, 3, f"département {code} : commune de {match.group(2)} "
                                          f"dans {where}{_outside(code, geo)}"))
    return out


def _other_places(clause: str, geo: Geography, where: str) -> list[Statement]:
    """Communes and department names outside the service in an account clause, written with a
    capital (« créé à Oyonnax », « created in the Ain »)."""
    out = []
    others = other_communes(geo.codes)
    for match in _TOKEN.finditer(clause):
        if not match.group(0)[:1].isupper():
            continue
        key = name_key(match.group(0))
        code = geo.foreign.get(key)
        if code is not None:
            out.append(Statement(code, 3, f"département {code} : « {match.group(0)} » dans "
                                          f"{where}{_outside(code, geo)}"))
            continue
        depts = others.get(key, frozenset())
        if len(depts) == 1 and len(key) >= 4 and key not in geo.communes.by_name:
            code = next(iter(depts))
            out.append(Statement(code, 2, f"département {code} : commune de {match.group(0)} "
                                          f"dans {where}{_outside(code, geo)}"))
    return out


_OFFICE = re.compile(r"ddfip|dgfip|drfip|dep|dpt|finances publiques")
_ASCII_OFFICE = compile_bytes_pattern(_OFFICE.pattern.encode("ascii"))  # words: the same


def _holds(pattern: re.Pattern[str], ascii_pattern: Any, text: str) -> bool:
    """Whether ``pattern`` is in ``text``; searched by ``ascii_pattern``, the same pattern
    compiled by RE2 for bytes, when the text is ASCII and long enough for RE2's reading, several
    times faster, to make up for its dearer call."""
    if len(text) > 100 and text.isascii():
        return first_start(ascii_pattern, text.encode("ascii"), 0) >= 0
    return pattern.search(text) is not None


def department_names(text: str, geo: Geography, weight: int, where: str) -> list[Statement]:
    return _department_names(fold(text), geo, weight, where)


@dataclass(frozen=True)
class Lines:
    """A text's lines folded, and the groupings of communes each names."""

    folded: list[str]
    epcis: list[list[Epci]]


def read_lines(text: str, geo: Geography, folded: str | None = None) -> Lines:
    """The :class:`Lines` of ``text``; ``folded`` is ``fold(text)`` when the caller has it."""
    lines = folded_lines(text, text.splitlines(), folded)
    return Lines(lines, geo.epcis_in_lines(line_keys(lines)))


def department_names_outside_epcis(text: str, geo: Geography, weight: int, where: str,
                                   lines: Lines | None = None) -> list[Statement]:
    """:func:`department_names` in ``text`` with the lines naming a grouping blanked, so that
    « … Terre de Savoie » is not read as 73. ``lines`` is ``read_lines(text, geo)`` when the
    caller has it."""
    if lines is None:
        lines = read_lines(text, geo)
    return _department_names("\n".join(" " if epcis else folded_line for folded_line, epcis
                                        in zip(lines.folded, lines.epcis, strict=True)),
                             geo, weight, where)


def folded_lines(text: str, lines: list[str], folded: str | None = None) -> list[str]:
    """``[fold(line) for line in lines]``, ``lines`` being ``text.splitlines()``, from one fold
    of the whole text (``folded``, when the caller has it): fold keeps every line break and
    folds each line alone (checked for every code point), so the lines of the folded text are
    the folded lines, unless the last folds to nothing (a lone combining mark after « \\x0b »)
    and is dropped."""
    out = (fold(text) if folded is None else folded).splitlines()
    return out if len(out) == len(lines) else [fold(line) for line in lines]


def _department_names(folded: str, geo: Geography, weight: int, where: str
                      ) -> list[Statement]:
    out = []
    for start, _end, code in sorted(set(_name_spans(folded, geo))):
        before = folded[max(0, start - 80):start]
        if _IN_COMMUNE_NAME.search(before[-12:]):
            continue  # Val-d'Isère, Pont-de-l'Isère: a commune's name, not a statement
        if _MISDIRECTED.search(before):
            continue
        # « créé par la DDFIP de l'Ain, mais j'habite en Haute-Savoie »: the verb must be in
        # the name's own clause.
        account = bool(_ACCOUNT_VERBS.search(_CLAUSE_SPLIT.split(before)[-1]))
        out.append(Statement(code, weight + (6 if account else 0),
                             f"département {code} : « {geo.names[code]} » cité dans {where}"
                             + (" comme département du compte" if account else "")))
    for match in geo.bare_number.finditer(folded):
        code = match.group(1).zfill(2).upper()
        out.append(Statement(code, weight - 1,
                             f"département {code} : « {match.group(0)} » dans {where}"))
    if not _holds(_OFFICE, _ASCII_OFFICE, folded):
        return out  # neither « DDFIP », « département » nor « dept »: no number, no other DDFIP
    for match in geo.number.finditer(folded):
        number = geo.code_of(match.group(3))
        if number is None:
            continue
        before = folded[max(0, match.start() - 80):match.start()]
        account = bool(_ACCOUNT_VERBS.search(_CLAUSE_SPLIT.split(before)[-1]))
        if _MISDIRECTED.search(before) or (number not in geo.codes and not account):
            continue
        out.append(Statement(number, weight + (6 if account else 0),
                             f"département {number} : « {match.group(0).strip()} » dans {where}"
                             + ("" if number in geo.codes else
                                ", un département que le service ne gère pas")))
    if geo.foreign_pattern is not None:
        for match in geo.foreign_pattern.finditer(folded):
            other = geo.foreign.get(name_key(match.group(3)))
            before = folded[max(0, match.start() - 80):match.start()]
            # Only a statement about the account counts: « j'ai appelé la DDFIP du Rhône qui
            # m'a dit de vous écrire » says nothing about where it was created.
            if other is None or _MISDIRECTED.search(before) or not _ACCOUNT_VERBS.search(
                    _CLAUSE_SPLIT.split(before)[-1]):
                continue
            out.append(Statement(other, weight + 6,
                                 f"département {other} : « {match.group(0).strip()} » dans "
                                 f"{where}, un département que le service ne gère pas"))
    return out


def _outside(code: str, geo: Geography) -> str:
    return "" if code in geo.codes else ", un département que le service ne gère pas"


def postal_codes(text: str, geo: Geography, weight: int, where: str) -> list[Statement]:
    out = []
    found = [(m, m.group(1)) for m in _POSTAL.finditer(text)]
    if _SPACED_DIGITS.search(text):
        found += [(m, m.group(1) + m.group(2)) for m in _POSTAL_SPACED.finditer(text)]
    for match, code in found:
        before = fold(text[max(0, match.start() - 14):match.start()])
        after = fold(text[match.end():match.end() + 12])
        if _NOT_POSTAL_BEFORE.search(before) or _NOT_POSTAL_AFTER.match(after):
            continue
        depts = geo.communes.by_postal_code.get(code)
        prefix = code[:3] if code.startswith("97") else code[:2]
        ours = depts & geo.codes if depts else frozenset()
        if len(ours) == 1:
            dept = next(iter(ours))
        elif depts and len(depts) == 1 and not ours:
            dept = next(iter(depts))  # another department's: the sender is outside the service
        elif depts is None and (prefix in geo.codes or prefix in geo.foreign.values()):
            dept = prefix  # a CEDEX code: its first digits are its department
        else:
            continue
        out.append(Statement(dept, weight, f"département {dept} : code postal {code} dans {where}"
                                           + _outside(dept, geo)))
    return out


def sirets(text: str, geo: Geography, where: str) -> list[Statement]:
    out = []
    numbers = [re.sub(r"\D", "", m.group(2)) for m in _SIRET.finditer(text)]
    numbers += [re.sub(r"\D", "", m.group(1)) for m in _BARE_SIRET.finditer(text)]
    for digits in dict.fromkeys(numbers):
        if len(digits) not in (9, 14):
            continue
        siren = digits[:9]
        known = geo.communes.by_siren.get(siren)
        if known:
            depts, name = known
            if len(depts) == 1:
                out.append(Statement(depts[0], 5, f"département {depts[0]} : SIREN {siren} "
                                                  f"({name}) dans {where}"
                                                  + _outside(depts[0], geo)))
        elif siren[0] == "2" and siren[1] in "12345678" and (
                siren[2:4] in geo.codes or siren[2:4] in geo.foreign.values()):
            # A public body's SIREN carries its department: 21 + 38… is a commune of the Isère.
            dept = siren[2:4]
            out.append(Statement(dept, 4, f"département {dept} : SIREN {siren} d'une collectivité "
                                          f"du {dept} dans {where}{_outside(dept, geo)}"))
    return out


def commune_names(text: str, geo: Geography, where: str, signature: bool,
                  folded: list[str] | None = None) -> list[Statement]:
    """Commune names written as places; in a signature, also alone or beside a separator.
    ``folded`` is ``read_lines(text, geo).folded`` when the caller has it."""
    communes = geo.communes
    starts, names = communes.key_prefixes, communes.by_name
    out = []
    lines = text.splitlines()
    if not signature:  # outside a signature a name counts only placed or by a postal code
        kept = (_lines_holding(_DIGITS, lines)
                | _lines_holding(_PLACE_WORDS, folded_lines(text, lines) if folded is None
                                 else folded, _ASCII_PLACE_WORDS))
        lines = [lines[i] for i in sorted(kept)]
    for line in lines:
        tokens = list(_TOKEN.finditer(line))
        # A span's key is its tokens' keys joined.
        keys = list(map(name_key, map(_WHOLE, tokens)))
        last = len(keys) - 1
        # The words a name can begin with: most words begin no commune's key, nor « le »/« les »
        # + the key after « du », « des », « au », « aux » (which is then the end of the word
        # before: see _article_before; _longest_commune would return None at its first step).
        # Of the words that begin one (« de », « la »), most are neither a name (of three
        # letters or more) nor begin one with the next word: _longest_commune would find
        # nothing either (every beginning of a name's key is in ``starts``).
        begins = [i for i, key in enumerate(keys) if (key in starts and (
            (key in names and len(key) >= 3) or (i < last and key + keys[i + 1] in starts))) or (
            i and keys[i - 1].endswith(_ARTICLE_ENDINGS)
            and (article := _article_before(line, tokens[i].start())) and article + key in starts)]
        end = 0  # the token after the last name found: none begins inside it
        for i in begins:
            if i < end or (tokens[i].start() > 0 and line[tokens[i].start() - 1] in "-'’"):
                continue  # never start a name in the middle of « Pont-de-Beauvoisin »
            hit = _longest_commune(line, tokens, keys, i, communes)
            if hit is None:
                continue
            j, key = hit
            start, end = tokens[i].start(), tokens[j - 1].end()
            name = line[start:end]
            before = fold(line[:start])
            after = line[end:].strip()
            placed = bool(_PLACE_BEFORE.search(before))
            postal_near = bool(_POSTAL_AFTER_NAME.match(after)
                               or _POSTAL_BEFORE_NAME.search(line, 0, start))
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
            end = j
    return out


def _lines_holding(pattern: re.Pattern[str], lines: list[str], ascii_pattern: Any = None
                   ) -> set[int]:
    """The indexes of the ``lines`` where ``pattern`` (which never matches a line break) is
    found: one search over them all, then one per line found, where a search per line pays its
    call for each of the many lines that hold nothing. ``ascii_pattern`` is the same pattern
    compiled by RE2 for bytes (compile_bytes_pattern), searched instead when the lines are
    ASCII: it reads them several times faster."""
    joined: Any = "\n".join(lines)
    newline: Any = "\n"
    if ascii_pattern is not None and joined.isascii():
        joined, newline, pattern = joined.encode("ascii"), b"\n", ascii_pattern
    found = set()
    index, start = 0, 0  # the line at ``start``
    while (at := re2_start(pattern, joined, start)) >= 0:
        index += joined.count(newline, start, at)
        found.add(index)
        start = joined.find(newline, at) + 1  # the match holds no line break
        if not start:
            break
        index += 1
    return found


_WHOLE = operator.itemgetter(0)  # a match's text
# A postal code beside a name: after it, or before it at the end of the text before it.
_POSTAL_AFTER_NAME = re.compile(r"^[\s,(-–]*\d{5}")
_POSTAL_BEFORE_NAME = re.compile(r"\d{5}\s*[-–,]?\s*$")


# Commune names that are also ordinary words: read only when written with a capital.
_COMMON_WORDS = {"montagne", "plan", "bonne", "vif", "rives", "sales", "marches", "fontaine",
                 "chatte", "allan", "corps", "mens", "die", "bourg", "pont", "ville", "vienne",
                 "crest", "allex", "hostun", "lens", "saint", "mont", "val", "serre", "bois",
                 "rochefort", "treffort", "champ", "moutiers", "ecole", "villard"}


_ARTICLE_OF = {"du": "le", "des": "les", "au": "le", "aux": "les"}
_ARTICLE_ENDINGS = tuple(_ARTICLE_OF)


def _article_before(line: str, start: int) -> str:
    """« le » or « les » when the word before ``start`` is « du », « des », « au », « aux »
    (« Mairie du Pont-de-Beauvoisin » is « Le Pont-de-Beauvoisin »), else "".

    That word is read in the five characters before ``start``, where it may be cut: its
    letters, lower-cased, are the last ones of the word before ``start`` (spaces come between:
    a word never begins right after a letter), and they stay last in its key."""
    before = line[max(0, start - 5):start].lower().split()
    return _ARTICLE_OF.get(before[-1], "") if before else ""
_NOT_IN_NAME = re.compile(r"[^\w\s'’-]")


def _longest_commune(line: str, tokens: list[re.Match[str]], keys: list[str], i: int,
                     communes: CommuneIndex) -> tuple[int, str] | None:
    """The longest run of tokens from ``i`` that names a commune: (end token, key), or None.

    Runs grow one token at a time and stop as soon as no commune's key starts with the run's
    (most tokens start none: one set lookup each), or a character that is not in a place name
    comes between two tokens (then every longer run holds it too)."""
    article = _article_before(line, tokens[i].start())
    prefixes = ("", article) if article else ("",)
    starts = communes.key_prefixes
    found: tuple[int, str] | None = None
    joined = ""
    for j in range(i + 1, min(len(tokens), i + communes.max_words) + 1):
        if j - i > 1 and _NOT_IN_NAME.search(line, tokens[i].start(), tokens[j - 1].end()):
            break  # a place name is words, dashes and apostrophes
        joined += keys[j - 1]
        grows, hit = False, None
        for prefix in prefixes:
            key = prefix + joined
            if key in starts:  # every key is its own beginning
                grows = True
                if hit is None and len(key) >= 3 and key in communes.by_name:
                    hit = key
        if hit is not None:
            found = (j, hit)
        if not grows:
            break
    return found


_FREEMAIL = {"gmail", "googlemail", "orange", "wanadoo", "free", "laposte", "hotmail", "yahoo",
             "outlook", "live", "msn", "sfr", "neuf", "bbox", "icloud", "me", "aol", "gmx",
             "protonmail", "proton", "yopmail", "numericable", "club-internet", "aliceadsl"}
_DOMAIN_PREFIX = re.compile(r"^(mairiede|villede|communede|mairie|ville|commune|ccas|cias)[-.]?")


def domain_commune(domain: str, geo: Geography) -> list[Statement]:
    """A sender domain that names a commune (``mairie-bozel.fr``, ``saint-agreve.fr``)."""
    communes = geo.communes
    labels = domain.lower().split(".")
    if len(labels) < 2 or labels[-2] in _FREEMAIL:
        return []
    label = geo.trailing_code.sub("", labels[-2]) or labels[-2]
    for stem in dict.fromkeys((label, _DOMAIN_PREFIX.sub("", label))):
        key = name_key(stem)
        depts = communes.departments_of_name(key)
        if len(key) >= 4 and len(depts) == 1:
            dept = next(iter(depts))
            name = communes.by_name[key][0].name
            return [Statement(dept, 2, f"département {dept} : le domaine {domain} désigne la "
                                       f"commune de {name}")]
    epci = geo.placed_epcis.get(name_key(label))
    if epci is not None and epci.department is not None:
        return [Statement(epci.department, 2, f"département {epci.department} : le domaine "
                                              f"{domain} désigne {epci.name}")]
    return []


def epci_names(text: str, geo: Geography, where: str,
               by_line: list[list[Epci]] | None = None) -> list[Statement]:
    """Names of groupings of communes (« Annonay Rhône Agglo », « Rumilly Terre de Savoie »).
    ``by_line`` is ``read_lines(text, geo).epcis`` when the caller has it.

    A grouping whose communes span several departments says nothing about which one."""
    out = []
    for epcis in read_lines(text, geo).epcis if by_line is None else by_line:
        for epci in epcis:
            if epci.department is not None:
                out.append(Statement(epci.department, 3,
                                     f"département {epci.department} : {epci.name} dans {where}"))
    return out
