"""Every third-party import of the package and its tests is declared in pyproject.toml.

A module installed by hand on one machine makes the tests pass there and the package fail on
every other (the last landing failed a fresh install at `import alembic` this way). deptry,
configured under ``[tool.deptry]``, reads the imports and the declarations.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deptry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deptry", ".", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def test_every_import_is_declared():
    """deptry finds no undeclared, transitive-only or misplaced import in triage/ or tests/."""
    run = deptry()
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_removed_declaration_is_found(tmp_path):
    """With alembic taken out of the declarations, the check fails and names it."""
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    without = re.sub(r'^\s*"alembic[^"]*",\n', "", pyproject, flags=re.MULTILINE)
    assert without != pyproject, "pyproject.toml no longer declares alembic: update this test"
    (tmp_path / "pyproject.toml").write_text(without, "utf-8")
    run = deptry("--config", str(tmp_path / "pyproject.toml"))
    assert run.returncode != 0
    assert "'alembic' imported but" in run.stdout + run.stderr
