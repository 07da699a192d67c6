"""What agents do with a ticket: approve, edit, reject, reassign, re-template, close, release.

Each action is an event of :mod:`triage.lifecycle`, which checks that the ticket allows it
(under a row lock), moves the states and writes the audit entry; this module supplies the
content of the action (the edited text, the new draft, the new department) and the French
messages. Nothing here sends mail: approving puts the reply in the outbox, where
:mod:`triage.send` picks it up. There is no other way into the outbox, so no reply ever leaves
without an agent's approval, and a second approve, from any process, changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from triage import lifecycle
from triage.config import TEMPLATE_NAMES, Settings
from triage.draft import greeting_name, render
from triage.errors import TriageError
from triage.lifecycle import Event, NotAllowed
from triage.parse import parse_message
from triage.review import french
from triage.send.compose import ComposeError
from triage.send.outbox import compose_item
from triage.store import Agent, AuditEvent, DraftRow, Ticket, Transfer
from triage.store.queries import has_transfer, head_of, thread, viewed_since

#: Templates whose approval needs the agent to confirm the sender's address is the account's.
CONFIRM_ADDRESS = ("reset_password", "expired_password")


class ModerationError(TriageError):
    """The action cannot be done as asked; the message is shown to the agent (French)."""


class Forbidden(ModerationError):
    """The agent may not do this (another department, or not an admin)."""


#: The most recent pending draft of the thread: the one the agent works on.
current_draft = lifecycle.pending_draft

__all__ = ["CONFIRM_ADDRESS", "Forbidden", "ModerationError", "audit", "current_draft",
           "handle", "head_of", "reset_statement", "thread", "viewed"]

DONE = {
    Event.APPROVE: "Réponse validée : elle part dans quelques instants.",
    Event.SAVE: "Brouillon enregistré.",
    Event.REJECT: "Brouillon rejeté : la demande reste à traiter.",
    Event.TEMPLATE: "Brouillon préparé avec le modèle choisi.",
    Event.HANDLED: "Demande marquée comme traitée, sans réponse.",
    Event.RELEASE: "Message libéré de la quarantaine : il est à traiter, sans brouillon.",
}


def audit(s: Session, ticket: Ticket, agent: Agent, event: str, **detail: object) -> None:
    s.add(AuditEvent(ticket_id=ticket.id, actor=agent.login, event=event, detail=detail))


def viewed(s: Session, ticket: Ticket, agent: Agent) -> None:
    """« consultée » once per agent, ticket and (Paris) day: who looked is worth keeping,
    every reload is not."""
    today = french.local(datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    if not viewed_since(s, ticket.id, agent.login, today.astimezone(UTC)):
        audit(s, ticket, agent, "ticket.viewed")


def handle(s: Session, settings: Settings, agent: Agent, ticket: Ticket, verb: Event,
           form: dict[str, str]) -> str:
    """Do ``verb`` (one of the lifecycle's AGENT_EVENTS) on ``ticket``; returns a French
    confirmation for the agent."""
    event = verb
    if event in lifecycle.ADMIN_ONLY and not agent.is_admin:
        raise Forbidden("seul un administrateur peut libérer un message de la quarantaine")
    head = head_of(s, ticket)
    effects: dict[Event, Callable[[DraftRow | None], dict[str, Any] | None]] = {
        Event.APPROVE: lambda d: _approve(s, settings, agent, head, _need(d), form),
        Event.SAVE: lambda d: _edit(s, head, agent, _need(d), form.get("body", "")),
        Event.REJECT: lambda d: _reject(head, form),
        Event.REASSIGN: lambda d: _reassign(s, settings, head, form.get("department", "")),
        Event.TEMPLATE: lambda d: _retemplate(s, settings, head, form.get("template", "")),
        Event.HANDLED: lambda d: {"note": form.get("note", "")[:1000]},
        Event.RELEASE: lambda d: _release(head),
    }
    try:
        step = lifecycle.transition(s, head, event, agent.login, admin=agent.is_admin,
                                    effect=effects[verb], record=verb is not Event.SAVE)
    except NotAllowed as exc:
        raise ModerationError(str(exc)) from exc
    if verb is Event.APPROVE and not step.changed:
        return "Réponse déjà validée : rien de plus à faire."
    if verb is Event.REASSIGN:
        department = settings.department(head.department or "")
        return (f"Demande réaffectée au département {head.department}"
                f"{f' ({department.name})' if department else ''}.")
    return DONE[verb]


def _need(draft: DraftRow | None) -> DraftRow:
    assert draft is not None  # the lifecycle found it for the events that need one
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


def _approve(s: Session, settings: Settings, agent: Agent, ticket: Ticket, draft: DraftRow,
             form: dict[str, str]) -> dict[str, Any]:
    confirmed = form.get("address_confirmed") == "yes"
    reset = form.get("reset_confirmed") == "yes"
    if draft.template in CONFIRM_ADDRESS and not confirmed:
        raise ModerationError("confirmez que l'adresse de l'expéditeur est celle enregistrée "
                              "sur le compte")
    if draft.template in CONFIRM_ADDRESS and not reset:
        raise ModerationError("confirmez avoir réinitialisé le mot de passe de "
                              f"{ticket.identifier or 'l’identifiant'} dans l'outil "
                              "d'administration avant d'envoyer la réponse")
    if "body" in form:
        _edit(s, ticket, agent, draft, form["body"])
    try:
        item = compose_item(settings, ticket, draft, agent.login)
    except ComposeError as exc:
        raise ModerationError(f"la réponse ne peut pas être construite sans risque : {exc}"
                              ) from exc
    extra = ({"reset_confirmed": reset_statement(ticket.identifier)}
             if draft.template in CONFIRM_ADDRESS else {})
    return {"item": item, "template": draft.template, "address_confirmed": confirmed, **extra}


def reset_statement(identifier: str | None) -> str:
    """What the agent ticks before a reset or expired reply goes out, word for word."""
    return (f"J'ai réinitialisé le mot de passe de {identifier or '(identifiant non trouvé)'} "
            "dans l'outil d'administration")


def _reject(ticket: Ticket, form: dict[str, str]) -> dict[str, Any]:
    reason = form.get("reason", "").strip()
    if not reason:
        raise ModerationError("indiquez le motif du rejet")
    ticket.action = "human"  # shown with the requests an agent must handle
    return {"reason": reason[:1000]}


def _release(ticket: Ticket) -> dict[str, Any]:
    ticket.action = "human"  # released, it is for an agent to handle; never drafted by itself
    return {}


def _reassign(s: Session, settings: Settings, ticket: Ticket, code: str) -> dict[str, Any]:
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
        draft.body = _render(s, settings, draft, ticket, draft.template, code)
    if settings.mailbox_of(department.mailbox) is not None and not has_transfer(
            s, ticket.id, department.mailbox):
        s.add(Transfer(ticket_id=ticket.id, target=department.mailbox))
    return {"before": before, "after": code}


def _render(s: Session, settings: Settings, draft: DraftRow | None, head: Ticket,
            template: str, code: str) -> str:
    """The reply re-rendered from the data of the message the draft answers, only."""
    source = s.get(Ticket, draft.ticket_id) if draft is not None else head
    source = source or head
    department = settings.department(code)
    assert department is not None
    view = parse_message(source.raw, settings.limits)
    return render(template, settings, department, sender_name=greeting_name(view, settings),
                  identifier=source.identifier)


def _retemplate(s: Session, settings: Settings, ticket: Ticket, template: str
                ) -> dict[str, Any]:
    if template not in TEMPLATE_NAMES:
        raise ModerationError(f"modèle inconnu : {template!r}")
    code = ticket.department
    if code is None:
        raise ModerationError("réaffectez d'abord la demande à un département")
    draft = current_draft(s, ticket)
    body = _render(s, settings, draft, ticket, template, code)
    if draft is None:
        sender = parse_message(ticket.raw, settings.limits).sender_address
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
    return {"draft": draft.id, "before": before, "after": template}
