"""`triage status` after a SIGKILL between an IMAP MOVE and the commit that records it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from triage.testing.intake import deploy

from .conftest import DEV, query


def triage(*args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["-m", "triage.testing.faults", fault] if fault else ["-m", "triage"]
    return subprocess.run([sys.executable, *prefix, *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_status_is_clean_after_a_kill_between_move_and_commit(dovecot, tmp_path, database,
                                                              request):
    """Killed right after its first MOVE, before recording it: `status` finds the moved
    messages in their folder and exits 0 (it used to report them « MISSING ON SERVER » for
    ever), and the next pass leaves nothing lost or doubled; on SQLite and PostgreSQL."""
    if not dovecot.running:
        dovecot.start()
    url = request.getfixturevalue("pg_url") if database == "postgresql" else None
    deployment = deploy(dovecot, tmp_path, codes=("38",), store_url=url)
    acc = deployment.account_of("38")
    files = sorted(DEV.glob("*.eml"))[:40]
    for i, f in enumerate(files):
        raw = re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <kill-{i}@test>".encode(),
                     f.read_bytes(), count=1)
        dovecot.append(acc.user, acc.password, "INBOX", raw)
    config = str(deployment.config_path)
    killed = triage("run", "--once", "--config", config, fault="after-imap-move")
    assert killed.returncode == -9
    assert query(deployment, "select count(*) from ticket_sources where moved_to is null") \
        == [(len(files),)]  # the move happened on the server, unrecorded
    status = triage("status", "--config", config)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "moves repaired:" in status.stdout and "MISSING" not in status.stdout
    assert triage("run", "--once", "--config", config).returncode == 0
    assert query(deployment, "select count(*), count(distinct message_id) from tickets") \
        == [(len(files), len(files))]
    again = triage("status", "--config", config)
    assert again.returncode == 0 and "waiting:         0" in again.stdout, again.stdout
