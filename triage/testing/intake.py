"""A throwaway deployment of triage for tests and demos: config, accounts and store.

:func:`deploy` makes one IMAP account per department mailbox on a test Dovecot server and
writes a configuration (the shipped one, with the mailboxes, a private data directory and
plain IMAP on loopback) that ``triage run --config`` can use as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from triage.config import DEFAULT_CONFIG, Settings, load_settings
from triage.testing.dovecot import ImapAccount


class ImapTestServer(Protocol):
    """What :func:`deploy` needs of a test IMAP server (Dovecot, Cyrus, Courier, the double)."""

    host: str
    port: int

    def add_user(self, name: str | None = None, password: str | None = None
                 ) -> ImapAccount: ...


@dataclass(frozen=True)
class Deployment:
    config_path: Path
    settings: Settings
    accounts: dict[str, ImapAccount]  # by mailbox address
    data_dir: Path

    def account_of(self, code: str) -> ImapAccount:
        return self.accounts[f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr"]

    @property
    def store_url(self) -> str:
        return self.settings.store_url


def deploy(server: ImapTestServer, folder: Path, codes: tuple[str, ...] = ("07", "26", "38",
           "73", "74"), imap: dict[str, Any] | None = None, store_url: str | None = None,
           smtp_port: int | None = None, extra: dict[str, Any] | None = None,
           extra_mailboxes: int = 0) -> Deployment:
    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(DEFAULT_CONFIG.read_text("utf-8"))
    data["templates_dir"] = str(DEFAULT_CONFIG.parent.parent / "templates")
    data["data_dir"] = str(folder / "var")
    data["store"] = {"url": store_url}
    data["imap"] = {**data.get("imap", {}), "host": server.host, "port": server.port,
                    "security": "plain", "poll_interval": 0.5, "timeout": 10,
                    "max_backoff": 2, **(imap or {})}
    accounts: dict[str, ImapAccount] = {}
    mailboxes = []
    # The department mailboxes, then any beyond them (a national helpdesk has many).
    names = [(f"ddfip{code}", code) for code in codes] + [
        (f"helpdesk{n:02d}", f"extra-{n}") for n in range(1, extra_mailboxes + 1)]
    for local, tag in names:
        address = f"{local}.pgp.spl-pes@dgfip.finances.gouv.fr"
        account = server.add_user()
        secret = folder / f"imap-{tag}.secret"
        secret.write_text(account.password)
        secret.chmod(0o600)
        accounts[address] = account
        mailboxes.append({"address": address, "username": account.user,
                          "password_file": str(secret)})
    data["mailboxes"] = mailboxes
    if smtp_port is not None:
        data["smtp"] = {**data.get("smtp", {}), "host": "127.0.0.1", "port": smtp_port,
                        "security": "plain", "timeout": 10, "retry_max_backoff": 2,
                        "poll_interval": 0.5}
    data.update(extra or {})
    path = folder / "departments.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return Deployment(path, load_settings(path), accounts, folder / "var")
