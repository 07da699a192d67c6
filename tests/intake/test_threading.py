"""Through Dovecot and `triage run --once`: who may join a ticket, and the per-sender daily
limit decided alike by the daemon, its audit trail and `triage explain`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from triage.lifecycle import Event
from triage.review.agents import add_agent
from triage.review.moderation import current_draft, handle
from triage.send.sender import send_due
from triage.store import Agent, AuditEvent, Store, Ticket
from triage.testing.intake import deploy
from triage.testing.smtp import SmtpRelay

from .conftest import DEV
from .test_intake import run_once, with_id

STRANGER = ("From: Mallory <mallory@evil.example>\r\n"
            "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
            "Subject: Re: Chorus Pro - mot de passe [réf. T{n}]\r\n"
            "Date: Fri, 16 Jan 2026 10:00:00 +0100\r\n"
            "Message-ID: <stranger-{n}@evil.example>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Bonjour, j'ai oublié mon mot de passe Chorus Pro, identifiant a.martin-xt.\r\n"
            "Merci de me répondre à cette adresse.\r\n")


def test_a_strangers_reference_through_dovecot_gets_no_reply(dovecot, tmp_path):
    """A stranger's `[réf. Tn]` mail opens its own ticket; approving Tn answers only its
    requester, and the stranger receives nothing about Tn."""
    if not dovecot.running:
        dovecot.start()
    with SmtpRelay() as relay:
        dep = deploy(dovecot, tmp_path, codes=("38",), smtp_port=relay.port)
        acc = dep.account_of("38")
        dovecot.append(acc.user, acc.password, "INBOX", (DEV / "065.eml").read_bytes())
        assert run_once(dep).returncode == 0
        store = Store.open(dep.settings)
        with store.session() as s:
            first = s.scalar(select(Ticket.id))
            add_agent(s, dep.settings, "agent38", "correct horse battery", ["38"])
            s.commit()
        dovecot.append(acc.user, acc.password, "INBOX", STRANGER.format(n=first).encode())
        assert run_once(dep).returncode == 0
        with store.session() as s:
            stranger = s.scalar(select(Ticket).where(Ticket.id != first))
            assert stranger is not None
            assert stranger.parent_id is None and stranger.mentions_id == first
            ticket = s.get(Ticket, first)
            draft = current_draft(s, ticket)
            assert draft is not None and draft.to_addr == "aurelie.martin@ville-voiron.fr"
            handle(s, dep.settings, s.scalar(select(Agent)), ticket, Event.APPROVE,
                   {"address_confirmed": "yes", "reset_confirmed": "yes"})
            s.commit()
        send_due(dep.settings, store, "test")
        assert [m.rcpt_tos for m in relay.messages] == [["aurelie.martin@ville-voiron.fr"]]
        store.dispose()


def test_daily_limit_alike_in_daemon_audit_and_explain(dovecot, tmp_path):
    """The fourth request of a day from one sender: the stored decision, the audit entry and
    `triage explain --history` all say `human` by the daily-limit link; `explain` without
    the history says the limit was not checked."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38",))
    acc = dep.account_of("38")
    raw = (DEV / "065.eml").read_bytes()
    files = []
    for n in range(4):
        one = with_id(raw, f"limit-{n}@ville-voiron.fr")
        dovecot.append(acc.user, acc.password, "INBOX", one)
        files.append(tmp_path / f"limit-{n}.eml")
        files[-1].write_bytes(one)
    assert run_once(dep).returncode == 0
    store = Store.open(dep.settings)
    with store.session() as s:
        stored = [(t.action, t.template) for t in s.scalars(select(Ticket).order_by(Ticket.id))]
        audited = [(e.detail["action"], e.detail["template"]) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.event == "ticket.created")
            .order_by(AuditEvent.ticket_id))]
    store.dispose()
    assert stored == [("draft", "reset_password")] * 3 + [("human", None)]
    assert audited == stored
    explained = [_explain(dep.config_path, f, "--history") for f in files]
    assert [(e["action"], e["template"]) for e in explained] == stored
    assert any("24 h" in r for r in explained[3]["reasons"])
    alone = _explain(dep.config_path, files[3])
    assert alone["action"] == "draft"
    assert any("non vérifiée" in r for r in alone["reasons"])


def _explain(config: Path, path: Path, *flags: str) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-m", "triage", "explain", "--json", *flags,
                          "--mailbox", "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr",
                          "--config", str(config), str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout.splitlines()[0])
    return result
