"""What the pages show: the queue rows and a ticket's details, read from the store.

Pure reads; the department check is done by the caller for every record.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime

import nh3
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.parse import MessageView, parse_message
from triage.review.agents import ticket_departments
from triage.review.moderation import current_draft, thread
from triage.store import Agent, AuditEvent, OutboxItem, Ticket, TicketSource

ACTIONS = {"draft": "Brouillon à valider", "human": "À traiter par un agent",
           "quarantine": "Quarantaine", "ignore": "Ignoré"}
INTENTS = {"forgotten_password": "Mot de passe oublié", "expired_password": "Mot de passe expiré",
           "other": "Autre demande"}
STATUSES = {"open": "À traiter", "quarantined": "En quarantaine", "approved": "Validée, en envoi",
            "sent": "Réponse envoyée", "handled": "Traitée sans réponse",
            "rejected": "Brouillon rejeté"}


EVENTS = {
    "ticket.created": "demande reçue et triée", "ticket.seen-again": "reçue aussi dans une "
    "autre boîte", "ticket.viewed": "consultée", "ticket.follow-up": "suite reçue de "
    "l'expéditeur", "ticket.transferred": "copiée vers un autre département",
    "ticket.reassigned": "réaffectée", "ticket.handled": "marquée traitée sans réponse",
    "ticket.released": "libérée de la quarantaine", "draft.edited": "brouillon modifié",
    "draft.approved": "brouillon validé", "draft.rejected": "brouillon rejeté",
    "draft.template-changed": "modèle changé", "outbox.queued": "réponse mise en file d'envoi",
    "outbox.retry": "envoi reporté (relais indisponible)", "outbox.sent": "réponse envoyée",
    "outbox.refused": "envoi refusé par le relais",
}


def age(then: datetime) -> str:
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} j"


def visible(s: Session, settings: Settings, agent: Agent) -> list[Ticket]:
    """Thread heads the agent may see (admins see every department)."""
    tickets = s.scalars(select(Ticket).where(Ticket.parent_id.is_(None))).all()
    if agent.is_admin:
        return list(tickets)
    mine = set(agent.departments)
    return [t for t in tickets if ticket_departments(s, settings, t) & mine]


def queue(s: Session, settings: Settings, agent: Agent, action: str | None, intent: str | None,
          status: str, order: str) -> tuple[list[Ticket], dict[str, int]]:
    tickets = visible(s, settings, agent)
    todo = [t for t in tickets if status == "all" or t.status in (
        ("open", "quarantined") if status == "todo" else (status,))]
    counts = {a: sum(1 for t in todo if t.action == a) for a in ACTIONS}
    rows = [t for t in todo if (not action or t.action == action)
            and (not intent or t.intent == intent)]
    rows.sort(key=lambda t: t.created_at, reverse=order != "oldest")
    return rows, counts


@dataclass
class TicketPage:
    ticket: Ticket
    view: MessageView
    html: str | None
    thread: list[Ticket]
    warnings: list[str]
    history: list[AuditEvent]
    draft: object | None
    outbox: list[OutboxItem]
    departments: set[str]
    mailboxes: list[str]


def ticket_page(s: Session, settings: Settings, ticket: Ticket) -> TicketPage:
    view = parse_message(ticket.raw, settings.limits)
    warnings = []
    sender = view.sender_address
    if sender is not None:
        for label, addrs in (("Reply-To", view.reply_to), ("Sender", view.sender)):
            others = [a.address for a in addrs if a.address != sender.address]
            if others:
                warnings.append(f"L'en-tête {label} ({', '.join(others)}) diffère de l'adresse "
                                f"From ({sender.address}) : la réponse ira uniquement à "
                                f"{sender.address}.")
    ids = [t.id for t in thread(s, ticket)]
    history = list(s.scalars(select(AuditEvent).where(AuditEvent.ticket_id.in_(ids))
                             .order_by(AuditEvent.at, AuditEvent.id)))
    outbox = list(s.scalars(select(OutboxItem).where(OutboxItem.ticket_id.in_(ids))))
    mailboxes = list(s.scalars(select(TicketSource.mailbox).where(
        TicketSource.ticket_id == ticket.id).distinct()))
    return TicketPage(ticket, view, _clean_html(ticket.raw), thread(s, ticket), warnings,
                      history, current_draft(s, ticket), outbox,
                      ticket_departments(s, settings, ticket), mailboxes)


def _clean_html(raw: bytes) -> str | None:
    """The HTML body cleaned with an allow-list (no script, style, handlers, remote loads)."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(("html",))
        if part is None:
            return None
        markup = part.get_content()
    except Exception:  # an unreadable HTML part is simply not shown; the text view remains
        return None
    return nh3.clean(markup[:500_000], tags={"p", "br", "div", "span", "b", "strong", "i", "em",
                                             "u", "ul", "ol", "li", "table", "thead", "tbody",
                                             "tr", "td", "th", "blockquote", "pre", "h1", "h2",
                                             "h3", "h4", "a", "hr"},
                     attributes={"a": {"href", "title"}}, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def attachment_bytes(raw: bytes, index: int) -> tuple[str, str, bytes] | None:
    """The ``index``-th attachment (as the page lists them): name, type, content."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = -1
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if disposition == "attachment" or part.get_filename() or not ctype.startswith("text/"):
            found += 1
            if found == index:
                payload = part.get_payload(decode=True)
                return (part.get_filename() or f"piece-jointe-{index + 1}", ctype,
                        payload if isinstance(payload, bytes) else b"")
    return None


def stats(s: Session) -> dict[str, int]:
    return dict(s.execute(select(Ticket.status, func.count(Ticket.id)).group_by(Ticket.status))
                .all())
