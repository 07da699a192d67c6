"""Retention of personal data: purge with an elimination record, and access exports."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from tests.review.conftest import DEV, make_settings
from triage.pipeline import triage_bytes
from triage.retention import ERASED, export_person, plan
from triage.store import AuditEvent, Elimination, Store, Ticket


def _store(tmp_path, store_url, **extra):
    settings = make_settings(tmp_path, store={"url": store_url}, **extra)
    store = Store.open(settings)
    for name in ("020.eml", "063.eml", "065.eml"):
        raw = (DEV / name).read_bytes()
        store.record(triage_bytes(raw, settings), raw, origin=f"test:{name}")
    return settings, store


def _age(store: Store, origin: str, days: int) -> None:
    old = datetime.now(UTC) - timedelta(days=days)
    with store.session() as s:
        s.execute(update(Ticket).where(Ticket.origin.like(f"%{origin}")).values(created_at=old))
        s.execute(update(AuditEvent).values(at=old))
        s.commit()


def cli(settings, *args):
    return subprocess.run([sys.executable, "-m", "triage", *args, "--config", settings.source],
                          capture_output=True, text=True, timeout=60)


def test_purge_needs_authorisation_and_records_elimination(tmp_path, store_url):
    """Purging old data needs the archive authorisation and leaves an elimination record."""
    settings, store = _store(tmp_path, store_url)
    _age(store, "020.eml", 400)
    dry = cli(settings, "purge", "--dry-run")
    assert dry.returncode == 0 and "raw_messages          1" in dry.stdout
    refused = cli(settings, "purge")
    assert refused.returncode == 2 and "--authorisation" in refused.stderr
    done = cli(settings, "purge", "--authorisation", "VISA-2026-042")
    assert done.returncode == 0, done.stderr
    with store.session() as s:
        old = s.scalar(select(Ticket).where(Ticket.origin.like("%020.eml")))
        assert old.raw == b"" and old.sender == ERASED and old.subject == ERASED
        assert old.attachments == []  # the attachment names go with the message
        fresh = s.scalar(select(Ticket).where(Ticket.origin.like("%063.eml")))
        assert fresh.raw != b"" and "claire.bouvier" in fresh.sender
        record = s.scalar(select(Elimination))
        assert record.authorisation == "VISA-2026-042"
        assert record.counts["raw_messages"] == 1 and record.settings["raw_messages_days"] == 365
        assert plan(s, settings)["raw_messages"] == 0


def test_purge_without_authorisation_when_none_applies(tmp_path, store_url):
    """Where the configuration says no authorisation applies, purge runs without one."""
    settings, store = _store(tmp_path, store_url, retention={"authorisation_required": False,
                                                  "raw_messages_days": 30})
    _age(store, "063.eml", 31)
    assert cli(settings, "purge").returncode == 0
    with store.session() as s:
        assert s.scalar(select(Elimination)).authorisation is None


def test_export_gathers_one_person(tmp_path, store_url):
    """The access export holds that person's messages, decisions, drafts and audit, and only
    theirs."""
    settings, store = _store(tmp_path, store_url)
    with store.session() as s:
        data = export_person(s, "Claire.Bouvier@ville-crolles.fr")
    assert [t["intent"] for t in data["tickets"]] == ["expired_password"]
    assert "cbouvier-xt" in data["tickets"][0]["message"]
    assert data["drafts"][0]["to"] == "claire.bouvier@ville-crolles.fr"
    assert any(e["event"] == "ticket.created" for e in data["audit"])
    out = tmp_path / "export.json"
    run = cli(settings, "export", "--email", "nathalie.reynaud@mairie-crest.fr", "--output",
              str(out))
    assert run.returncode == 0
    exported = json.loads(out.read_text("utf-8"))
    assert len(exported["tickets"]) == 1 and exported["tickets"][0]["department"] == "26"


def test_purge_erases_the_requester_and_export_finds_it(tmp_path, store_url):
    """Purge erases the requester's address with the sender's; the access export finds a
    ticket by its requester even when the stored sender (a long display name, cut at 400
    characters) no longer holds the address."""
    settings, store = _store(tmp_path, store_url)
    name = "Service " + "très " * 100
    raw = (f"From: {name} <l.long@ville-crolles.fr>\r\n"
           "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mdp\r\n"
           "Message-ID: <long@test>\r\n\r\nBonjour, mon mot de passe Chorus Pro a expiré.\r\n"
           ).encode()
    store.record(triage_bytes(raw, settings), raw, origin="test:long")
    with store.session() as s:
        exported = export_person(s, "L.Long@ville-crolles.fr")
    assert [t["message_id"] for t in exported["tickets"]] == ["long@test"]
    _age(store, "020.eml", 400)
    assert cli(settings, "purge", "--authorisation", "VISA-2026-043").returncode == 0
    with store.session() as s:
        old = s.scalar(select(Ticket).where(Ticket.origin.like("%020.eml")))
        assert old.sender == ERASED and old.requester is None
        fresh = s.scalar(select(Ticket).where(Ticket.origin.like("%063.eml")))
        assert fresh.requester == "claire.bouvier@ville-crolles.fr"


def test_export_takes_the_address_literally(tmp_path, store_url):
    """The export finds a sender in the stored From by the address as written: a ``%`` or
    ``_`` in it matches only itself, not someone else's tickets."""
    _settings, store = _store(tmp_path, store_url)
    with store.session() as s:  # tickets stored before the requester column: From only
        s.execute(update(Ticket).values(requester=None))
        s.commit()
        assert len(export_person(s, "claire.bouvier@ville-crolles.fr")["tickets"]) == 1
        assert export_person(s, "c_aire.bouvier@ville-crolles.fr")["tickets"] == []
        assert export_person(s, "%")["tickets"] == []
        assert export_person(s, "%@%")["tickets"] == []


def test_housekeeping_purges_old_sign_ins(tmp_path, store_url):
    """The daemon's housekeeping and `triage purge` delete the web sessions ended or opened
    before `retention.logs_days` and the login attempts made before; recent ones stay."""
    from triage.mailbox.daemon import Daemon
    from triage.review.agents import add_agent
    from triage.store import LoginAttempt, WebSession

    settings, store = _store(tmp_path, store_url, retention={"logs_days": 30})
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    with store.session() as s:
        agent = add_agent(s, settings, "agent38", "correct horse battery", ["38"])
        s.add_all([
            WebSession(id="ended-long-ago", agent_id=agent.id, created_at=old, ended_at=old),
            WebSession(id="expired-long-ago", agent_id=agent.id, created_at=old,
                       last_seen_at=old),
            WebSession(id="ended-lately", agent_id=agent.id, created_at=recent,
                       ended_at=recent),
            WebSession(id="standing", agent_id=agent.id),
            LoginAttempt(login="agent38", address="10.0.0.1", success=False, at=old),
            LoginAttempt(login="agent38", address="10.0.0.1", success=True, at=recent)])
        s.commit()
    Daemon(settings, None, store).housekeeping()
    with store.session() as s:
        assert sorted(s.scalars(select(WebSession.id))) == ["ended-lately", "standing"]
        assert list(s.scalars(select(LoginAttempt.at))) == [recent]
        s.add(LoginAttempt(login="agent38", address="10.0.0.2", success=False, at=old))
        s.commit()
    done = cli(settings, "purge", "--authorisation", "VISA-2026-044")
    assert done.returncode == 0, done.stderr
    assert "0 web sessions and 1 login attempts" in done.stdout
    with store.session() as s:
        assert list(s.scalars(select(LoginAttempt.address))) == ["10.0.0.1"]


def test_housekeeping_keeps_the_attempts_the_throttle_reads(tmp_path, store_url):
    """A login window longer than `retention.logs_days` keeps its failed attempts through the
    purge: housekeeping never lifts a throttled login's wait."""
    from triage.retention import housekeep
    from triage.review.sessions import login_wait
    from triage.store import LoginAttempt

    settings, store = _store(tmp_path, store_url, retention={"logs_days": 1},
                             web={"login_window_minutes": 3 * 24 * 60, "login_attempts": 3})
    now = datetime.now(UTC)
    with store.session() as s:
        s.add_all([LoginAttempt(login="agent38", address="10.0.0.1", success=False,
                                at=now - timedelta(days=2, minutes=i)) for i in range(6)])
        s.add(LoginAttempt(login="agent38", address="10.0.0.1", success=False,
                           at=now - timedelta(seconds=10)))
        s.commit()
        waiting = login_wait(s, settings, "agent38", "10.0.0.1", now)
        assert waiting > 0
        housekeep(s, settings, now)
        s.commit()
        assert login_wait(s, settings, "agent38", "10.0.0.1", now) == waiting
