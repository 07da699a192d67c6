"""The official list of communes of the helpdesk departments, indexed for the routing rules.

Loaded once from ``triage/data/communes.json`` (source and licence in ``triage/data/README.md``).
Names are compared in a compact form (folded, ``St``/``Ste`` expanded, every separator removed),
so « Saint Peray », « ST-PERAY » and « Saint-Péray » are the same commune.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from triage.text import fold

_ABBREVIATIONS = ((re.compile(r"\bste\b"), "sainte"), (re.compile(r"\bst\b"), "saint"))


@lru_cache(maxsize=65536)
def name_key(text: str) -> str:
    folded = fold(text).replace("-", " ").replace("'", " ")
    for pattern, full in _ABBREVIATIONS:
        folded = pattern.sub(full, folded)
    return re.sub(r"[^a-z0-9]", "", folded)


@dataclass(frozen=True)
class Commune:
    name: str
    department: str
    insee: str


@dataclass(frozen=True)
class CommuneIndex:
    by_name: dict[str, tuple[Commune, ...]]
    by_postal_code: dict[str, frozenset[str]]
    by_siren: dict[str, tuple[str, str]]  # SIREN -> (department, name)
    max_words: int
    epcis: tuple[tuple[str, str, str], ...] = ()  # (compact name, department, official name)

    def departments_of_name(self, key: str) -> frozenset[str]:
        return frozenset(c.department for c in self.by_name.get(key, ()))


@lru_cache(maxsize=1)
def commune_index() -> CommuneIndex:
    raw = json.loads(resources.files("triage").joinpath("data/communes.json").read_text("utf-8"))
    by_name: dict[str, list[Commune]] = defaultdict(list)
    by_postal: dict[str, set[str]] = defaultdict(set)
    by_siren: dict[str, tuple[str, str]] = {}
    max_words = 1
    for c in raw["communes"]:
        commune = Commune(c["name"], c["department"], c["insee"])
        key = name_key(c["name"])
        if commune.department not in {x.department for x in by_name[key]}:
            by_name[key].append(commune)
        max_words = max(max_words, len(re.split(r"[\s'-]+", c["name"])))
        for code in c["postal_codes"]:
            by_postal[code].add(c["department"])
        if c.get("siren"):
            by_siren[c["siren"]] = (c["department"], c["name"])
    epcis = []
    for e in raw["epcis"]:
        by_siren[e["siren"]] = (e["department"], e["name"])
        # « CA Annonay Rhône Agglo » is written « Annonay Rhône Agglo »: the kind prefix goes.
        bare = re.sub(r"^(CC|CA|CU|Métropole|Communauté (de communes|d'agglomération)( du| de la"
                      r"| des| de l'| de)?)\s+", "", e["name"], flags=re.IGNORECASE)
        key = name_key(bare)
        if len(key) >= 8:
            epcis.append((key, e["department"], e["name"]))
    return CommuneIndex(
        {k: tuple(v) for k, v in by_name.items()},
        {k: frozenset(v) for k, v in by_postal.items()},
        by_siren,
        max_words,
        tuple(epcis),
    )
