"""What the pages show: the queue rows and a ticket's details, read through the store's
named queries (:mod:`triage.store.queries`); which actions a ticket offers comes from
:mod:`triage.lifecycle`.

Pure reads; the department check is done by the caller for every record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from triage import lifecycle
from triage.config import Settings
from triage.lifecycle import Event, OutboxState, TicketState
from triage.parse import Attachment, MessageView, attachment_content, html_body, parse_message
from triage.review import french
from triage.review.agents import ticket_departments
from triage.review.moderation import current_draft
from triage.rules import reasons_of, trust
from triage.store import Agent, AuditEvent, DraftRow, OutboxItem, Ticket, holds, queries
from triage.store.queries import QueuePage, QueueQuery, Scope

ACTIONS = {"draft": "Brouillon à valider", "human": "Traitement manuel",
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
    "draft.template-changed": "modèle changé",
    "draft.discarded": "ancien brouillon écarté (une autre réponse a été validée)",
    "outbox.queued": "réponse mise en file d'envoi",
    "outbox.retry": "envoi reporté (relais indisponible)", "outbox.sent": "réponse envoyée",
    "outbox.refused": "envoi refusé par le relais",
    "outbox.cancelled": "envoi annulé avant son départ",
    "ticket.taken": "prise en charge", "ticket.released-hold": "rendue à l'équipe",
}


def age(then: datetime) -> str:
    return french.age(then)


def scope(settings: Settings, agent: Agent) -> Scope:
    """The tickets ``agent`` may see: every one for an admin, else their departments'."""
    if agent.is_admin:
        return Scope(None)
    mine = frozenset(agent.departments)
    return Scope(mine, frozenset(d.mailbox for d in settings.departments if d.code in mine))


@dataclass(frozen=True)
class Filters:
    """The queue's filters as the page's form sends them (already checked)."""

    action: str | None = None
    intent: str | None = None
    status: str = "todo"
    order: str = "newest"
    page: int = 1
    search: str = ""
    department: str | None = None
    older_than: int | None = None  # business days


def queue(s: Session, settings: Settings, agent: Agent, f: Filters) -> QueuePage:
    """A page of thread heads the agent may see, filtered, counted and ordered in SQL."""
    statuses = (None if f.status == "todo" else () if f.status == "all" else (f.status,))
    seen = scope(settings, agent)
    if f.department:
        mine = seen.departments
        if mine is None or f.department in mine:
            seen = Scope(frozenset({f.department}))
    before = (None if f.older_than is None
              else french.business_days_ago(f.older_than, datetime.now(UTC)))
    found = queries.queue(s, QueueQuery(seen, f.action, f.intent, statuses,
                                        f.order == "oldest", f.page, search=f.search,
                                        before=before))
    minutes = settings.desk.hold_minutes
    rows = [r if r.status in lifecycle.TODO and holds.live(r.held_by, r.held_at, minutes)
            else replace(r, held_by=None) for r in found.rows]
    return replace(found, rows=rows, counts={a: found.counts.get(a, 0) for a in ACTIONS})


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
    attachments: list[Attachment]
    allowed: frozenset[Event]
    head: Ticket
    earlier: list[queries.EarlierRequest]
    hold: holds.Hold | None
    sent: list[tuple[OutboxItem, str]]  # each reply with the exact text that went out


def ticket_page(s: Session, settings: Settings, ticket: Ticket, agent: Agent) -> TicketPage:
    head = queries.head_of(s, ticket)
    view = parse_message(ticket.raw, settings.limits)
    warnings = trust_warnings(ticket)
    draft = current_draft(s, head)
    if draft is not None and draft.to_addr != head.requester:
        warnings.append(f"Le destinataire du brouillon ({draft.to_addr}) n'est pas le demandeur "
                        f"de cette demande ({head.requester or 'illisible'}) : vérifiez avant "
                        "de valider.")
    members = queries.thread(s, head)
    ids = [t.id for t in members]
    return TicketPage(ticket, view, html_body(ticket.raw, settings.limits), members, warnings,
                      queries.history(s, ids), draft, queries.outbox_of(s, ids),
                      ticket_departments(s, settings, ticket),
                      queries.mailboxes_of(s, ticket.id), manifest(ticket, view),
                      lifecycle.allowed(s, head, admin=agent.is_admin), head,
                      queries.earlier_requests(s, head),
                      # A hold is on work to do: a sent or closed ticket shows none.
                      holds.current(head, settings.desk.hold_minutes)
                      if head.status in lifecycle.TODO else None,
                      [(o, reply_text(o, settings)) for o in queries.outbox_of(s, ids)])


def reply_text(item: OutboxItem, settings: Settings) -> str:
    """The text of a reply as composed for the relay (read back by triage.parse)."""
    return parse_message(item.raw, settings.limits).text or ""


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
    return queries.status_counts(s)


def not_fetched(entry: Attachment, ticket: Ticket) -> str:
    """Why a listed attachment cannot be downloaded: its message was too large to be fetched
    whole at intake, and the mailbox no longer has it (or cannot be reached)."""
    return (f"La pièce jointe « {entry.filename or 'sans nom'} » ({entry.size} octets) n'a pas "
            "été récupérée : le message dépassait la taille lue en entier à la réception, et la "
            "boîte aux lettres ne le fournit plus (déplacé, supprimé ou serveur injoignable).")


#: Who may give a ticket's hold to another agent.
LEADS = ("lead", "admin")


def holders(s: Session, agent: Agent, head: Ticket) -> list[str]:
    """The logins a lead may give ``head``'s hold to (none for an agent)."""
    if agent.role not in LEADS:
        return []
    return [a.login for a in queries.agents_of(s, head.department)]
