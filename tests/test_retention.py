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
