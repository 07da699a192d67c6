"""Helpers for the project's tests, shipped in the package so every test module can use them.

Tests talk to real peers started or found here, never to mocks:

- :mod:`triage.testing.dovecot`: :class:`DovecotServer`, a private Dovecot IMAP server on a free
  loopback port, with users, folders and UIDVALIDITY under the test's control;
- :mod:`triage.testing.postgres`: :func:`temporary_database`, an empty PostgreSQL database
  dropped after use, on the machine's server;
- :mod:`triage.testing.cyrus` and :mod:`triage.testing.courier`: throwaway Cyrus IMAP (either
  namespace setting) and Courier-IMAP (with or without UIDPLUS) servers, from the packages
  ``scripts/imap-servers`` unpacks (:mod:`triage.testing.servers`);
- :mod:`triage.testing.faults`: ``python -m triage.testing.faults FAULT TRIAGE-ARGS…`` runs
  the ``triage`` command with a crash planted (fault injection lives here, never in the code
  under test).

One fake, where no real server can produce the case: :mod:`triage.testing.imapdouble`, an
in-memory IMAP double of the intake's connection protocol with switchable capabilities and
crash points, for the unit tests of the worker's ordering and fallbacks.

The pytest fixtures built on them are in ``tests/conftest.py``.
"""

from triage.testing.dovecot import (
    DovecotError,
    DovecotNotInstalled,
    DovecotServer,
    ImapAccount,
    ensure_dovecot,
)
from triage.testing.postgres import PostgresUnavailable, postgres_url, temporary_database

__all__ = [
    "DovecotError",
    "DovecotNotInstalled",
    "DovecotServer",
    "ImapAccount",
    "PostgresUnavailable",
    "ensure_dovecot",
    "postgres_url",
    "temporary_database",
]
