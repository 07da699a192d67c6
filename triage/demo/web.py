"""The demo's page of replies received by its SMTP server (``/demo/sent``), in the review app.

Only ``triage demo`` adds it (through :attr:`ReviewApp.extra_routes`); it needs a login like every
page, and shows what the aiosmtpd server accepted, newest first, as a recipient would read it.
"""

from __future__ import annotations

import email
import email.policy
import functools
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triage.config import Settings
from triage.review.agents import may_see
from triage.review.sessions import SessionData
from triage.review.web import ReviewApp
from triage.store import Agent, Ticket, queries
from triage.testing.smtp import Received, SmtpRelay


@dataclass(frozen=True)
class SentReply:
    mail_from: str
    rcpt_tos: list[str]
    from_: str
    to: str
    date: str
    subject: str
    message_id: str
    in_reply_to: str
    body: str


def read(received: Received) -> SentReply:
    """What a recipient would read of a message the relay accepted."""
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    try:
        part = msg.get_body(("plain",))
        body = part.get_content() if part is not None else ""
    except (LookupError, UnicodeDecodeError, AttributeError):
        body = received.data.decode("utf-8", "replace")
    return SentReply(received.mail_from, list(received.rcpt_tos), str(msg.get("From", "")),
                     str(msg.get("To", "")), str(msg.get("Date", "")),
                     str(msg.get("Subject", "")), str(msg.get("Message-ID", "")),
                     str(msg.get("In-Reply-To", "")), str(body))


def visible_to(s: Session, settings: Settings, agent: Agent, reply: SentReply) -> bool:
    """Whether ``agent`` may see a reply: it answers a ticket of the agent's departments (found
    by its Message-ID in the outbox). A message no ticket explains is for admins only."""
    if agent.is_admin:
        return True
    message_id = reply.message_id.strip().strip("<>")
    item = queries.outbox_item(s, message_id)
    ticket = s.get(Ticket, item.ticket_id) if item is not None else None
    return ticket is not None and may_see(s, settings, agent, ticket)


async def sent_page(review: ReviewApp, relay: SmtpRelay, request: Request, s: Session,
                    agent: Agent, data: SessionData) -> Response:
    with relay.handler.lock:
        received = list(relay.messages)
    settings = review.settings()
    replies = [reply for reply in (read(r) for r in reversed(received))
               if visible_to(s, settings, agent, reply)]
    return review.render(request, "demo_sent.html", {
        "agent": agent, "replies": replies, "relay": f"{relay.host}:{relay.port}"}, data)


def install(review: ReviewApp, relay: SmtpRelay) -> None:
    """Add ``/demo/sent`` to ``review`` and its link to the pages' header."""
    review.extra_routes.append(Route(
        "/demo/sent", review.authenticated(functools.partial(sent_page, review, relay)),
        methods=["GET"]))
    review.templates.env.globals["demo_sent"] = True


__all__ = ["SentReply", "install", "read", "sent_page", "visible_to"]
