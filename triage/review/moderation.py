"""What agents do with a ticket: approve, edit, reject, reassign, re-template, close, release.

Each action checks what it needs (a pending draft, a reason, an admin for a release), changes
the ticket in the caller's transaction and writes the audit trail (before and after text for
edits). Nothing here sends mail: approving puts the reply in the outbox, where
:mod:`triage.send` picks it up. There is no other way into the outbox, so no reply ever leaves
without an agent's approval.
"""

from __future__ import annotations

import enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.config import TEMPLATE_NAMES, Settings
from triage.draft import greeting_name, render
from triage.errors import TriageError
from triage.parse import parse_message
from triage.send.compose import ComposeError
from triage.send.outbox import enqueue
from triage.store import Agent, AuditEvent, DraftRow, OutboxItem, Ticket, Transfer

#: Templates whose approval needs the agent to confirm the sender's address is the account's.
CONFIRM_ADDRESS = ("reset_password", "expired_password")


class Verb(enum.StrEnum):
    APPROVE = "approve"
    SAVE = "save"
    REJECT = "reject"
    REASSIGN = "reassign"
    TEMPLATE = "template"
    HANDLED = "handled"
    RELEASE = "release"


class ModerationError(TriageError):
    """The action cannot be done as asked; the message is shown to the agent (French)."""


class Forbidden(ModerationError):
    """The agent may not do this (another department, or not an admin)."""


def thread(s: Session, ticket: Ticket) -> list[Ticket]:
    """The ticket and its follow-ups, oldest first."""
    children = list(s.scalars(select(Ticket).where(Ticket.parent_id == ticket.id)
                              .order_by(Ticket.id)))
    return [ticket, *children]


def current_draft(s: Session, ticket: Ticket) -> DraftRow | None:
    """The most recent pending draft of the thread: the one the agent works on."""
    ids = [t.id for t in thread(s, ticket)]
    return s.scalar(select(DraftRow).where(DraftRow.ticket_id.in_(ids),
                                           DraftRow.status == "pending")
                    .order_by(DraftRow.id.desc()).limit(1))


def audit(s: Session, ticket: Ticket, agent: Agent, event: str, **detail: object) -> None:
    s.add(AuditEvent(ticket_id=ticket.id, actor=agent.login, event=event, detail=detail))


def viewed(s: Session, ticket: Ticket, agent: Agent) -> None:
    audit(s, ticket, agent, "ticket.viewed")


def handle(s: Session, settings: Settings, agent: Agent, ticket: Ticket, verb: Verb,
           form: dict[str, str]) -> str:
    """Do ``verb`` on ``ticket``; returns a French confirmation for the agent."""
    if ticket.status in ("approved", "sent") and verb is not Verb.HANDLED:
        raise ModerationError("cette demande a déjà une réponse validée")
    if verb is Verb.APPROVE:
        return _approve(s, settings, agent, ticket, form)
    if verb is Verb.SAVE:
        draft = _pending(s, ticket)
        _edit(s, ticket, agent, draft, form.get("body", ""))
        return "Brouillon enregistré."
    if verb is Verb.REJECT:
        reason = form.get("reason", "").strip()
        if not reason:
            raise ModerationError("indiquez le motif du rejet")
        draft = _pending(s, ticket)
        draft.status = "rejected"
        ticket.action = "human"
        audit(s, ticket, agent, "draft.rejected", draft=draft.id, reason=reason[:1000])
        return "Brouillon rejeté : la demande reste à traiter."
    if verb is Verb.REASSIGN:
        return _reassign(s, settings, agent, ticket, form.get("department", ""))
    if verb is Verb.TEMPLATE:
        return _retemplate(s, settings, agent, ticket, form.get("template", ""))
    if verb is Verb.HANDLED:
        for draft in s.scalars(select(DraftRow).where(
                DraftRow.ticket_id.in_([t.id for t in thread(s, ticket)]),
                DraftRow.status == "pending")):
            draft.status = "discarded"
        ticket.status = "handled"
        audit(s, ticket, agent, "ticket.handled", note=form.get("note", "")[:1000])
        return "Demande marquée comme traitée, sans réponse."
    if verb is Verb.RELEASE:
        if not agent.is_admin:
            raise Forbidden("seul un administrateur peut libérer un message de la quarantaine")
        if ticket.status != "quarantined":
            raise ModerationError("ce message n'est pas en quarantaine")
        ticket.status = "open"
        ticket.action = "human"
        audit(s, ticket, agent, "ticket.released")
        return "Message libéré de la quarantaine : il est à traiter par un agent."
    raise ModerationError(f"action inconnue : {verb}")


def _pending(s: Session, ticket: Ticket) -> DraftRow:
    draft = current_draft(s, ticket)
    if draft is None:
        raise ModerationError("aucun brouillon en attente pour cette demande")
    return draft


def _edit(s: Session, ticket: Ticket, agent: Agent, draft: DraftRow, body: str) -> None:
    body = body.replace("\r\n", "\n").strip() + "\n"
    if not body.strip():
        raise ModerationError("le texte de la réponse est vide")
    if len(body) > 20_000:
        raise ModerationError("le texte de la réponse est trop long")
    if body != draft.body:
        audit(s, ticket, agent, "draft.edited", draft=draft.id, before=draft.body, after=body)
        draft.body = body


def _approve(s: Session, settings: Settings, agent: Agent, ticket: Ticket,
             form: dict[str, str]) -> str:
    draft = _pending(s, ticket)
    if draft.template in CONFIRM_ADDRESS and form.get("address_confirmed") != "yes":
        raise ModerationError("confirmez que l'adresse de l'expéditeur est celle enregistrée "
                              "sur le compte")
    if "body" in form:
        _edit(s, ticket, agent, draft, form["body"])
    if s.scalar(select(OutboxItem).where(OutboxItem.draft_id == draft.id)) is not None:
        raise ModerationError("ce brouillon a déjà été validé")
    try:
        item = enqueue(s, settings, ticket, draft, agent.login, draft.body)
    except ComposeError as exc:
        raise ModerationError(f"la réponse ne peut pas être construite sans risque : {exc}"
                              ) from exc
    audit(s, ticket, agent, "draft.approved", draft=draft.id, template=draft.template,
          address_confirmed=form.get("address_confirmed") == "yes", outbox=item.id,
          message_id=item.message_id)
    return "Réponse validée : elle part dans quelques instants."


def _reassign(s: Session, settings: Settings, agent: Agent, ticket: Ticket, code: str) -> str:
    department = settings.department(code)
    if department is None:
        raise ModerationError(f"département inconnu : {code!r}")
    before = ticket.department
    if before == code:
        raise ModerationError("la demande est déjà dans ce département")
    ticket.department = code
    draft = current_draft(s, ticket)
    if draft is not None:
        draft.department = code
        draft.body = _render(settings, ticket, draft.template, code)
    if settings.mailbox_of(department.mailbox) is not None and s.scalar(select(Transfer).where(
            Transfer.ticket_id == ticket.id, Transfer.target == department.mailbox)) is None:
        s.add(Transfer(ticket_id=ticket.id, target=department.mailbox))
    audit(s, ticket, agent, "ticket.reassigned", before=before, after=code)
    return f"Demande réaffectée au département {code} ({department.name})."


def _render(settings: Settings, ticket: Ticket, template: str, code: str) -> str:
    department = settings.department(code)
    assert department is not None
    view = parse_message(ticket.raw, settings.limits)
    return render(template, settings, department, sender_name=greeting_name(view, settings),
                  identifier=ticket.identifier)


def _retemplate(s: Session, settings: Settings, agent: Agent, ticket: Ticket,
                template: str) -> str:
    if template not in TEMPLATE_NAMES:
        raise ModerationError(f"modèle inconnu : {template!r}")
    code = ticket.department
    if code is None:
        raise ModerationError("réaffectez d'abord la demande à un département")
    draft = current_draft(s, ticket)
    body = _render(settings, ticket, template, code)
    if draft is None:
        view = parse_message(ticket.raw, settings.limits)
        sender = view.sender_address
        if sender is None:
            raise ModerationError("l'expéditeur de ce message est illisible : pas de réponse")
        subject = "Re: " + (ticket.subject or "Votre demande Chorus Pro")
        draft = DraftRow(ticket_id=ticket.id, template=template, department=code,
                         to_addr=sender.address, subject=subject[:900], body=body,
                         in_reply_to=ticket.message_id)
        s.add(draft)
        s.flush()
        before = None
    else:
        before = draft.template
        draft.template, draft.body = template, body
    audit(s, ticket, agent, "draft.template-changed", draft=draft.id, before=before,
          after=template)
    return "Brouillon préparé avec le modèle choisi."
