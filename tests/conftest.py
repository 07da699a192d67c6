"""Fixtures that give tests real peers: a Dovecot IMAP server and a PostgreSQL database.

The helpers behind them live in :mod:`triage.testing`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from triage.testing import DovecotServer, ImapAccount, temporary_database


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot server for the whole session; tests get their own users on it.

    A test that stops or restarts the server should make its own ``DovecotServer`` instead,
    so that it does not disturb the others.
    """
    with DovecotServer() as server:
        yield server


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> ImapAccount:
    """A new user with an empty mailbox on the session's server (host, port, user, password)."""
    if not dovecot.running:
        # A test that stopped the shared server must not break the ones after it.
        dovecot.start()
    return dovecot.add_user()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store tests run on both back ends: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.sqlite3"
    else:
        with temporary_database() as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The SQLAlchemy URL of an empty PostgreSQL database, dropped after the test."""
    with temporary_database() as url:
        yield url
