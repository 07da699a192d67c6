"""End to end in a real browser: Debian's Chromium driven by Playwright against `triage serve`,
with Dovecot for the mailboxes and aiosmtpd as the relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from triage.testing.dovecot import free_port
from triage.testing.intake import deploy
from triage.testing.smtp import SmtpRelay

DEV = Path(__file__).resolve().parent.parent / "data" / "dev"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_agent_edits_and_approves_in_the_browser(dovecot, tmp_path):
    """A message arrives; the agent logs in, edits the draft, ticks the address check and
    approves; the relay receives the edited reply; the ticket shows as sent; the original is
    filed in Triage/Traité."""
    if not dovecot.running:
        dovecot.start()
    with SmtpRelay() as relay:
        web_port = free_port()
        dep = deploy(dovecot, tmp_path, codes=("38",), smtp_port=relay.port,
                     extra={"web": {"host": "127.0.0.1", "port": web_port}})
        add = subprocess.run([sys.executable, "-m", "triage", "agents", "add", "agent38", "-d",
                              "38", "--name", "Claire Agent", "--password-stdin", "--config",
                              str(dep.config_path)], input="mot de passe solide\n",
                             capture_output=True, text=True, timeout=60)
        assert add.returncode == 0, add.stderr
        log = (tmp_path / "serve.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "triage", "serve", "--config",
                                   str(dep.config_path)], stdout=log, stderr=log,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            acc = dep.account_of("38")
            dovecot.append(acc.user, acc.password, "INBOX", (DEV / "065.eml").read_bytes())
            base = f"http://127.0.0.1:{web_port}"
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page()
                wait(lambda: _up(page, base), 30, "the web application")
                page.goto(f"{base}/login")
                page.fill("input[name=login]", "agent38")
                page.fill("input[name=password]", "mot de passe solide")
                page.click("button[type=submit]")
                wait(lambda: _ticket_listed(page, base), 30, "the ticket in the queue")
                page.click("table.queue a[href^='/tickets/']")
                page.wait_for_selector("textarea[name=body]")
                assert "aurelie.martin@ville-voiron.fr" in page.inner_text("#sender")
                text = page.input_value("textarea[name=body]")
                assert "a.martin-xt" in text
                page.fill("textarea[name=body]", text.replace(
                    "Nous avons bien reçu", "Nous avons bien reçu, ce matin,"))
                page.check("input[name=address_confirmed]")
                page.check("input[name=reset_confirmed]")
                page.click("button[value=approve]")
                page.wait_for_selector("p.notice")
                assert "Réponse validée" in page.inner_text("p.notice")
                wait(lambda: len(relay.messages) == 1, 30, "the reply at the relay")
                assert "ce matin" in relay.messages[0].data.decode("utf-8", "replace") or \
                    b"ce matin" in relay.messages[0].data
                wait(lambda: _reloaded(page) and "Réponse envoyée" in page.content(), 30,
                     "the ticket shown as sent")
                page.screenshot(path=str(tmp_path / "ticket-sent.png"), full_page=True)
                browser.close()
            with dovecot.client(acc.user) as imap:
                delim = imap.list_folders("", "")[0][1].decode()
                wait(lambda: imap.folder_exists(f"Triage{delim}Traité") and imap.folder_status(
                    f"Triage{delim}Traité", [b"MESSAGES"])[b"MESSAGES"] == 1, 30,
                    "the original in Triage/Traité")
            assert len(relay.messages) == 1
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def _up(page, base: str) -> bool:
    try:
        return page.goto(f"{base}/healthz").status == 200
    except Exception:
        return False


def _ticket_listed(page, base: str) -> bool:
    page.goto(f"{base}/")
    return page.locator("table.queue a[href^='/tickets/']").count() > 0


def _reloaded(page) -> bool:
    page.reload()
    return True
