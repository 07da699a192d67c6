"""Sending approved replies through a real SMTP server (aiosmtpd), exactly once."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from triage.config import Settings
from triage.lifecycle import Event
from triage.review.agents import add_agent
from triage.review.moderation import handle
from triage.send.sender import send_due
from triage.store import OutboxItem, Store, Ticket
from triage.testing.intake import Deployment, deploy
from triage.testing.smtp import SmtpRelay

DEV = Path(__file__).resolve().parent.parent / "data" / "dev"


@pytest.fixture
def relay():
    with SmtpRelay() as relay:
        yield relay


@pytest.fixture
def world(dovecot, relay, tmp_path) -> tuple[Deployment, Store]:
    """A deployment whose 38 mailbox received 065.eml, triaged by `run --once`."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38",), smtp_port=relay.port)
    acc = dep.account_of("38")
    dovecot.append(acc.user, acc.password, "INBOX", (DEV / "065.eml").read_bytes())
    run = subprocess.run([sys.executable, "-m", "triage", "run", "--once", "--config",
                          str(dep.config_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    store = Store.open(dep.settings)
    with store.session() as s:
        add_agent(s, dep.settings, "agent38", "correct horse battery", ["38"])
        s.commit()
    yield dep, store
    store.dispose()


def approve(settings: Settings, store: Store, body: str = "Bonjour,\n\nC'est fait.\n") -> int:
    with store.session() as s:
        ticket = s.scalar(select(Ticket))
        agent = s.scalar(select(__import__("triage.store", fromlist=["Agent"]).Agent))
        handle(s, settings, agent, ticket, Event.APPROVE,
               {"body": body, "address_confirmed": "yes", "reset_confirmed": "yes"})
        s.commit()
        return ticket.id


def outbox_state(store: Store) -> tuple[str, int, str | None]:
    with store.session() as s:
        item = s.scalar(select(OutboxItem))
        return item.state, item.attempts, item.last_error


def test_reply_envelope_headers_body_and_filing(world, relay, dovecot):
    """The relay gets one reply from the department to the From address only, threaded, in
    UTF-8; a copy lands in Sent and the original in Triage/Traité."""
    dep, store = world
    ticket_id = approve(dep.settings, store, "Bonjour Aurélie,\n\nVotre accès est rétabli.\n")
    assert send_due(dep.settings, store, "test") == 1
    assert len(relay.messages) == 1
    got = relay.messages[0]
    assert got.mail_from == "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"
    assert got.rcpt_tos == ["aurelie.martin@ville-voiron.fr"]
    msg = email.message_from_bytes(got.data, policy=email.policy.default)
    assert msg["From"].addresses[0].addr_spec == "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"
    assert msg["To"] == "aurelie.martin@ville-voiron.fr"
    assert msg["Cc"] is None and msg["Reply-To"] is None
    assert msg["Subject"].startswith("Re: Chorus Pro - mot de passe")
    assert f"[réf. T{ticket_id}]" in msg["Subject"]
    original = email.message_from_bytes((DEV / "065.eml").read_bytes(),
                                        policy=email.policy.default)["Message-ID"]
    assert msg["In-Reply-To"] == original
    assert original in msg["References"]
    assert msg["Message-ID"].endswith("@triage.dgfip.finances.gouv.fr>")
    assert msg["X-Triage-Loop"]
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content().replace("\r\n", "\n")
    assert body == "Bonjour Aurélie,\n\nVotre accès est rétabli.\n"
    assert outbox_state(store)[0] == "sent"
    acc = dep.account_of("38")
    with dovecot.client(acc.user) as imap:
        delim = imap.list_folders("", "")[0][1].decode()
        assert imap.folder_status("Sent", [b"MESSAGES"])[b"MESSAGES"] == 1
        handled = f"Triage{delim}Traité"
        assert imap.folder_status(handled, [b"MESSAGES"])[b"MESSAGES"] == 1
    with store.session() as s:
        assert s.scalar(select(Ticket.status)) == "sent"
    assert send_due(dep.settings, store, "test") == 0 and len(relay.messages) == 1


def test_451_three_times_then_250_sends_once(world, relay):
    """A relay answering 451 three times then 250 gets the reply exactly once."""
    dep, store = world
    relay.handler.temporary_failures = 3
    approve(dep.settings, store)
    deadline = time.monotonic() + 60
    while outbox_state(store)[0] != "sent" and time.monotonic() < deadline:
        send_due(dep.settings, store, "test")
        time.sleep(0.2)
    state, attempts, _ = outbox_state(store)
    assert state == "sent" and attempts == 3
    assert len(relay.messages) == 1


def test_550_goes_back_to_an_agent_and_is_not_resent(world, relay):
    """A 550 marks the reply failed, reopens the ticket with the error, and never resends."""
    dep, store = world
    relay.handler.refuse = True
    approve(dep.settings, store)
    send_due(dep.settings, store, "test")
    state, _attempts, error = outbox_state(store)
    assert state == "failed" and error is not None and error.startswith("550")
    with store.session() as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.status == "open" and "550" in (ticket.error or "")
    relay.handler.refuse = False
    assert send_due(dep.settings, store, "test") == 0
    assert relay.messages == []


def test_relay_down_for_a_minute_then_back(world, relay):
    """With the relay down for a minute, the reply waits and then goes out once."""
    dep, store = world
    relay.stop()
    approve(dep.settings, store)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            send_due(dep.settings, store, "test")
            time.sleep(0.5)

    sender = threading.Thread(target=loop, daemon=True)
    sender.start()
    time.sleep(60)
    assert outbox_state(store)[0] == "approved" and outbox_state(store)[1] >= 3
    relay.start()
    deadline = time.monotonic() + 30
    while outbox_state(store)[0] != "sent" and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    sender.join(5)
    assert outbox_state(store)[0] == "sent"
    assert len(relay.messages) == 1


def test_sigkill_after_acceptance_sends_once(world, relay):
    """Killed right after the relay's 250 and before the outbox update, then restarted: one
    reply at the relay, and the outbox says sent."""
    dep, store = world
    approve(dep.settings, store)
    args = ["run", "--once", "--config", str(dep.config_path)]
    command = [sys.executable, "-m", "triage", *args]
    crashed = subprocess.run([sys.executable, "-m", "triage.testing.faults",
                              "after-smtp-accept", *args],
                             capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -9  # SIGKILL, at the fault point
    assert len(relay.messages) == 1
    assert outbox_state(store)[0] == "committing"
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert outbox_state(store)[0] == "sent"
    assert len(relay.messages) == 1


def test_filing_an_answered_request_finds_only_its_exact_message_id(dovecot, tmp_path):
    """Through Dovecot: the sender's lookup of the answered request (``Connection.uids_of``)
    names only the message whose Message-ID is exactly the ticket's, not every message whose
    Message-ID contains it (IMAP SEARCH HEADER is a substring match), so a sender whose
    Message-ID is ``<.>`` cannot have other people's waiting mail filed as handled."""
    from triage.mailbox.connection import Connection
    from triage.testing.intake import deploy

    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=("38",))
    account = dep.account_of("38")
    to = b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: mot de passe\r\n"
    for sender, message_id in ((b"paul.martin@ville-voiron.fr", b"<victim.1@ville-voiron.fr>"),
                               (b"eve@ville-voiron.fr", b"<.>")):
        dovecot.append(account.user, account.password, "INBOX",
                       b"From: " + sender + b"\r\n" + to + b"Message-ID: " + message_id
                       + b"\r\n\r\ntexte\r\n")
    box = dep.settings.mailboxes[0]
    watch = dep.settings.mailbox_folders(box).watch
    with Connection(dep.settings, box).open() as conn:
        conn.examine(watch)
        victim, eve = conn.uids()
        assert conn.uids_of(watch, "<.>") == [eve]
        assert conn.uids_of(watch, "victim.1@ville-voiron.fr") == [victim]
        assert conn.uids_of(watch, "ville-voiron.fr") == []
