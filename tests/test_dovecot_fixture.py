"""The real-server test infrastructure: Dovecot over IMAP and temporary PostgreSQL databases."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from triage.testing import DovecotServer, ImapAccount, temporary_database
from triage.testing.postgres import database_exists

MESSAGE = (
    "From: Mairie de Chambéry <mairie@chambery.example>\r\n"
    "To: helpdesk73@dgfip.example\r\n"
    "Subject: =?utf-8?q?Mot_de_passe_Chorus_Pro_expir=C3=A9?=\r\n"
    "Message-ID: <fixture-1@chambery.example>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Bonjour,\r\n"
    "notre mot de passe a expiré, SIRET 217 300 659 00017, code postal 73000.\r\n"
    "Cordialement\r\n"
).encode()


def login(account: ImapAccount) -> IMAPClient:
    """An imapclient connection logged in to ``account``."""
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=30)
    client.login(account.user, account.password)
    return client


def fetch_all(account: ImapAccount, folder: str) -> dict[int, bytes]:
    """UID -> raw bytes of every message of ``folder``."""
    client = login(account)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return {uid: data[b"BODY[]"] for uid, data in fetched.items()}
    finally:
        client.logout()


def select_uidvalidity(account: ImapAccount, folder: str) -> int:
    """The UIDVALIDITY that SELECT reports for ``folder``."""
    client = login(account)
    try:
        return int(client.select_folder(folder)[b"UIDVALIDITY"])
    finally:
        client.logout()


def test_appended_message_is_fetched_back_byte_identical(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    """A message appended to INBOX comes back from FETCH BODY[] with the same bytes and UID."""
    uid = dovecot.append(imap_account.user, imap_account.password, "INBOX", MESSAGE)

    assert fetch_all(imap_account, "INBOX") == {uid: MESSAGE}


def test_each_account_starts_with_an_empty_inbox(imap_account: ImapAccount) -> None:
    """A new account's INBOX holds no message."""
    assert fetch_all(imap_account, "INBOX") == {}


def test_server_announces_idle_uidplus_and_move(imap_account: ImapAccount) -> None:
    """After login the server announces the IDLE, UIDPLUS and MOVE capabilities."""
    client = login(imap_account)
    try:
        capabilities = set(client.capabilities())
    finally:
        client.logout()

    assert {b"IDLE", b"UIDPLUS", b"MOVE"} <= capabilities


def test_user_added_while_running_can_log_in_and_wrong_password_cannot(
    dovecot: DovecotServer,
) -> None:
    """A user added to the running server logs in at once; a wrong password is refused."""
    account = dovecot.add_user("helpdesk38", "s3cret")
    login(account).logout()

    with pytest.raises(LoginError):
        login(ImapAccount(account.host, account.port, account.user, "wrong"))


def test_changed_password_replaces_the_old_one(dovecot: DovecotServer) -> None:
    """After set_password() the new password logs in and the old one is refused."""
    old = dovecot.add_user()
    new = dovecot.set_password(old.user, "n0uveau")

    login(new).logout()
    with pytest.raises(LoginError):
        login(old)


def test_stop_then_start_keeps_messages_and_port() -> None:
    """After stop() the port refuses connections; start() serves the same mail on it again."""
    with DovecotServer() as server:
        account = server.add_user("helpdesk73", "secret")
        uid = server.append(account.user, account.password, "INBOX", MESSAGE)
        port = server.port

        server.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((server.host, port), timeout=5).close()
        server.start()

        assert server.port == port
        assert fetch_all(account, "INBOX") == {uid: MESSAGE}


def test_two_servers_run_side_by_side(dovecot: DovecotServer) -> None:
    """A second server runs on its own port with its own users, beside the session's server."""
    with DovecotServer() as other:
        account = other.add_user("helpdesk26", "secret")
        login(account).logout()

        assert other.port != dovecot.port
        with pytest.raises(LoginError):
            login(ImapAccount(dovecot.host, dovecot.port, account.user, account.password))


def test_recreating_a_folder_changes_its_uidvalidity_and_empties_it(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    """Deleting and creating a folder again gives it a new UIDVALIDITY and no messages."""
    dovecot.append(imap_account.user, imap_account.password, "Traité", MESSAGE)
    before = select_uidvalidity(imap_account, "Traité")

    reported = dovecot.recreate_folder(imap_account.user, "Traité")

    after = select_uidvalidity(imap_account, "Traité")
    assert after != before
    assert after == reported
    assert fetch_all(imap_account, "Traité") == {}


def test_recreating_inbox_changes_its_uidvalidity_and_empties_it(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    """INBOX, which IMAP cannot delete, is emptied and given a new UIDVALIDITY instead."""
    dovecot.append(imap_account.user, imap_account.password, "INBOX", MESSAGE)
    before = select_uidvalidity(imap_account, "INBOX")

    dovecot.recreate_folder(imap_account.user, "INBOX")

    assert select_uidvalidity(imap_account, "INBOX") != before
    assert fetch_all(imap_account, "INBOX") == {}


def test_pg_url_is_an_empty_usable_database(pg_url: str) -> None:
    """The pg_url fixture names an existing, empty database that SQLAlchemy can write to."""
    name = sqlalchemy.make_url(pg_url).database
    assert name is not None and database_exists(name)

    engine = sqlalchemy.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            tables = conn.execute(
                sqlalchemy.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ).scalar_one()
            conn.execute(sqlalchemy.text("CREATE TABLE probe (id integer)"))
    finally:
        engine.dispose()
    assert tables == 0


def test_temporary_database_exists_during_use_and_is_gone_after() -> None:
    """temporary_database() creates its database and drops it on exit, even with a connection
    left open."""
    with temporary_database() as url:
        name = sqlalchemy.make_url(url).database
        assert name is not None and database_exists(name)
        engine = sqlalchemy.create_engine(url)
        leftover = engine.connect()  # a test that forgets to close must not block the drop

    try:
        assert not database_exists(name)
    finally:
        leftover.close()
        engine.dispose()
