"""Follow-ups attach to their ticket; agents and audit commands; session timeouts."""

from __future__ import annotations

import subprocess
import sys
import time

from sqlalchemy import select

from triage.lifecycle import Event
from triage.pipeline import triage_bytes
from triage.review.moderation import handle
from triage.review.sessions import SessionCodec, SessionData
from triage.store import Agent, OutboxItem, Ticket

from .conftest import ticket_id


def test_reply_in_thread_reopens_the_ticket(store, settings):
    """A sender's answer to our reply attaches to the ticket and puts it back in the queue."""
    first = ticket_id(store, "063.eml")
    with store.session() as s:
        ticket = s.get(Ticket, first)
        agent = s.scalar(select(Agent).where(Agent.login == "agent38"))
        handle(s, settings, agent, ticket, Event.APPROVE, {"address_confirmed": "yes",
                                                          "reset_confirmed": "yes"})
        s.commit()
        our_id = s.scalar(select(OutboxItem.message_id))
        s.get(Ticket, first).status = "sent"
        s.commit()
    answer = (f"From: Claire Bouvier <claire.bouvier@ville-crolles.fr>\r\n"
              f"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
              f"Subject: Re: Chorus Pro - mot de passe expire\r\n"
              f"In-Reply-To: <{our_id}>\r\nReferences: <{our_id}>\r\n"
              f"Message-ID: <answer@test>\r\n\r\nJe n'ai pas recu le courriel, pouvez-vous "
              f"renvoyer un mot de passe ?\r\n").encode()
    child, created = store.record(triage_bytes(answer, settings), answer, origin="test:answer")
    assert created and child.parent_id == first
    with store.session() as s:
        assert s.get(Ticket, first).status == "open"
        heads = s.scalars(select(Ticket.id).where(Ticket.parent_id.is_(None))).all()
        assert child.id not in heads


def test_subject_reference_attaches_too(store, settings):
    """Without threading headers, the ticket reference in the subject attaches the reply."""
    first = ticket_id(store, "020.eml")
    raw = (f"From: Nathalie Reynaud <nathalie.reynaud@mairie-crest.fr>\r\n"
           f"To: ddfip26.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
           f"Subject: Re: Demande [réf. T{first}]\r\nMessage-ID: <ref@test>\r\n\r\n"
           f"Toujours bloquée, merci.\r\n").encode()
    child, _ = store.record(triage_bytes(raw, settings), raw, origin="test:ref")
    assert child.parent_id == first


def test_session_timeouts(settings):
    """A session past the inactivity or absolute limit is refused; a fresh one is accepted."""
    codec = SessionCodec(settings)
    now = time.time()
    fresh = SessionData(1, 0, "sid", "csrf", now, now)
    assert codec.decode(codec.encode(fresh)) is not None
    idle = SessionData(1, 0, "sid", "csrf", now, now - settings.web.session_idle_minutes * 60 - 5)
    assert codec.decode(codec.encode(idle)) is None
    old = SessionData(1, 0, "sid", "csrf", now - settings.web.session_max_hours * 3600 - 5, now)
    assert codec.decode(codec.encode(old)) is None
    assert codec.decode(codec.encode(fresh)[:-2] + "xx") is None


def _triage(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage", *args, "--config", settings.source],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_agents_and_audit_commands(settings, store):
    """agents add/list/passwd/disable work from the command line and show in the audit."""
    run = _triage(settings, "agents", "add", "newbie", "-d", "07,26", "--password-stdin",
                  stdin="un mot de passe long\n")
    assert run.returncode == 0, run.stderr
    assert "newbie" in _triage(settings, "agents", "list").stdout
    bad = _triage(settings, "agents", "add", "x", "-d", "99", "--password-stdin",
                  stdin="un mot de passe long\n")
    assert bad.returncode == 2 and "unknown departments" in bad.stderr
    assert _triage(settings, "agents", "passwd", "newbie", "--password-stdin",
                   stdin="un autre mot de passe\n").returncode == 0
    assert _triage(settings, "agents", "disable", "newbie").returncode == 0
    listing = _triage(settings, "agents", "list").stdout
    assert "disabled" in next(line for line in listing.splitlines() if "newbie" in line)
    audit = _triage(settings, "audit").stdout
    assert "agent.added" in audit and "agent.disabled" in audit and "ticket.created" in audit
    one = _triage(settings, "audit", "--ticket", str(ticket_id(store, "020.eml"))).stdout
    assert one.count("ticket.created") == 1 and "Z  #" in one
    assert "state: open; actions allowed now: approve, handled, reassign" in one
