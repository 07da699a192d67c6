"""What the pages show: the queue rows and a ticket's details, read through the store's
named queries (:mod:`triage.store.queries`); which actions a ticket offers comes from
:mod:`triage.lifecycle`.

Pure reads; the department check is done by the caller for every record.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import nh3
from sqlalchemy.orm import Session

from triage import lifecycle
from triage.config import Settings
from triage.lifecycle import Event, OutboxState, TicketState
from triage.parse import MessageView, parse_message
from triage.review.agents import ticket_departments
from triage.review.moderation import current_draft, head_of
from triage.store import Agent, AuditEvent, DraftRow, OutboxItem, Ticket, queries
from triage.store.queries import QueuePage, QueueQuery, Scope

ACTIONS = {"draft": "Brouillon à valider", "human": "À traiter par un agent",
           "quarantine": "Quarantaine", "ignore": "Ignoré"}
INTENTS = {"forgotten_password": "Mot de passe oublié", "expired_password": "Mot de passe expiré",
           "other": "Autre demande"}
STATUSES = {TicketState.OPEN: "À traiter", TicketState.QUARANTINED: "En quarantaine",
            TicketState.APPROVED: "Validée, en envoi", TicketState.SENT: "Réponse envoyée",
            TicketState.HANDLED: "Traitée sans réponse"}
OUTBOX_STATES = {OutboxState.QUEUED: "en attente d'envoi", OutboxState.SENDING: "en cours d'envoi",
                 OutboxState.COMMITTING: "en cours d'envoi", OutboxState.SENT: "envoyée",
                 OutboxState.FAILED: "refusée par le relais",
                 OutboxState.CANCELLED: "annulée (demande traitée sans réponse)"}


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
    "outbox.cancelled": "envoi annulé avant son départ",
}


def age(then: datetime) -> str:
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} j"


def scope(settings: Settings, agent: Agent) -> Scope:
    """The tickets ``agent`` may see: every one for an admin, else their departments'."""
    if agent.is_admin:
        return Scope(None)
    mine = frozenset(agent.departments)
    return Scope(mine, frozenset(d.mailbox for d in settings.departments if d.code in mine))


def queue(s: Session, settings: Settings, agent: Agent, action: str | None, intent: str | None,
          status: str, order: str, page: int = 1) -> QueuePage:
    """A page of thread heads the agent may see, filtered, counted and ordered in SQL."""
    statuses = (None if status == "todo" else () if status == "all" else (status,))
    found = queries.queue(s, QueueQuery(scope(settings, agent), action, intent, statuses,
                                        order == "oldest", page))
    return replace(found, counts={a: found.counts.get(a, 0) for a in ACTIONS})


@dataclass
class TicketPage:
    ticket: Ticket
    view: MessageView
    html: str | None
    thread: list[Ticket]
    warnings: list[str]
    history: list[AuditEvent]
    draft: DraftRow | None
    outbox: list[OutboxItem]
    departments: set[str]
    mailboxes: list[str]
    allowed: frozenset[Event]
    head: Ticket


def ticket_page(s: Session, settings: Settings, ticket: Ticket, agent: Agent) -> TicketPage:
    head = head_of(s, ticket)
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
    draft = current_draft(s, head)
    if draft is not None and draft.to_addr != head.requester:
        warnings.append(f"Le destinataire du brouillon ({draft.to_addr}) n'est pas le demandeur "
                        f"de cette demande ({head.requester or 'illisible'}) : vérifiez avant "
                        "de valider.")
    members = queries.thread(s, head)
    ids = [t.id for t in members]
    return TicketPage(ticket, view, _clean_html(ticket.raw), members, warnings,
                      queries.history(s, ids), draft, queries.outbox_of(s, ids),
                      ticket_departments(s, settings, ticket),
                      queries.mailboxes_of(s, ticket.id),
                      lifecycle.allowed(s, head, admin=agent.is_admin), head)


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
    return queries.status_counts(s)
