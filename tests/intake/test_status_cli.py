"""`triage status` exits 1 and names the mailbox and the reason when an admin is needed."""

from __future__ import annotations

import subprocess
import sys


def test_refused_login_makes_status_exit_1_and_say_why(dovecot, deployment):
    """A mailbox whose password is wrong: status exits 1, names it, and calls it refused
    (permanent), while the other mailboxes are fine."""
    acc = deployment.account_of("38")
    secret = deployment.config_path.parent / "imap-38.secret"
    secret.write_text("not-the-password")
    run = subprocess.run([sys.executable, "-m", "triage", "status", "--config",
                          str(deployment.config_path)], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 1, run.stdout
    assert "needs an admin: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr" in run.stderr
    assert "refused now: permanent:" in run.stdout and "LOGIN" in run.stdout
    assert run.stdout.count("NEEDS AN ADMIN") == 1
    assert acc.user not in run.stderr  # no secret or login detail beyond the address
