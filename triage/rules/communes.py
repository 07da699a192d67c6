"""The official list of French departments and communes, indexed for the routing rules.

``triage/data/communes.json`` covers all of France (source and licence in
``triage/data/README.md``; rebuilt by ``scripts/build_communes.py``). The rules index only the
departments the configuration names (:func:`commune_index`), so adding a department to
``config/departments.yaml`` makes its communes, postal codes and groupings of communes known
with no other change.

Names are compared in a compact form (folded, ``St``/``Ste`` expanded, every separator removed),
so « Saint Peray », « ST-PERAY » and « Saint-Péray » are the same commune.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

from triage.text import fold

_SEPARATORS = re.compile(r"[\s'’-]")
# « st » and « ste », whole words. The word boundary before is written after the « s »: re
# tries a pattern that begins with \b at every position.
_ABBREVIATION = re.compile(r"s(?<!\ws)t(e?)\b")
_NOT_IN_KEY = re.compile(r"[^a-z0-9]")
_NOT_IN_KEYS = re.compile(r"[^a-z0-9\n]")
# The ASCII characters _NOT_IN_KEYS removes, removed from an ASCII text by bytes.translate (a
# substitution pays for each of the many spaces).
_ASCII_NOT_IN_KEYS = bytes(c for c in range(128) if _NOT_IN_KEYS.match(chr(c)))


def _expanded(folded: str) -> str:
    """A folded text with its separators made spaces and « st », « ste » spelt out."""
    folded = folded.replace("-", " ").replace("'", " ")
    if "st" in folded:  # else neither abbreviation is there
        folded = _ABBREVIATION.sub(r"saint\1", folded)
    return folded


@lru_cache(maxsize=65536)
def name_key(text: str) -> str:
    return _NOT_IN_KEY.sub("", _expanded(fold(text)))


def line_keys(folded_lines: list[str]) -> list[str]:
    """``[name_key(line) for line in lines]`` given ``[fold(line) for line in lines]``, in one
    pass over them all: a line break is a separator like the others (the abbreviations are
    whole words), kept to split the keys, unless a folded line holds one."""
    text = _expanded("\n".join(folded_lines))
    kept = (text.encode("ascii").translate(None, _ASCII_NOT_IN_KEYS).decode("ascii")
            if text.isascii() else _NOT_IN_KEYS.sub("", text))
    keys = kept.split("\n")
    if len(keys) == len(folded_lines):
        return keys
    return [_NOT_IN_KEY.sub("", _expanded(line)) for line in folded_lines]


def department_of_insee(insee: str) -> str:
    """The department of an INSEE commune code: three characters overseas, else two."""
    return insee[:3] if insee.startswith("97") else insee[:2]


@dataclass(frozen=True)
class Commune:
    name: str
    department: str
    insee: str


@dataclass(frozen=True)
class Epci:
    """A grouping of communes: its compact name, the departments of its members (most members
    first) and its official name."""

    key: str
    departments: tuple[str, ...]
    name: str

    @property
    def department(self) -> str | None:
        """Its one department, or None when its members span several."""
        return self.departments[0] if len(self.departments) == 1 else None


@dataclass(frozen=True)
class CommuneIndex:
    by_name: dict[str, tuple[Commune, ...]]
    by_postal_code: dict[str, frozenset[str]]
    by_siren: dict[str, tuple[tuple[str, ...], str]]  # SIREN -> (departments, name)
    max_words: int
    epcis: tuple[Epci, ...] = ()

    @cached_property
    def key_prefixes(self) -> frozenset[str]:
        """Every beginning of a commune's key (« s », « sa », … « saintperay »): a run of words
        whose key is none of them can grow into no commune's name."""
        return frozenset(key[:n] for key in self.by_name for n in range(len(key) + 1))

    def departments_of_name(self, key: str) -> frozenset[str]:
        return frozenset(c.department for c in self.by_name.get(key, ()))


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("triage").joinpath("data/communes.json").read_text("utf-8"))
    return data


@lru_cache(maxsize=1)
def french_departments() -> dict[str, str]:
    """Every department the data knows: code -> official name (« 01 » -> « Ain »)."""
    return {code: name for code, name in _raw()["departments"]}


@lru_cache(maxsize=8)
def commune_index(codes: frozenset[str]) -> CommuneIndex:
    """The communes and groupings of the departments ``codes``, by name; postal codes and
    SIRENs of all of France (a code or SIREN of another department places the sender there,
    outside the service)."""
    by_name: dict[str, list[Commune]] = defaultdict(list)
    by_postal: dict[str, set[str]] = defaultdict(set)
    by_siren: dict[str, tuple[tuple[str, ...], str]] = {}
    max_words = 1
    for insee, name, postal_codes, siren in _raw()["communes"]:
        department = department_of_insee(insee)
        for code in postal_codes:
            by_postal[code].add(department)
        if siren:
            by_siren[siren] = ((department,), name)
        if department not in codes:
            continue
        key = name_key(name)
        if department not in {x.department for x in by_name[key]}:
            by_name[key].append(Commune(name, department, insee))
        max_words = max(max_words, len(re.split(r"[\s'-]+", name)))
    epcis = []
    for siren, name, departments in _raw()["epcis"]:
        by_siren[siren] = (tuple(departments), name)
        if not codes.intersection(departments):
            continue
        # « CA Annonay Rhône Agglo » is written « Annonay Rhône Agglo »: the kind prefix goes.
        bare = re.sub(r"^(CC|CA|CU|Métropole|Communauté (de communes|d'agglomération)( du| de la"
                      r"| des| de l'| de)?)\s+", "", name, flags=re.IGNORECASE)
        key = name_key(bare)
        if len(key) >= 8:
            epcis.append(Epci(key, tuple(departments), name))
    return CommuneIndex(
        {k: tuple(v) for k, v in by_name.items()},
        {k: frozenset(v) for k, v in by_postal.items()},
        by_siren,
        max_words,
        tuple(epcis),
    )


@lru_cache(maxsize=8)
def other_communes(codes: frozenset[str]) -> dict[str, frozenset[str]]:
    """Compact names of the communes outside ``codes`` -> their departments. Read only where a
    message says where its account was created (« compte créé à Oyonnax »)."""
    out: dict[str, set[str]] = defaultdict(set)
    for insee, name, _postal, _siren in _raw()["communes"]:
        department = department_of_insee(insee)
        # Looked up one word at a time: a name of several words could never be found.
        if department not in codes and not _SEPARATORS.search(name):
            out[name_key(name)].add(department)
    return {k: frozenset(v) for k, v in out.items()}
