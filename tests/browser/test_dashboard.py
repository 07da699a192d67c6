"""The dashboard in a real browser: Chromium (Playwright) against `triage serve`, with Dovecot
for the mailboxes and aiosmtpd as the relay; the charts must show the test's own data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text

from triage.review.views import INTENTS
from triage.testing.dovecot import free_port
from triage.testing.intake import deploy
from triage.testing.smtp import SmtpRelay

DEV = Path(__file__).resolve().parent.parent / "data" / "dev"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "mot de passe solide"
MAIL = {"38": ("065.eml", "063.eml", "002.eml", "016.eml"), "73": ("069.eml", "035.eml")}
NAMES = {"38": "38 Isère", "73": "73 Savoie"}


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def add_agent(config: Path, login: str, codes: str, role: str) -> None:
    done = subprocess.run([sys.executable, "-m", "triage", "agents", "add", login, "-d", codes,
                           "--role", role, "--password-stdin", "--config", str(config)],
                          input=PASSWORD + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def http_login(base: str, login: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=20)
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"login": login, "password": PASSWORD, "csrf": csrf,
                                       "next": "/"}).status_code == 303
    return client, re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


def browser_login(page, base: str, login: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("table.queue, p")


def chart_values(page, chart: str, attribute: str = "data-series") -> Counter[str]:
    """Sum of the bars' values in ``chart`` by series (or by row)."""
    bars = page.locator(f"svg#chart-{chart} rect.bar")
    out: Counter[str] = Counter()
    for i in range(bars.count()):
        bar = bars.nth(i)
        out[bar.get_attribute(attribute)] += float(bar.get_attribute("data-value"))
    return out


def test_dashboard_charts_show_the_tests_data(dovecot, tmp_path):
    """Tickets of two departments arrive; an agent approves a draft as it is, edits and approves
    another and rejects a third; the admin's dashboard charts count exactly these, rendered by
    Chromium without CSP violations; the team lead sees only their department; agents get 403."""
    if not dovecot.running:
        dovecot.start()
    with SmtpRelay() as relay:
        port = free_port()
        dep = deploy(dovecot, tmp_path, codes=tuple(MAIL), smtp_port=relay.port,
                     extra={"web": {"host": "127.0.0.1", "port": port}})
        add_agent(dep.config_path, "admin", "38,73", "admin")
        add_agent(dep.config_path, "lead38", "38", "lead")
        add_agent(dep.config_path, "agent38", "38", "agent")
        log = (tmp_path / "serve.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "triage", "serve", "--config",
                                   str(dep.config_path)], stdout=log, stderr=log,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            for code, names in MAIL.items():
                acc = dep.account_of(code)
                for name in names:
                    dovecot.append(acc.user, acc.password, "INBOX", (DEV / name).read_bytes())
            total = sum(len(v) for v in MAIL.values())
            wait(lambda: rows(dep.store_url, "select count(*) from tickets") == [(total,)], 40,
                 "every ticket")
            drafts = dict(rows(dep.store_url, "select t.origin || ':' || t.message_id, t.id "
                                              "from tickets t where t.action = 'draft' and "
                                              "t.department = '38' order by t.id"))
            ids = list(drafts.values())
            assert len(ids) >= 3, drafts

            agent, csrf = http_login(base, "agent38")
            as_is, edited, rejected = ids[:3]
            for ticket, form in ((as_is, {}), (edited, {"body": "Bonjour,\n\nTexte revu.\n"}),):
                r = agent.post(f"/tickets/{ticket}/approve", follow_redirects=True,
                               data={"csrf": csrf, "address_confirmed": "yes",
                                                   "reset_confirmed": "yes", **form})
                assert "Réponse validée" in r.text, r.text[-2000:]
            r = agent.post(f"/tickets/{rejected}/reject", follow_redirects=True,
                           data={"csrf": csrf, "reason": "Identifiant à vérifier"})
            assert "rejeté" in r.text
            wait(lambda: len(relay.messages) == 2, 30, "both replies at the relay")
            wait(lambda: rows(dep.store_url, "select count(*) from outbox where state='sent'")
                 == [(2,)], 30, "both replies recorded as sent")
            assert agent.get("/dashboard").status_code == 403
            agent.close()

            by_dept = Counter({NAMES[d]: n for d, n in rows(
                dep.store_url, "select department, count(*) from tickets group by department")})
            by_intent = Counter({INTENTS[i]: n for i, n in rows(
                dep.store_url, "select intent, count(*) from tickets group by intent")})
            pending = rows(dep.store_url, "select count(*) from drafts where status='pending'")
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page()
                problems: list[str] = []
                page.on("console", lambda m: problems.append(m.text) if m.type in (
                    "error", "warning") else None)
                browser_login(page, base, "admin")
                page.click("a[href='/dashboard']")
                page.wait_for_selector("svg#chart-departements")
                for chart in ("departements", "demandes", "brouillons", "delais", "attente"):
                    box = page.locator(f"svg#chart-{chart}").bounding_box()
                    assert box and box["width"] > 300 and box["height"] > 40, (chart, box)
                assert chart_values(page, "departements") == by_dept
                assert chart_values(page, "demandes") == by_intent
                assert chart_values(page, "brouillons") == Counter({
                    "validés sans modification": 1, "modifiés puis validés": 1, "rejetés": 1})
                delays = chart_values(page, "delais", "data-row")
                assert set(delays) == {"Tous", "38 Isère"}
                assert page.locator("#delais tr[data-department='Tous'] td").nth(1)\
                    .inner_text() == "2"
                assert page.locator("svg#chart-attente rect.bar").count() == pending[0][0] > 0
                # The bars were painted with the stylesheet's colours, not left black.
                fill = page.locator("svg#chart-departements rect.bar").first.evaluate(
                    "e => getComputedStyle(e).fill")
                assert fill not in ("", "rgb(0, 0, 0)"), fill
                page.screenshot(path=str(tmp_path / "dashboard-admin.png"), full_page=True)
                assert not [p for p in problems if "Content Security Policy" in p], problems

                lead = browser.new_page()
                browser_login(lead, base, "lead38")
                lead.goto(f"{base}/dashboard")
                assert set(chart_values(lead, "departements")) == {"38 Isère"}
                assert chart_values(lead, "departements")["38 Isère"] == by_dept["38 Isère"]
                assert "Aucun brouillon en attente" in lead.content()
                lead.screenshot(path=str(tmp_path / "dashboard-lead.png"), full_page=True)
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
