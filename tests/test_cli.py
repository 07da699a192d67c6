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


def _config_in(tmp_path: Path) -> Path:
    """The project's configuration, with its store under ``tmp_path/var``."""
    config = tmp_path / "departments.yaml"
    src = (DATA.parent.parent / "config" / "departments.yaml").read_text("utf-8")
    config.write_text(src.replace("templates_dir: ../templates",
                                  f"templates_dir: {DATA.parent.parent / 'templates'}")
                      .replace("data_dir: ../var", f"data_dir: {tmp_path / 'var'}"))
    return config


def test_replay_dry_run_writes_nothing(tmp_path):
    """`replay --dry-run`, with files or with --days, creates no store and no folder."""
    config = _config_in(tmp_path)
    files = triage("replay", "--dry-run", "--config", str(config), str(DEV / "020.eml"))
    assert files.returncode == 0, files.stderr
    assert files.stdout.strip() == "1 message (draft: 1)"
    assert files.stderr == ""  # no progress bar, nor its bare label, off a terminal
    days = triage("replay", "--dry-run", "--days", "3", "--config", str(config))
    assert days.returncode == 2
    assert "no store at" in days.stderr and "Traceback" not in days.stderr
    assert not (tmp_path / "var").exists()


def test_agents_list_says_when_there_is_none(tmp_path):
    """`agents list` on a store without agents says so and how to add one."""
    run = triage("agents", "list", "--config", str(_config_in(tmp_path)))
    assert run.returncode == 0, run.stderr
    assert "no agent yet" in run.stdout and "triage agents add" in run.stdout


def test_no_configuration_is_one_line_naming_the_option_and_variable(tmp_path):
    """Outside a checkout, with no TRIAGE_CONFIG and no ./config, the error says how to give one."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "TRIAGE_CONFIG"}
    code = ("import sys, triage.config as c; c._is_source_checkout = lambda: False; "
            "from triage.cli import main; sys.argv = ['triage', 'check-config']; main()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=False)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "--config FILE" in run.stderr and "TRIAGE_CONFIG" in run.stderr
