"""``triage eval``: compare decisions with a labelled folder (``labels.tsv`` beside the mail).

Columns: ``file action template intent department nominative identifier note``; ``-`` means
"not judged". A message is correct when every judged field is right.

Beside accuracy, the report counts the costly errors apart: a *wrong draft* is a reply drafted
for a message that wants none (its label is not ``draft``) or drafted from another template
than the label's. Draft precision is the share of drafts that are right on both counts.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from triage.bulk import Examination
from triage.config import Settings
from triage.errors import SourceError
from triage.pipeline import Examined, conclude
from triage.sources import Location

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
    templates: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    wrong: list[tuple[str, list[str], str]] = field(default_factory=list)
    drafts: int = 0
    wrong_drafts: list[tuple[str, str]] = field(default_factory=list)  # (file, what is wrong)
    retried: int = 0  # messages examined again after a worker process died (triage.bulk)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def draft_precision(self) -> float:
        """Drafts that should exist, from the right template, among all drafts made."""
        return (self.drafts - len(self.wrong_drafts)) / self.drafts if self.drafts else 1.0

    def count(self, name: str, row: dict[str, str], decision: dict[str, Any]) -> None:
        """Add one message's action, template and draft figures."""
        expected, decided = row["action"].strip(), decision["action"]
        self.confusion[expected][decided] += 1
        if decided != "draft":
            return
        self.drafts += 1
        want = (row.get("template") or "-").strip()
        got = decision["template"] or "none"
        if expected == "draft":
            self.templates[want][got] += 1
        if expected != "draft":
            self.wrong_drafts.append((name, f"{got} drafted for a message labelled {expected}"))
        elif want not in ("-", got):
            self.wrong_drafts.append((name, f"{got} drafted, label {want}"))

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
        names = ("reset_password", "expired_password", "request_nominative_address")
        short = ("reset", "expired", "nominative")
        out += ["", "templates of drafts labelled draft (rows: expected, columns: drafted):",
                "  " + " " * 27 + "".join(f"{n:>11}" for n in short)]
        for exp in names:
            out.append(f"  {exp:<27}" + "".join(f"{self.templates[exp][n]:>11}" for n in names))
        out += ["", f"drafts: {self.drafts}  wrong drafts: {len(self.wrong_drafts)}  "
                    f"draft precision: {self.draft_precision:.1%}"]
        out += [f"  {name}: {what}" for name, what in self.wrong_drafts]
        if self.wrong:
            out += ["", "wrong:"]
            for name, diffs, note in self.wrong:
                out.append(f"  {name}: {'; '.join(diffs)}" + (f"  [{note}]" if note else ""))
        return out


def _decided(settings: Settings, _location: Location, examined: Examined) -> dict[str, Any]:
    """A message's decision as :meth:`triage.decision.Decision.as_dict` gives it."""
    return conclude(examined, settings).decision.as_dict()


def evaluate_folder(folder: Path, settings: Settings, jobs: int = 1) -> Report:
    """Decide every message of ``labels.tsv`` and compare; ``jobs`` processes parse and run
    the rules (:mod:`triage.bulk`), the report is the same for any number."""
    labels = folder / "labels.tsv"
    if not labels.is_file():
        raise SourceError(f"{labels}: no labels.tsv in this folder")
    report = Report()
    with labels.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    # No sender history: each message is concluded in the worker that examined it.
    examination = Examination((Location(str(folder / row["file"]), str(folder / row["file"]))
                               for row in rows), settings, jobs,
                              finish=partial(_decided, settings))
    for row, (_location, decision) in zip(rows, examination, strict=True):
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
        report.count(row["file"], row, decision)
        if diffs:
            report.wrong.append((row["file"], diffs, (row.get("note") or "").strip()))
        else:
            report.correct += 1
    report.retried = examination.retried
    return report
