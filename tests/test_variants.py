"""The labelled sets: messages written apart from the rules that probe how they generalise.

``tests/data/variants`` holds messages written apart from ``dev/`` (other wordings, clients,
encodings, places and traps), labelled by SPEC.md in the same ``labels.tsv`` format;
``variants2`` and ``variants3`` were written later, ``adjacent`` (at least 150 messages) by a
session that read only SPEC.md, on the password-adjacent classes: other applications,
certificates, no request at all, other DDFIPs. The engine must decide every ``dev/`` message
right, at least ``MIN_ACCURACY`` of each other set, and draft no reply that a message does not
want (the costly error: a reset ready to approve for someone who asked none).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from triage.config import load_settings
from triage.evaluate import FIELDS, evaluate_folder

VARIANTS = Path(__file__).resolve().parent / "data" / "variants"
MIN_ACCURACY = 0.98
#: Every labelled set and the share of fully right messages it must reach.
SETS = {"dev": 1.0, "variants": MIN_ACCURACY, "variants2": MIN_ACCURACY,
        "variants3": MIN_ACCURACY, "adjacent": MIN_ACCURACY}

ACTIONS = {"ignore", "quarantine", "human", "draft"}
TEMPLATES = {"reset_password", "expired_password", "request_nominative_address"}
INTENTS = {"forgotten_password", "expired_password", "other"}
DEPARTMENTS = {"07", "26", "38", "73", "74", "none"}


def _rows(folder: Path = VARIANTS) -> list[dict[str, str]]:
    with (folder / "labels.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.mark.parametrize("folder", ["variants", "adjacent"])
def test_every_message_is_labelled_once(folder: str) -> None:
    """Each .eml file of the folder has exactly one labels.tsv row, and each row a file."""
    files = sorted(p.name for p in (VARIANTS.parent / folder).glob("*.eml"))
    labelled = [row["file"] for row in _rows(VARIANTS.parent / folder)]
    assert sorted(labelled) == files
    assert len(set(labelled)) == len(labelled)


@pytest.mark.parametrize("folder", ["variants", "adjacent"])
def test_labels_follow_the_specification(folder: str) -> None:
    """Every row uses the values and the judged columns that SPEC.md gives for its action."""
    for row in _rows(VARIANTS.parent / folder):
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


#: The sets on which not one wrong draft is allowed (on the others a wrong draft is one of the
#: errors MIN_ACCURACY tolerates, and `triage eval` lists it).
@pytest.mark.parametrize("folder", sorted(SETS))
def test_labelled_sets_accuracy_and_no_wrong_draft(folder: str) -> None:
    """Each labelled set reaches its accuracy (all of dev/, MIN_ACCURACY of the others), so a
    rule change that fixes one set cannot quietly break another; in no set is a reply drafted
    for a message that wants none, or from another template."""
    report = evaluate_folder(VARIANTS.parent / folder, load_settings())
    assert report.total >= (90 if folder == "dev" else 100)
    assert report.accuracy >= SETS[folder], "\n".join(report.lines())
    assert report.wrong_drafts == [], "\n".join(report.lines())


def test_adjacent_set_is_large_and_mostly_not_drafted() -> None:
    """The password-adjacent set holds at least 150 messages, most of them for an agent: it
    exercises the messages that must not get a reset draft."""
    rows = _rows(VARIANTS.parent / "adjacent")
    assert len(rows) >= 150
    assert sum(r["action"] == "human" for r in rows) >= 50
