"""Extract the communes of the helpdesk departments from @etalab/decoupage-administratif.

The routing needs, for the five departments, each commune's name, INSEE code, postal codes and
SIREN, plus the SIREN of each EPCI (communauté de communes, agglomération) with its department.
The upstream package is MIT-licensed; its data come from the Code officiel géographique (INSEE).

Usage (the package tarball comes from the npm registry)::

    npm pack @etalab/decoupage-administratif
    tar xzf etalab-decoupage-administratif-*.tgz
    python scripts/build_communes.py package/data triage/data/communes.json
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

DEPARTMENTS = ("07", "26", "38", "73", "74")


def build(data_dir: Path) -> dict[str, object]:
    communes_raw = json.loads((data_dir / "communes.json").read_text("utf-8"))
    version = json.loads((data_dir.parent / "package.json").read_text("utf-8"))["version"]
    communes = []
    for c in communes_raw:
        if c.get("departement") not in DEPARTMENTS:
            continue
        communes.append(
            {
                "insee": c["code"],
                "name": c["nom"],
                "department": c["departement"],
                "kind": c["type"],
                "postal_codes": c.get("codesPostaux", []),
                "siren": c.get("siren"),
            }
        )
    epcis = []
    for e in json.loads((data_dir / "epci.json").read_text("utf-8")):
        depts = collections.Counter(m["code"][:2] for m in e["membres"])
        dept, _count = depts.most_common(1)[0]
        if dept in DEPARTMENTS:
            epcis.append({"siren": e["code"], "name": e["nom"], "department": dept})
    return {
        "source": f"npm @etalab/decoupage-administratif {version} (Code officiel géographique)",
        "licence": "MIT (Etalab); data: Licence Ouverte / Open Licence (INSEE)",
        "communes": communes,
        "epcis": epcis,
    }


def main(argv: list[str]) -> int:
    data_dir, out = Path(argv[1]), Path(argv[2])
    out.write_text(json.dumps(build(data_dir), ensure_ascii=False, separators=(",", ":")), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
