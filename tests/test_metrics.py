"""Prometheus metrics and readiness, against a daemon that triaged real mail from Dovecot."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from triage.lifecycle import Event
from triage.mailbox.daemon import Daemon
from triage.metrics import MESSAGE_SECONDS, POLL_ERRORS, families
from triage.pipeline import triage_bytes
from triage.review.agents import add_agent
from triage.review.moderation import handle
from triage.review.web import create_app
from triage.store import Agent, Store, Ticket
from triage.testing.dovecot import free_port
from triage.testing.intake import deploy
from triage.testing.smtp import SmtpRelay

DEV = Path(__file__).resolve().parent / "data" / "dev"
# Messages by mailbox: drafts, a human question, an automatic reply and a quarantine.
MAIL = {"38": ("065.eml", "063.eml", "050.eml", "016.eml"),
        "73": ("069.eml", "056.eml"),
        "26": ("020.eml", "047.eml")}


def samples(metrics_text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name``, by their sorted labels."""
    out = {}
    for family in families(metrics_text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def histogram_count(name: str, mailbox: str) -> float:
    for metric in MESSAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name == f"{name}_count" and sample.labels.get("mailbox") == mailbox:
                return sample.value
    return 0.0


@pytest.fixture
def relay():
    with SmtpRelay() as relay:
        yield relay


def test_metrics_parse_and_count_the_tickets_created(dovecot, relay, tmp_path):
    """/metrics parses with the Prometheus parser; ticket counters match the tickets the daemon
    created; drafts waiting, replies sent, send failures and the triage-time histogram follow."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path, codes=tuple(MAIL), smtp_port=relay.port)
    expected: Counter[tuple[str, str, str]] = Counter()
    for code, names in MAIL.items():
        acc = dep.account_of(code)
        for name in names:
            raw = (DEV / name).read_bytes()
            dovecot.append(acc.user, acc.password, "INBOX", raw)
            d = triage_bytes(raw, dep.settings, acc_address(code)).decision
            expected[(d.department or "none", d.action.value, d.intent or "none")] += 1
    store = Store.open(dep.settings)
    box38 = "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"
    before = histogram_count("triage_message_seconds", box38)
    results = Daemon(dep.settings, dep.config_path, store).run_once()
    assert all(not isinstance(r, str) for r in results.values()), results
    assert histogram_count("triage_message_seconds", box38) - before == len(MAIL["38"])

    client = TestClient(create_app(dep.settings, store), base_url="http://127.0.0.1")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    tickets = samples(text, "triage_tickets_total")
    got = {(dict(k)["department"], dict(k)["action"], dict(k)["intent"]): v
           for k, v in tickets.items()}
    assert got == {k: float(v) for k, v in expected.items()}
    assert sum(got.values()) == sum(len(v) for v in MAIL.values())

    drafts = {dict(k)["department"]: v for k, v in samples(text, "triage_drafts_waiting").items()}
    for code in MAIL:
        assert drafts[code] == sum(n for (dept, action, _i), n in expected.items()
                                   if dept == code and action == "draft")
    oldest = samples(text, "triage_drafts_waiting_oldest_seconds")
    assert oldest[(("department", "38"),)] > 0
    up = samples(text, "triage_mailbox_up")
    assert set(up.values()) == {1.0} and len(up) == len(MAIL)

    # One approved reply: the relay first answers 451 (a temporary failure), then accepts.
    relay.handler.temporary_failures = 1
    with store.session() as s:
        agent = add_agent(s, dep.settings, "agent38", "mot de passe solide", ["38"])
        ticket = s.scalar(select(Ticket).where(Ticket.origin == f"imap:{box38}",
                                               Ticket.template == "reset_password"))
        handle(s, dep.settings, agent, ticket, Event.APPROVE, {"address_confirmed": "yes",
                                                              "reset_confirmed": "yes"})
        s.commit()
    daemon = Daemon(dep.settings, dep.config_path, store)
    deadline = time.monotonic() + 20
    while not relay.messages:
        assert time.monotonic() < deadline, "the reply was never sent"
        daemon.send_replies()
        time.sleep(0.3)
    text = client.get("/metrics").text
    assert samples(text, "triage_replies_sent_total") == {(("department", "38"),): 1.0}
    assert samples(text, "triage_send_failures_total") == {
        (("department", "38"), ("kind", "temporary")): 1.0}
    drafts_after = samples(text, "triage_drafts_waiting")[(("department", "38"),)]
    assert drafts_after == drafts["38"] - 1
    with store.session() as s:
        assert s.scalar(select(Agent.login)) == "agent38"
    store.dispose()


def acc_address(code: str) -> str:
    return f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr"


def test_readyz_fails_when_a_mailbox_cannot_be_reached(dovecot, tmp_path):
    """/readyz is 200 once every mailbox was polled and 503, naming the mailbox, when one cannot
    be reached; the poll-error counter and triage_mailbox_up say the same; /healthz stays 200."""
    if not dovecot.running:
        dovecot.start()
    dep = deploy(dovecot, tmp_path / "ok", codes=("07", "74"))
    store = Store.open(dep.settings)
    client = TestClient(create_app(dep.settings, store), base_url="http://127.0.0.1")
    not_yet = client.get("/readyz")
    assert not_yet.status_code == 503 and "not polled yet" in not_yet.text
    Daemon(dep.settings, dep.config_path, store).run_once()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.text.count(": ok") == 3  # the store and both mailboxes

    # The same store, the 74 mailbox now pointed at a port where nothing listens.
    broken = deploy(dovecot, tmp_path / "broken", codes=("74",),
                    imap={"port": free_port(), "timeout": 2},
                    store_url=dep.store_url)
    box74 = acc_address("74")
    errors_before = POLL_ERRORS.labels(box74)._value.get()
    daemon = Daemon(broken.settings, broken.config_path, store)
    daemon.start()
    try:
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code == 200:
            assert time.monotonic() < deadline, "/readyz never noticed the unreachable mailbox"
            time.sleep(0.2)
    finally:
        daemon.stop()
    assert POLL_ERRORS.labels(box74)._value.get() > errors_before
    down = client.get("/readyz")
    assert down.status_code == 503
    assert f"{box74}: unreachable" in down.text and f"{acc_address('07')}: ok" in down.text
    up = samples(client.get("/metrics").text, "triage_mailbox_up")
    assert up[(("mailbox", box74),)] == 0.0 and up[(("mailbox", acc_address("07")),)] == 1.0
    assert client.get("/healthz").status_code == 200
    store.dispose()
