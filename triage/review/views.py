"""What the pages show: the queue rows and a ticket's details, read from the store.

Pure reads; the department check is done by the caller for every record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.parse import Attachment, MessageView, attachment_content, html_body, parse_message
from triage.review.agents import ticket_departments
from triage.review.moderation import current_draft, thread
from triage.rules import reasons_of, trust
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
    attachments: list[Attachment]


def ticket_page(s: Session, settings: Settings, ticket: Ticket) -> TicketPage:
    view = parse_message(ticket.raw, settings.limits)
    ids = [t.id for t in thread(s, ticket)]
    history = list(s.scalars(select(AuditEvent).where(AuditEvent.ticket_id.in_(ids))
                             .order_by(AuditEvent.at, AuditEvent.id)))
    outbox = list(s.scalars(select(OutboxItem).where(OutboxItem.ticket_id.in_(ids))))
    mailboxes = list(s.scalars(select(TicketSource.mailbox).where(
        TicketSource.ticket_id == ticket.id).distinct()))
    return TicketPage(ticket, view, html_body(ticket.raw, settings.limits), thread(s, ticket),
                      trust_warnings(ticket), history, current_draft(s, ticket), outbox,
                      ticket_departments(s, settings, ticket), mailboxes,
                      manifest(ticket, view))


def trust_warnings(ticket: Ticket) -> list[str]:
    """The trust rule's warnings as decided at intake (its stored reasons), in its words."""
    return reasons_of(trust.NAME, ticket.reasons)


def manifest(ticket: Ticket, view: MessageView | None, settings: Settings | None = None
             ) -> list[Attachment]:
    """The ticket's attachment manifest: the one stored at intake, else (a ticket recorded
    before manifests were stored) the one triage.parse makes of the stored message."""
    if ticket.attachments is not None:
        return [Attachment.from_json(a) for a in ticket.attachments if isinstance(a, dict)]
    if view is None:
        view = parse_message(ticket.raw, settings.limits if settings else None)
    return list(view.attachments)


def attachment(settings: Settings, ticket: Ticket, index: int
               ) -> tuple[Attachment, bytes | None] | None:
    """The manifest entry ``index`` and its content (None when the intake did not fetch it),
    or None when there is no such entry."""
    entries = manifest(ticket, None, settings)
    if not 0 <= index < len(entries):
        return None
    entry = entries[index]
    if not entry.stored:
        return entry, None
    content = attachment_content(ticket.raw, entry.part, settings.limits)
    return None if content is None else (entry, content)


def stats(s: Session) -> dict[str, int]:
    return dict(s.execute(select(Ticket.status, func.count(Ticket.id)).group_by(Ticket.status))
                .all())


def not_fetched(entry: Attachment, ticket: Ticket) -> str:
    """Why a listed attachment cannot be downloaded: its message was too large to be fetched
    whole at intake, and the mailbox no longer has it (or cannot be reached)."""
    return (f"La pièce jointe « {entry.filename or 'sans nom'} » ({entry.size} octets) n'a pas "
            "été récupérée : le message dépassait la taille lue en entier à la réception, et la "
            "boîte aux lettres ne le fournit plus (déplacé, supprimé ou serveur injoignable).")
