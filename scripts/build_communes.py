"""Extract the communes of all of France from @etalab/decoupage-administratif, compactly.

The routing needs, for every department, its name, and for each commune its name, INSEE code,
postal codes and SIREN, plus each EPCI (communauté de communes, agglomération…) with its SIREN
and the departments of its members. The service loads only the departments its configuration
names (``triage/rules/communes.py``), so adding a department to ``config/departments.yaml``
needs no new data. The upstream package is MIT-licensed; its data come from INSEE's Code
officiel géographique (Licence Ouverte).

Usage (the package tarball comes from the npm registry)::

    npm pack @etalab/decoupage-administratif
    tar xzf etalab-decoupage-administratif-*.tgz
    python scripts/build_communes.py package triage/data/communes.json

Format of the output (one JSON object; a commune's department is its INSEE code's prefix)::

    {"source": …, "licence": …,
     "departments": [["01", "Ain"], …],
     "communes": [["01001", "L'Abergement-Clémenciat", ["01400"], "210100012"], …],
     "epcis": [["200000172", "CC Faucigny - Glières", ["74"]], …]}
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

#: Kinds of the upstream list kept: current communes and the former ones people still write
#: (delegated, associated), and the municipal arrondissements of Paris, Lyon and Marseille.
KINDS = ("commune-actuelle", "commune-deleguee", "commune-associee", "arrondissement-municipal")


def department_of(insee: str) -> str:
    """The department of an INSEE commune code: three characters overseas, else two."""
    return insee[:3] if insee.startswith("97") else insee[:2]


def build(package: Path) -> dict[str, object]:
    data = package / "data"
    version = json.loads((package / "package.json").read_text("utf-8"))["version"]
    departments = [[d["code"], d["nom"]]
                   for d in json.loads((data / "departements.json").read_text("utf-8"))]
    communes = []
    for c in json.loads((data / "communes.json").read_text("utf-8")):
        if c.get("type") not in KINDS or department_of(c["code"]) != c.get("departement"):
            continue  # a commune whose code does not give its department is not ours to guess
        communes.append([c["code"], c["nom"], c.get("codesPostaux", []), c.get("siren")])
    epcis = []
    for e in json.loads((data / "epci.json").read_text("utf-8")):
        counts = collections.Counter(department_of(m["code"]) for m in e["membres"])
        # Most members first: a grouping is named after where most of its communes are.
        epcis.append([e["code"], e["nom"], [d for d, _n in counts.most_common()]])
    return {
        "source": f"npm @etalab/decoupage-administratif {version} (Code officiel géographique)",
        "licence": "MIT (Etalab); data: Licence Ouverte / Open Licence 2.0 (INSEE)",
        "departments": departments,
        "communes": communes,
        "epcis": epcis,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    package, out = Path(argv[1]), Path(argv[2])
    text = json.dumps(build(package), ensure_ascii=False, separators=(",", ":"))
    # One record per line: a later rebuild shows as a readable diff.
    text = text.replace(',["', ',\n["')
    out.write_text(text + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
