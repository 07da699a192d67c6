"""`triage eval` counts the costly error apart (wrong drafts, draft precision) and can fail on
it; `triage explain` shows each rule's French label and description beside its reasons."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from triage import rules

DATA = Path(__file__).resolve().parent / "data"
HEADER = "file\taction\ttemplate\tintent\tdepartment\tnominative\tidentifier\tnote\n"


def triage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage", *args], capture_output=True,
                          text=True, check=False)


def labelled(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    """A folder of dev/ messages relabelled: (dev file, labels after the file column)."""
    lines = [HEADER]
    for i, (source, labels) in enumerate(rows, 1):
        (tmp_path / f"{i:03}.eml").write_bytes((DATA / "dev" / source).read_bytes())
        lines.append(f"{i:03}.eml\t{labels}\tnote\n")
    (tmp_path / "labels.tsv").write_text("".join(lines), "utf-8")
    return tmp_path


def test_wrong_drafts_are_counted_and_fail_the_bar(tmp_path):
    """A draft for a message labelled human, and a draft from another template, are wrong
    drafts: listed, counted in the draft precision, and `--max-wrong-drafts` exits 1."""
    folder = labelled(tmp_path, [
        ("020.eml", "human\t-\tother\t26\tyes\tnreynaud-xt"),  # drafted: should not be
        ("020.eml", "draft\texpired_password\texpired_password\t26\tyes\tnreynaud-xt"),
        ("020.eml", "draft\treset_password\tforgotten_password\t26\tyes\tnreynaud-xt"),
    ])
    run = triage("eval", str(folder), "--max-wrong-drafts", "1")
    assert run.returncode == 1
    assert "drafts: 3  wrong drafts: 2  draft precision: 33.3%" in run.stdout
    assert "001.eml: reset_password drafted for a message labelled human" in run.stdout
    assert "002.eml: reset_password drafted, label expired_password" in run.stdout
    assert "FAIL: 2 wrong drafts, more than 1" in run.stderr
    assert "templates of drafts labelled draft" in run.stdout
    assert triage("eval", str(folder), "--max-wrong-drafts", "2").returncode == 0


def test_dev_set_has_no_wrong_draft():
    """On dev/, every draft is wanted and from the right template."""
    run = triage("eval", str(DATA / "dev"), "--min-accuracy", "1", "--max-wrong-drafts", "0")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "draft precision: 100.0%" in run.stdout


def test_explain_shows_labels_and_descriptions():
    """Reasons start with the rule's French label, never its English name, and each rule's
    description heads its reasons (text) or is given by label (JSON)."""
    run = triage("explain", str(DATA / "dev" / "020.eml"))
    assert run.returncode == 0, run.stderr
    for name, description in ((r.NAME, r.DESCRIPTION) for r in rules.RULES):
        if name in ("intent", "department", "nominative"):
            assert f"{rules.label(name)} — {description}" in run.stdout
    assert "intent:" not in run.stdout.split("reasons")[1]
    run = triage("explain", "--json", str(DATA / "dev" / "020.eml"))
    assert '"Demande : ' in run.stdout and '"Département": "' in run.stdout


def test_every_rule_has_a_french_label_and_description():
    """Each rule module names itself for agents: a label and a one-line description, and the
    legend the ticket page can show lists them in evaluation order."""
    legend = rules.legend()
    assert len(legend) == len(rules.RULES)
    for (label, description), rule in zip(legend, rules.RULES, strict=True):
        assert label and label != rule.NAME and description == rule.DESCRIPTION
    assert rules.label("decision") == "Décision" and rules.label("limits") == "Limites"
    assert str(rules.base.Reason("intent", "x")) == "Demande : x"
