"""Fixtures for the intake tests: a deployment on the session's Dovecot, and daemon processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from triage.testing import DovecotServer
from triage.testing.intake import Deployment, deploy

DEV = Path(__file__).resolve().parent.parent / "data" / "dev"


@pytest.fixture
def deployment(dovecot: DovecotServer, tmp_path: Path) -> Deployment:
    if not dovecot.running:
        dovecot.start()
    return deploy(dovecot, tmp_path)


class DaemonProcess:
    """``triage run`` in a subprocess, its log in a file."""

    def __init__(self, deployment: Deployment, log: Path) -> None:
        self.deployment = deployment
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        fh = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "triage", "run", "--log-json", "--config",
             str(self.deployment.config_path)], stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        fh.close()
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[Deployment], DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(deployment: Deployment) -> DaemonProcess:
        proc = DaemonProcess(deployment, tmp_path / f"daemon-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def query(deployment: Deployment, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(deployment.store_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    except Exception:
        return []
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds it took for ``condition`` to hold; fails the test after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start
