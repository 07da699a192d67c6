"""The package as a user installs it: a wheel in a new environment, run from an empty folder.

Nothing of the source tree is on hand there: the example configuration, the templates and the
demo's messages must travel inside the wheel, and a command that finds no configuration must
say how to give one. The wheel's dependencies come from the index like any user's (pip's cache
keeps it quick).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from triage.testing.dovecot import free_port

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "01-reset-38.eml"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TRIAGE_CONFIG", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `triage` command of a wheel built from a copy of this tree and installed afresh."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    # A copy: setuptools' build/ folder in the tree could carry stale modules into the wheel.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "var", "tests"))
    dist = base / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", "-w", str(dist), str(source)],
        capture_output=True, text=True, check=False, env=_clean_env())
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("triage-*.whl"))
    assert len(wheels) == 1, wheels
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", str(wheels[0])],
        capture_output=True, text=True, check=False, env=_clean_env())
    assert pip.returncode == 0, pip.stdout + pip.stderr
    yield venv / "bin" / "triage"


def run(command: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(command), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, env=_clean_env(), timeout=120)


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_commands_work_from_an_empty_folder(installed, tmp_path):
    """--help, check-config, init, explain and replay --dry-run behave outside the source tree."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(installed, "--help", cwd=empty).returncode == 0

    missing = run(installed, "check-config", cwd=empty)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and len(missing.stderr.splitlines()) == 1
    assert "--config" in missing.stderr and "TRIAGE_CONFIG" in missing.stderr
    assert "site-packages" not in missing.stderr

    init = run(installed, "init", cwd=empty)
    assert init.returncode == 0, init.stderr
    assert (empty / "config" / "departments.yaml").is_file()
    assert (empty / "templates" / "reset_password.txt.j2").is_file()
    checked = run(installed, "check-config", cwd=empty)
    assert checked.returncode == 0, checked.stderr
    assert "OK (5 departments" in checked.stdout
    again = run(installed, "init", cwd=empty)
    assert again.returncode == 2 and "--force" in again.stderr

    sample = tmp_path / SAMPLE
    sample.write_bytes((ROOT / "triage" / "demo" / "messages" / SAMPLE).read_bytes())
    explained = run(installed, "explain", str(sample), cwd=empty)
    assert explained.returncode == 0, explained.stderr
    assert "action: draft (reset_password)" in explained.stdout

    before = files_under(empty)
    replayed = run(installed, "replay", "--dry-run", str(sample), cwd=empty)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("1 message (draft: 1)")
    assert replayed.stderr == ""
    assert files_under(empty) == before


def test_demo_runs_from_the_wheel(installed, tmp_path):
    """`triage demo` from an empty folder serves /healthz, then stops on Ctrl-C (SIGINT)."""
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen([str(installed), "demo", "--port", str(port)], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=_clean_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    answer = (r.status, r.read())
                    break
            except OSError:
                time.sleep(0.5)
        output = (tmp_path / "demo.log").read_text("utf-8", "replace")
        assert answer is not None and answer[0] == 200 and answer[1].strip() == b"ok", output
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, output
        output = (tmp_path / "demo.log").read_text("utf-8", "replace")
        assert "Traceback" not in output, output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
