"""The command line: eval on the dev set, explain --json, replay into the store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
DEV = DATA / "dev"
KEYS = ["source", "message_id", "action", "template", "intent", "department", "nominative",
        "identifier", "reasons", "rules"]


def triage(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage", *args], capture_output=True,
                          text=True, check=False, cwd=cwd)


def test_eval_dev_set_meets_accuracy():
    """`triage eval` on the labelled dev set reaches 97 % of fully right messages."""
    run = triage("eval", str(DEV), "--min-accuracy", "0.97")
    assert run.returncode == 0, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith("messages: 90")
    assert "field accuracy:" in run.stdout and "actions (rows: expected" in run.stdout


def test_eval_fails_below_min_accuracy(tmp_path):
    """A folder whose labels are wrong makes `eval --min-accuracy` exit 1 and list the file."""
    (tmp_path / "001.eml").write_bytes((DEV / "020.eml").read_bytes())
    (tmp_path / "labels.tsv").write_text(
        "file\taction\ttemplate\tintent\tdepartment\tnominative\tidentifier\tnote\n"
        "001.eml\tdraft\texpired_password\texpired_password\t26\tyes\tnreynaud-xt\t"
        "wrong on purpose\n")
    run = triage("eval", str(tmp_path), "--min-accuracy", "0.5")
    assert run.returncode == 1
    assert "001.eml: template reset_password (expected expired_password)" in run.stdout


def test_explain_json_one_object_per_line():
    """`explain --json` prints exactly one object per message with the documented keys."""
    run = triage("explain", "--json", str(DEV / "020.eml"), str(DEV / "086.eml"),
                 str(DEV / "045.eml"))
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [list(r) for r in rows] == [KEYS] * 3
    assert rows[0]["source"] == str(DEV / "020.eml")
    assert rows[0]["template"] == "reset_password" and rows[0]["department"] == "26"
    assert rows[0]["nominative"] is True and rows[0]["identifier"] == "nreynaud-xt"
    assert rows[1]["action"] == "quarantine"
    assert rows[2]["action"] == "human" and rows[2]["department"] is None
    assert all(isinstance(r, str) and ":" in r for r in rows[0]["reasons"])


def test_explain_reads_mbox_and_folders(tmp_path):
    """An mbox file yields one line per message, named path#N."""
    mbox = tmp_path / "box.mbox"
    with mbox.open("wb") as fh:
        for name in ("020.eml", "014.eml"):
            fh.write(b"From sender@example Tue Mar 10 09:00:00 2026\n")
            raw = (DEV / name).read_bytes().replace(b"\r\n", b"\n")
            fh.write(raw.replace(b"\nFrom ", b"\n>From "))
            fh.write(b"\n")
    run = triage("explain", "--json", str(mbox))
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["source"] for r in rows] == [f"{mbox}#1", f"{mbox}#2"]
    assert [r["action"] for r in rows] == ["draft", "ignore"]


def test_explain_missing_path_is_a_clear_error(tmp_path):
    """A path that does not exist is one error line and exit 2, not a traceback."""
    run = triage("explain", str(tmp_path / "nope.eml"))
    assert run.returncode == 2
    assert "no such file" in run.stderr and "Traceback" not in run.stderr


def test_replay_records_once(tmp_path):
    """`replay` stores every message as a ticket with its draft; a second replay adds none."""
    config = tmp_path / "departments.yaml"
    src = (DATA.parent.parent / "config" / "departments.yaml").read_text("utf-8")
    config.write_text(src.replace("templates_dir: ../templates",
                                  f"templates_dir: {DATA.parent.parent / 'templates'}")
                      .replace("data_dir: ../var", f"data_dir: {tmp_path / 'var'}"))
    first = triage("replay", "--config", str(config), str(DEV))
    assert first.returncode == 0, first.stderr
    assert "90 new tickets" in first.stdout
    again = triage("replay", "--config", str(config), str(DEV))
    assert "; 0 new tickets" in again.stdout
    db = sqlite3.connect(tmp_path / "var" / "triage.sqlite3")
    assert db.execute("select count(*) from tickets").fetchone() == (90,)
    assert db.execute("select count(*) from drafts").fetchone() == (63,)
    assert db.execute("select count(*) from audit_events where event='ticket.created'"
                      ).fetchone() == (90,)
    row = db.execute("select action, template, department, reasons from tickets "
                     "where origin like '%020.eml'").fetchone()
    assert row[:3] == ("draft", "reset_password", "26")
    assert any(r.startswith("Département : ") for r in json.loads(row[3]))
