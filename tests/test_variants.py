"""The variants set: new, differently worded messages that probe how the rules generalise.

``tests/data/variants`` holds messages written apart from ``dev/`` (other wordings, clients,
encodings, places and traps), labelled by SPEC.md in the same ``labels.tsv`` format. The engine
must decide at least ``MIN_ACCURACY`` of them right on every judged field.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from triage.config import load_settings
from triage.evaluate import FIELDS, Report, evaluate_folder

VARIANTS = Path(__file__).resolve().parent / "data" / "variants"
MIN_ACCURACY = 0.95

ACTIONS = {"ignore", "quarantine", "human", "draft"}
TEMPLATES = {"reset_password", "expired_password", "request_nominative_address"}
INTENTS = {"forgotten_password", "expired_password", "other"}
DEPARTMENTS = {"07", "26", "38", "73", "74", "none"}


def _rows() -> list[dict[str, str]]:
    with (VARIANTS / "labels.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def report() -> Report:
    return evaluate_folder(VARIANTS, load_settings())


def test_variants_accuracy(report: Report) -> None:
    """At least MIN_ACCURACY of the variant messages have every judged field right."""
    assert report.accuracy >= MIN_ACCURACY, "\n".join(report.lines())


def test_every_message_is_labelled_once() -> None:
    """Each .eml file of the folder has exactly one labels.tsv row, and each row a file."""
    files = sorted(p.name for p in VARIANTS.glob("*.eml"))
    labelled = [row["file"] for row in _rows()]
    assert sorted(labelled) == files
    assert len(set(labelled)) == len(labelled)


def test_labels_follow_the_specification() -> None:
    """Every row uses the values and the judged columns that SPEC.md gives for its action."""
    for row in _rows():
        name, action = row["file"], row["action"]
        assert action in ACTIONS, name
        assert row["note"].strip(), f"{name}: the note says what the message probes"
        if action in ("ignore", "quarantine"):
            assert all(row[f] == "-" for f in FIELDS if f != "action"), name
            continue
        assert row["intent"] in INTENTS, name
        assert row["department"] in DEPARTMENTS, name
        assert row["nominative"] in ("yes", "no"), name
        ident = row["identifier"]
        assert ident == "none" or (ident.endswith("-xt") and ident == ident.lower()), name
        if action == "human":
            assert row["template"] == "-", name
            assert row["intent"] == "other" or (
                row["nominative"] == "yes" and row["department"] == "none"), name
        else:
            assert row["template"] in TEMPLATES, name
            assert row["intent"] != "other", name
            expected = ("request_nominative_address" if row["nominative"] == "no" else
                        "expired_password" if row["intent"] == "expired_password" else
                        "reset_password")
            assert row["template"] == expected, name


@pytest.mark.parametrize("folder", ["variants2", "variants3"])
def test_later_labelled_sets_accuracy(folder: str) -> None:
    """The sets written later (other edge cases; the proportions of dev/) also reach
    MIN_ACCURACY, so a rule change that fixes one set cannot quietly break another."""
    report = evaluate_folder(VARIANTS.parent / folder, load_settings())
    assert report.total >= 100
    assert report.accuracy >= MIN_ACCURACY, "\n".join(report.lines())
