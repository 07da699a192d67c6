"""Live configuration: edits of the YAML reach a running daemon and web app without a restart;
an invalid edit is refused, logged once, and the previous configuration keeps running."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from triage.config import DEFAULT_CONFIG, load_settings
from triage.live import LiveConfig
from triage.testing.dovecot import free_port
from triage.testing.intake import deploy

DEV = Path(__file__).resolve().parent / "data" / "dev"
PASSWORD = "mot de passe solide"
REFUSED = "configuration reload refused"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def with_id(raw: bytes, message_id: str) -> bytes:
    return re.sub(rb"(?im)^Message-ID:.*$", f"Message-ID: <{message_id}>".encode(), raw, count=1)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                if text in line)


def test_live_config_reloads_valid_edits_and_refuses_invalid_ones_once(tmp_path, caplog):
    """LiveConfig puts a valid edit in force and tells its listeners; an invalid edit is
    refused with file, line and key, logged once however often it is looked at."""
    path = tmp_path / "departments.yaml"
    templates = DEFAULT_CONFIG.parent.parent / "templates"
    path.write_text(DEFAULT_CONFIG.read_text("utf-8").replace(
        "templates_dir: ../templates", f"templates_dir: {templates}"), "utf-8")
    live = LiveConfig(load_settings(path))
    seen: list[tuple[str, str]] = []
    live.subscribe(lambda old, new: seen.append((old.departments[2].name,
                                                 new.departments[2].name)))
    assert live.reload() is False  # nothing changed
    path.write_text(path.read_text("utf-8").replace("name: Isère", "name: Isère (Grenoble)"),
                    "utf-8")
    assert live.reload() is True
    assert live().department("38").name == "Isère (Grenoble)"
    assert seen == [("Isère", "Isère (Grenoble)")]

    caplog.set_level(logging.ERROR, logger="triage.config")
    path.write_text(path.read_text("utf-8").replace("batch_size: 100", "batch_size: beaucoup"),
                    "utf-8")
    line = line_of(path, "batch_size: beaucoup")
    assert live.reload() is False
    assert live.reload() is False and live.reload(force=True) is False  # same bad file
    refusals = [r for r in caplog.records if REFUSED in r.getMessage()]
    assert len(refusals) == 1
    assert f"{path}:{line}: imap.batch_size" in refusals[0].getMessage()
    assert live().imap.batch_size == 100 and live().department("38").name == "Isère (Grenoble)"
    assert live.last_error is not None and live.last_error.line == line


def test_edit_under_running_serve_then_invalid_edit(dovecot, tmp_path):
    """Under `triage serve`, a valid edit changes the drafts of the daemon and the pages of the
    web app with no restart; an invalid one is refused once in the log and both keep the
    previous configuration and keep working."""
    if not dovecot.running:
        dovecot.start()
    port = free_port()
    dep = deploy(dovecot, tmp_path, codes=("38",),
                 extra={"web": {"host": "127.0.0.1", "port": port}})
    config = dep.config_path
    add = subprocess.run([sys.executable, "-m", "triage", "agents", "add", "agent38", "-d", "38",
                          "--password-stdin", "--config", str(config)], input=PASSWORD + "\n",
                         capture_output=True, text=True, timeout=60)
    assert add.returncode == 0, add.stderr
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    server = subprocess.Popen([sys.executable, "-m", "triage", "serve", "--config", str(config)],
                              stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    acc = dep.account_of("38")
    base = f"http://127.0.0.1:{port}"

    def logged() -> str:
        return log_path.read_text("utf-8", "replace")

    try:
        wait_for(lambda: _up(base), 30, "triage serve")
        client = httpx.Client(base_url=base, timeout=20)
        page = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = client.post("/login", data={"login": "agent38", "password": PASSWORD, "csrf": csrf,
                                        "next": "/"})
        assert r.status_code == 303

        dovecot.append(acc.user, acc.password, "INBOX",
                       with_id((DEV / "065.eml").read_bytes(), "before@live"))
        wait_for(lambda: _ticket_count(client) == 1, 30, "the first ticket")
        first = _ticket_page(client, 1)
        assert "Direction départementale des Finances publiques de l&#39;Isère" in first
        assert "38 – Isère</option>" in first

        # A valid edit: the department's name and signature change.
        data = yaml.safe_load(config.read_text("utf-8"))
        isere = next(d for d in data["departments"] if d["code"] == "38")
        isere["name"] = "Isère et Grenoble"
        isere["signature"] = isere["signature"].rstrip("\n") + " (signature modifiée)\n"
        config.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
        wait_for(lambda: "configuration reloaded" in logged(), 15, "the reload")
        assert "38 – Isère et Grenoble</option>" in _ticket_page(client, 1)
        dovecot.append(acc.user, acc.password, "INBOX",
                       with_id((DEV / "063.eml").read_bytes(), "after@live"))
        wait_for(lambda: _ticket_count(client) == 2, 30, "the second ticket")
        assert "(signature modifiée)" in _ticket_page(client, 2)

        # An invalid edit: refused with file, line and key, once; the previous one runs on.
        text = config.read_text("utf-8")
        config.write_text(text.replace("batch_size: 100", "batch_size: beaucoup"), "utf-8")
        line = line_of(config, "batch_size: beaucoup")
        wait_for(lambda: REFUSED in logged(), 15, "the refusal")
        time.sleep(5)  # two more looks at the unchanged, still invalid file
        server.send_signal(signal.SIGHUP)  # and an explicit reload of the same file
        time.sleep(1)
        assert logged().count(REFUSED) == 1
        assert f"{config}:{line}: imap.batch_size" in logged()
        dovecot.append(acc.user, acc.password, "INBOX",
                       with_id((DEV / "011.eml").read_bytes(), "invalid@live"))
        wait_for(lambda: _ticket_count(client) == 3, 30, "the third ticket")
        third = _ticket_page(client, 3)
        assert "38 – Isère et Grenoble</option>" in third
        assert server.poll() is None
        assert logged().count("daemon started") == 1  # never restarted
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _ticket_count(client: httpx.Client) -> int:
    page = client.get("/?status=all").text
    return len(set(re.findall(r'href="/tickets/(\d+)"', page)))


def _ticket_page(client: httpx.Client, ticket: int) -> str:
    return client.get(f"/tickets/{ticket}").text


def test_replay_dry_run_days_prints_the_decisions_that_would_change(tmp_path):
    """`replay --dry-run --days N --config NEW` decides the archived mail again with the
    candidate configuration and prints only the decisions that would change; nothing is
    written to the store."""
    root = DEFAULT_CONFIG.parent.parent
    live = tmp_path / "live.yaml"
    source = DEFAULT_CONFIG.read_text("utf-8")
    live.write_text(source.replace("templates_dir: ../templates",
                                   f"templates_dir: {root / 'templates'}")
                    .replace("data_dir: ../var", f"data_dir: {tmp_path / 'var'}"), "utf-8")
    names = ("047.eml", "065.eml", "063.eml", "016.eml")
    loaded = subprocess.run([sys.executable, "-m", "triage", "replay", "--config", str(live),
                             *[str(DEV / n) for n in names]], capture_output=True, text=True,
                            timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    # The candidate trusts another authentication server: the DMARC failure that the trusted
    # server stamped on 047.eml no longer counts, so it would go to an agent, not quarantine.
    candidate = tmp_path / "candidate.yaml"
    text = live.read_text("utf-8")
    assert "  - mx.dgfip.finances.gouv.fr\n" in text
    candidate.write_text(text.replace("  - mx.dgfip.finances.gouv.fr\n",
                                      "  - mx.autre.example.org\n"), "utf-8")

    def dry_run(config: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "triage", "replay", "--dry-run", "--days",
                               "7", "--config", str(config), "--store-config", str(live)],
                              capture_output=True, text=True, timeout=120)

    same = dry_run(live)
    assert same.returncode == 0, same.stderr
    assert "4 messages of the last 7 days" in same.stdout
    assert "0 decisions would change" in same.stdout
    changed = dry_run(candidate)
    assert changed.returncode == 0, changed.stderr
    lines = [ln for ln in changed.stdout.splitlines() if ln.startswith("T")]
    assert len(lines) == 1 and "047.eml" in lines[0]
    assert "action quarantine -> human" in lines[0]
    assert "1 decision would change (action: 1)" in changed.stdout
    db = subprocess.run([sys.executable, "-c", "import sqlite3,sys; print(sqlite3.connect("
                         "sys.argv[1]).execute('select count(*) from tickets').fetchone()[0])",
                         str(tmp_path / "var" / "triage.sqlite3")], capture_output=True,
                        text=True)
    assert db.stdout.strip() == "4"


def test_mailbox_settings_edit_restarts_the_workers_and_they_keep_triaging(dovecot, tmp_path):
    """An edit of the IMAP settings under a running daemon restarts its mailbox workers with
    the new settings (from the watcher thread), and mail keeps being triaged."""
    from triage.mailbox.daemon import Daemon
    from triage.store import Store

    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("73",))
    store = Store.open(dep.settings)
    daemon = Daemon(dep.settings, dep.config_path, store, watch_interval=0.2)
    daemon.start()
    acc = dep.account_of("73")
    try:
        first_scheduler = daemon.scheduler
        data = yaml.safe_load(dep.config_path.read_text("utf-8"))
        data["imap"]["poll_interval"] = 0.7
        dep.config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                   "utf-8")
        wait_for(lambda: daemon.scheduler is not first_scheduler, 10, "the workers' restart")
        assert daemon.settings().imap.poll_interval == 0.7
        job = daemon.scheduler.get_job("poll:ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr")
        assert job.trigger.interval.total_seconds() == 0.7
        dovecot.append(acc.user, acc.password, "INBOX",
                       with_id((DEV / "069.eml").read_bytes(), "restart@live"))
        wait_for(lambda: store.count_tickets() == 1, 20, "the ticket after the restart")
    finally:
        daemon.stop()
        store.dispose()
    assert not daemon.live._thread  # the watcher stopped with the daemon
