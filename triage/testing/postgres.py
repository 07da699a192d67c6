"""Throwaway PostgreSQL databases for tests, on the machine's own server.

The project's machines run PostgreSQL at 127.0.0.1:5432 with trust authentication; the
``postgres`` role (a superuser on any Debian install) creates and drops the test databases.
``TRIAGE_TEST_POSTGRES_URL`` points the tests at another server, for example::

    TRIAGE_TEST_POSTGRES_URL=postgresql+psycopg://me:pw@localhost:5433/postgres

Usage::

    with temporary_database() as url:   # postgresql+psycopg://postgres@127.0.0.1:5432/triage_test_…
        engine = sqlalchemy.create_engine(url)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

__all__ = ["PostgresUnavailable", "postgres_url", "temporary_database"]

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
URL_VARIABLE = "TRIAGE_TEST_POSTGRES_URL"
DATABASE_PREFIX = "triage_test_"
_START_TIMEOUT = 30.0


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server answers and none could be started."""


def _admin_url() -> URL:
    return make_url(os.environ.get(URL_VARIABLE, DEFAULT_URL))


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _start_local_clusters() -> str:
    """Start the Debian clusters as the notes say; return what went wrong, if anything."""
    pg_ctlcluster = shutil.which("pg_ctlcluster")
    if pg_ctlcluster is None or os.geteuid() != 0:
        return "pg_ctlcluster is missing or we are not root"
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
    errors = []
    for version in versions:
        result = subprocess.run(
            [pg_ctlcluster, "--skip-systemctl-redirect", version, "main", "start"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if result.returncode != 0:
            errors.append(f"{version}/main: {result.stderr.strip() or result.stdout.strip()}")
    return "; ".join(errors) if versions else "no cluster under /etc/postgresql"


def postgres_url(database: str | None = None) -> str:
    """The URL of the test server (its admin database unless ``database`` is given).

    Starts the local cluster if nothing answers at the configured host and port.
    """
    url = _admin_url()
    host, port = url.host or "127.0.0.1", url.port or 5432
    if not _answers(host, port):
        problem = _start_local_clusters()
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers(host, port):
            if time.monotonic() > deadline:
                raise PostgresUnavailable(
                    f"no PostgreSQL answers at {host}:{port} and starting it failed ({problem}); "
                    "try `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main "
                    f"start` or set {URL_VARIABLE}"
                )
            time.sleep(0.2)
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def _connect_admin() -> Any:
    import psycopg  # imported here so that triage.testing imports without it

    url = make_url(postgres_url())
    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
        connect_timeout=10,
    )


def database_exists(name: str) -> bool:
    """True if the test server has a database called ``name``."""
    with _connect_admin() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create a uniquely named, empty database; yield its SQLAlchemy URL; drop it afterwards.

    The drop uses ``WITH (FORCE)``, so connections a test left open (a pooled engine) do not
    keep the database alive.
    """
    from psycopg import sql

    name = f"{DATABASE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with _connect_admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_url(name)
    finally:
        with _connect_admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
