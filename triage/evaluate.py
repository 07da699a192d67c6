"""``triage eval``: compare decisions with a labelled folder (``labels.tsv`` beside the mail).

Columns: ``file action template intent department nominative identifier note``; ``-`` means
"not judged". A message is correct when every judged field is right.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triage.config import Settings
from triage.errors import SourceError
from triage.pipeline import triage_bytes

FIELDS = ("action", "template", "intent", "department", "nominative", "identifier")


def label_value(decision: dict[str, Any], name: str) -> str:
    """A decision field written as labels.tsv writes it."""
    value = decision[name]
    if name == "nominative":
        return "yes" if value else "no"
    return "none" if value is None else str(value)


@dataclass
class Report:
    total: int = 0
    correct: int = 0
    field_right: Counter[str] = field(default_factory=Counter)
    field_judged: Counter[str] = field(default_factory=Counter)
    confusion: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    wrong: list[tuple[str, list[str], str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def lines(self) -> list[str]:
        out = [f"messages: {self.total}  all judged fields right: {self.correct} "
               f"({self.accuracy:.1%})", "", "field accuracy:"]
        for name in FIELDS:
            judged = self.field_judged[name]
            if judged:
                out.append(f"  {name:<11} {self.field_right[name]:>4}/{judged:<4} "
                           f"{self.field_right[name] / judged:.1%}")
        actions = ("ignore", "quarantine", "human", "draft")
        out += ["", "actions (rows: expected, columns: decided):",
                "  " + " " * 11 + "".join(f"{a:>11}" for a in actions)]
        for exp in actions:
            out.append(f"  {exp:<11}" + "".join(f"{self.confusion[exp][a]:>11}" for a in actions))
        if self.wrong:
            out += ["", "wrong:"]
            for name, diffs, note in self.wrong:
                out.append(f"  {name}: {'; '.join(diffs)}" + (f"  [{note}]" if note else ""))
        return out


def evaluate_folder(folder: Path, settings: Settings) -> Report:
    labels = folder / "labels.tsv"
    if not labels.is_file():
        raise SourceError(f"{labels}: no labels.tsv in this folder")
    report = Report()
    with labels.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path = folder / row["file"]
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise SourceError(f"{path}: {exc.strerror or exc}") from exc
            decision = triage_bytes(raw, settings).decision.as_dict()
            report.total += 1
            diffs = []
            for name in FIELDS:
                expected = (row.get(name) or "-").strip()
                if expected == "-":
                    continue
                got = label_value(decision, name)
                report.field_judged[name] += 1
                if got == expected:
                    report.field_right[name] += 1
                else:
                    diffs.append(f"{name} {got} (expected {expected})")
            report.confusion[row["action"].strip()][decision["action"]] += 1
            if diffs:
                report.wrong.append((row["file"], diffs, (row.get("note") or "").strip()))
            else:
                report.correct += 1
    return report
