"""A vacation responder answering every reply the helpdesk sends: no ping-pong.

No Sieve is wired here: the responder builds its answers like Sieve vacation, Exchange and
Gmail do (their real headers), and delivers them into the helpdesk mailbox over IMAP.
"""

from __future__ import annotations

import email
import email.policy
import itertools

from sqlalchemy import select

from triage.lifecycle import Event
from triage.mailbox.daemon import Daemon
from triage.review.agents import add_agent
from triage.review.moderation import current_draft, handle
from triage.store import DraftRow, Store, Ticket
from triage.testing.intake import deploy
from triage.testing.smtp import SmtpRelay

USER = "paul.martin@ville-voiron.fr"
HELPDESK = "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"


def vacation(reply: bytes, style: str, n: int) -> bytes:
    """The out-of-office answer a responder of ``style`` sends to one of our replies."""
    ours = email.message_from_bytes(reply, policy=email.policy.default)
    head = {
        "sieve": "Auto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\n",
        "exchange": "X-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: "
                    f"{USER}\r\n",
        "gmail": "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n",
    }[style]
    subject = {"sieve": "Auto: ", "exchange": "Réponse automatique : ",
               "gmail": "Absence : "}[style] + str(ours["Subject"])
    return (f"From: Paul Martin <{USER}>\r\nTo: {HELPDESK}\r\nSubject: {subject}\r\n"
            f"Message-ID: <vacation-{n}@ville-voiron.fr>\r\nIn-Reply-To: {ours['Message-ID']}\r\n"
            f"References: {ours['Message-ID']}\r\n{head}Content-Type: text/plain; "
            "charset=utf-8\r\n\r\nJe suis absent. Pour un mot de passe oublié, merci de "
            "réinitialiser pmartin-xt.\r\n").encode()


def request(n: int) -> bytes:
    return (f"From: Paul Martin <{USER}>\r\nTo: {HELPDESK}\r\nSubject: mot de passe ({n})\r\n"
            f"Message-ID: <request-{n}@ville-voiron.fr>\r\n\r\nJ'ai oublié mon mot de passe "
            "Chorus Pro, identifiant pmartin-xt.\r\nPaul Martin, Mairie de Voiron 38500\r\n"
            ).encode()


def test_vacation_responder_causes_no_ping_pong(dovecot, tmp_path):
    """Over a simulated day of requests, approvals and vacation answers, the sender gets at
    most the daily limit of drafts, every vacation answer is ignored, and nothing loops."""
    if not dovecot.running:
        dovecot.start()
    with SmtpRelay() as relay:
        dep = deploy(dovecot, tmp_path, codes=("38",), smtp_port=relay.port)
        store = Store.open(dep.settings)
        with store.session() as s:
            add_agent(s, dep.settings, "agent38", "correct horse battery", ["38"])
            s.commit()
        daemon = Daemon(dep.settings, dep.config_path, store)
        acc = dep.account_of("38")
        styles = itertools.cycle(["sieve", "exchange", "gmail"])
        answered = 0
        for hour in range(24):  # one pass per simulated hour
            if hour % 3 == 0:
                dovecot.append(acc.user, acc.password, "INBOX", request(hour))
            daemon.run_once()
            with store.session() as s:  # a diligent agent approves whatever is drafted
                agent = s.scalar(select(__import__("triage.store", fromlist=["Agent"]).Agent))
                for ticket in s.scalars(select(Ticket).where(Ticket.status == "open")):
                    if current_draft(s, ticket) is not None:
                        handle(s, dep.settings, agent, ticket, Event.APPROVE,
                               {"address_confirmed": "yes", "reset_confirmed": "yes"})
                s.commit()
            daemon.send_replies()
            for received in relay.messages[answered:]:  # the responder answers each reply
                dovecot.append(acc.user, acc.password, "INBOX",
                               vacation(received.data, next(styles), answered))
                answered += 1
        daemon.run_once()
        with store.session() as s:
            drafts = s.scalars(select(DraftRow).where(DraftRow.to_addr == USER)).all()
            actions = dict(s.execute(select(Ticket.message_id, Ticket.action)).all())
        assert len(drafts) <= dep.settings.max_drafts_per_sender_per_day
        vacations = {k: v for k, v in actions.items() if k.startswith("vacation-")}
        assert vacations and set(vacations.values()) == {"ignore"}
        assert len(relay.messages) == len(drafts)  # one reply per approved draft, no more
        assert answered == len(relay.messages)
        store.dispose()
