"""``triage demo``: the whole service on loopback, with sample mail, in one command.

What runs is the real code path, nothing simulated: an IMAP server (Dovecot if installed, else
pymap) holds the five department mailboxes; the sample messages are delivered into them with
IMAP APPEND; the daemon (:class:`~triage.mailbox.daemon.Daemon`) triages them into a SQLite
store; the review application serves the agents; approved replies go over SMTP to an aiosmtpd
server that keeps them, shown at ``/demo/sent``. Everything lives in one temporary folder,
removed with the servers when the demo stops (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import yaml
from imapclient import IMAPClient

from triage.config import DEFAULT_CONFIG, Settings, load_settings
from triage.demo.imap import ImapServer, start_imap
from triage.testing.dovecot import ImapAccount, free_port
from triage.testing.smtp import SmtpRelay

log = logging.getLogger("triage.demo")

DEFAULT_WEB_PORT = 8080
DEFAULT_MAILBOX = "38"
INTAKE_TIMEOUT = 60.0


def mailbox_address(code: str) -> str:
    return f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr"


def sample_messages() -> list[tuple[str, bytes]]:
    """The shipped sample messages (package data), by file name."""
    folder = resources.files("triage.demo") / "messages"
    return sorted((p.name, p.read_bytes()) for p in folder.iterdir() if p.name.endswith(".eml"))


def addressed_to(raw: bytes, codes: list[str]) -> str:
    """The department whose mailbox a message is addressed to (first found), else 38."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers = " ".join(str(msg.get_all(h) or "") for h in ("Delivered-To", "X-Original-To",
                                                             "To", "Cc")).lower()
    for code in codes:
        if mailbox_address(code) in headers:
            return code
    return DEFAULT_MAILBOX if DEFAULT_MAILBOX in codes else codes[0]


def web_port(wanted: int | None, host: str) -> int:
    """``wanted``; without it 8080 if free, else any free port."""
    if wanted:
        return wanted
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, DEFAULT_WEB_PORT))
        except OSError:
            return free_port(host)
    return DEFAULT_WEB_PORT


@dataclass
class Demo:
    """The demo's servers, configuration and store; :meth:`run` until a signal, then clean."""

    host: str = "127.0.0.1"
    port: int | None = None
    imap_kind: str = "auto"
    out: TextIO = sys.stdout
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="triage-demo-")))
    imap: ImapServer | None = None
    imap_description: str = ""
    relay: SmtpRelay | None = None
    accounts: dict[str, ImapAccount] = field(default_factory=dict)
    config_path: Path | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)
    #: The agents' password, new at each run (printed in the banner): a demo left running is
    #: not open to whoever knows a password written in the source.
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    _cleanups: list[Any] = field(default_factory=list)

    # -- set-up ----------------------------------------------------------------------------
    def start_servers(self) -> None:
        self.imap, self.imap_description = start_imap(self.imap_kind, self.root)
        self._cleanups.append(self.imap.close)
        self.relay = SmtpRelay()
        self.relay.start()
        self._cleanups.append(self.relay.stop)

    def configure(self) -> Settings:
        """Write the demo's configuration: the shipped one, pointed at the loopback servers."""
        assert self.imap is not None and self.relay is not None
        data = yaml.safe_load(DEFAULT_CONFIG.read_text("utf-8"))
        data["templates_dir"] = str(DEFAULT_CONFIG.parent.parent / "templates")
        data["data_dir"] = str(self.root / "var")
        data["store"] = {"url": None}
        data["imap"] = {**data.get("imap", {}), "host": self.imap.host, "port": self.imap.port,
                        "security": "plain", "poll_interval": 2, "timeout": 10,
                        "max_backoff": 5}
        mailboxes = []
        for dept in data["departments"]:
            code = str(dept["code"])
            account = self.imap.add_user(f"helpdesk{code}", secrets.token_urlsafe(24))
            secret = self.root / f"imap-{code}.secret"
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(account.password)
            self.accounts[code] = account
            mailboxes.append({"address": mailbox_address(code), "username": account.user,
                              "password_file": str(secret)})
        data["mailboxes"] = mailboxes
        data["smtp"] = {**data.get("smtp", {}), "host": self.relay.host, "port": self.relay.port,
                        "security": "plain", "username": None, "timeout": 10,
                        "retry_max_backoff": 5, "poll_interval": 1}
        data["web"] = {**data.get("web", {}), "host": self.host,
                       "port": web_port(self.port, self.host)}
        self.config_path = self.root / "departments.yaml"
        self.config_path.write_text(
            "# Configuration of `triage demo` (edit it: the demo reloads it live).\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
        return load_settings(self.config_path)

    def add_agents(self, settings: Settings, store: Any) -> None:
        from triage.review.agents import add_agent

        codes = [d.code for d in settings.departments]
        with store.session() as s:
            add_agent(s, settings, "admin", self.password, codes, role="admin",
                      name="Administratrice de la démo", actor="demo")
            self.logins.append(("admin", "administrator, every department, dashboard"))
            lead = DEFAULT_MAILBOX if DEFAULT_MAILBOX in codes else codes[0]
            add_agent(s, settings, f"lead{lead}", self.password, [lead], role="lead",
                      name=f"Chef d'équipe {lead}", actor="demo")
            self.logins.append((f"lead{lead}", f"team lead of {lead}, dashboard"))
            for d in settings.departments:
                add_agent(s, settings, f"agent{d.code}", self.password, [d.code],
                          name=f"Agent {d.name}", actor="demo")
                self.logins.append((f"agent{d.code}", f"agent of {d.code} ({d.name})"))
            s.commit()

    def deliver(self, settings: Settings) -> int:
        """APPEND each sample message to the INBOX of the mailbox it is addressed to."""
        codes = [d.code for d in settings.departments]
        count = 0
        for _name, raw in sample_messages():
            account = self.accounts[addressed_to(raw, codes)]
            with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as imap:
                imap.login(account.user, account.password)
                imap.append("INBOX", raw)
            count += 1
        return count

    # -- running ---------------------------------------------------------------------------
    def run(self, log_level: str = "warning") -> int:
        """Set up, serve until SIGINT or SIGTERM, then remove everything. Returns 0."""
        import uvicorn

        from triage.demo.web import install
        from triage.logs import setup_logging
        from triage.mailbox.daemon import Daemon
        from triage.review.http import server_config
        from triage.review.web import ReviewApp
        from triage.store import Store

        setup_logging(level=getattr(logging, log_level.upper(), logging.WARNING))
        stop_requested: list[int] = []

        def remember(signum: int, _frame: object) -> None:
            stop_requested.append(signum)

        daemon = None
        try:
            self.start_servers()
            settings = self.configure()
            store = Store.open(settings)
            self._cleanups.append(store.dispose)
            self.add_agents(settings, store)
            delivered = self.deliver(settings)
            daemon = Daemon(settings, self.config_path, store)
            daemon.start()
            self._cleanups.append(daemon.stop)
            daemon.live.reload_on_sighup()
            review = ReviewApp(daemon.settings, store)
            assert self.relay is not None
            install(review, self.relay)
            server = uvicorn.Server(server_config(review.app(), settings))
            triaged = self.wait_for_intake(store, delivered)
            threading.Thread(target=self._banner_when_up, args=(server, settings, delivered,
                                                                triaged), daemon=True).start()
            # uvicorn takes SIGINT and SIGTERM while it serves, then hands them on to the
            # handlers found before it started: these ones let the clean-up below run.
            signal.signal(signal.SIGINT, remember)
            signal.signal(signal.SIGTERM, remember)
            server.run()
            if not server.started:
                print(f"triage demo: cannot listen on {settings.web.host}:{settings.web.port}",
                      file=sys.stderr)
                return 1
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.close()

    def wait_for_intake(self, store: Any, expected: int) -> int:
        """Wait (bounded) until the daemon has a ticket for every delivered message."""
        deadline = time.monotonic() + INTAKE_TIMEOUT
        count = 0
        while time.monotonic() < deadline:
            count = store.count_tickets()
            if count >= expected:
                break
            time.sleep(0.2)
        return count

    def _banner_when_up(self, server: Any, settings: Settings, delivered: int,
                        triaged: int) -> None:
        deadline = time.monotonic() + 30
        while not server.started and not server.should_exit and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.started:
            self.banner(settings, delivered, triaged)

    def banner(self, settings: Settings, delivered: int, triaged: int) -> None:
        assert self.relay is not None and self.imap is not None
        url = f"http://{settings.web.host}:{settings.web.port}"
        width = max(len(login) for login, _ in self.logins)
        lines = [
            "",
            f"triage demo is ready: open {url}/",
            "",
            f"  logins (password for all, new at each run: {self.password}):",
            *[f"    {login:<{width}}  {what}" for login, what in self.logins],
            "",
            f"  {delivered} sample messages delivered, {triaged} triaged into tickets",
            f"  replies received by the SMTP server: {url}/demo/sent",
            f"  dashboard (admin, lead): {url}/dashboard   metrics: {url}/metrics   "
            f"readiness: {url}/readyz",
            f"  IMAP server: {self.imap_description} on {self.imap.host}:{self.imap.port}",
            f"  SMTP server: aiosmtpd on {self.relay.host}:{self.relay.port}",
            f"  configuration (reloaded when edited): {self.config_path}",
            f"  work folder (removed at exit): {self.root}",
            "",
            "Press Ctrl-C to stop: the servers stop and the work folder is removed.",
            "",
        ]
        self.out.write("\n".join(lines))
        self.out.flush()

    def close(self) -> None:
        """Stop what was started, newest first, and remove the work folder."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            try:
                cleanup()
            except Exception:  # keep going: every other server must still stop
                log.exception("demo clean-up step failed")
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError, ValueError):
            self.out.write("triage demo stopped; nothing left behind.\n")
            self.out.flush()


def main(host: str = "127.0.0.1", port: int | None = None, imap: str = "auto",
         log_level: str = "warning") -> int:
    return Demo(host=host, port=port, imap_kind=imap).run(log_level)


__all__ = ["Demo", "addressed_to", "main", "sample_messages"]
