"""The life of a ticket, its drafts and its outbox items: the one writer of their states.

States are enums, the allowed moves one table of ``(state, event) → state``, and every move
goes through :func:`transition` (a ticket, with its drafts and outbox items) or
:func:`outbox_step` (what the sender does to an outbox item). Both read the current state
under a row lock, refuse a move the table does not hold, and write the new state with its
audit entry in the caller's transaction, so two processes acting at once serialise on the row
and the second sees the first's result. Pages and the command line ask :func:`allowed` which
actions a ticket offers; nothing else decides that.

The database backs the table: a partial unique index allows at most one outbox item per
draft that is queued, being sent or sent (``uq_outbox_one_reply_per_draft``), so even a
writer that bypassed this module could not queue a second reply.

    ticket:  open ──approve──► approved ──delivered──► sent ──follow-up──► open
               │  └─handled─► handled ◄──handled (reply not started)─┘
               └─(refused by the relay: approved ──refused──► open)
             quarantined ──release (admin)──► open; a follow-up never reopens it
             a follow-up that joined while the reply was on its way reopens the ticket once
             the reply is delivered (approved ──delivered──► sent ──follow-up──► open)
    draft:   pending ──approve──► approved ──delivered──► sent
             pending ──reject──► rejected; pending/approved ──handled──► discarded
             pending ──superseded (another draft of the thread approved)──► discarded
    outbox:  approved ──start──► sending ──commit──► committing ──delivered──► sent
             approved ──cancel (handled)──► cancelled; sending/committing ──retry──► approved;
             sending/approved ──refused──► failed
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from triage.errors import TriageError
from triage.store import transitions
from triage.store.models import AuditEvent, DraftRow, OutboxItem, Ticket


class TicketState(enum.StrEnum):
    OPEN = "open"
    QUARANTINED = "quarantined"
    APPROVED = "approved"
    SENT = "sent"
    HANDLED = "handled"


class DraftState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SENT = "sent"
    REJECTED = "rejected"
    DISCARDED = "discarded"


class OutboxState(enum.StrEnum):
    QUEUED = "approved"  # the column's historical value: approved by an agent, waiting
    SENDING = "sending"
    COMMITTING = "committing"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: What is left for agents to do: the queue's default.
TODO = (TicketState.OPEN, TicketState.QUARANTINED)
#: An outbox item in these states is, or may become, a reply at the relay.
LIVE = (OutboxState.QUEUED, OutboxState.SENDING, OutboxState.COMMITTING)
#: Items that count against "one reply per draft" (the partial unique index).
ONE_PER_DRAFT = (*LIVE, OutboxState.SENT)


class Event(enum.StrEnum):
    # What agents do (the web forms' verbs).
    APPROVE = "approve"
    SAVE = "save"
    REJECT = "reject"
    REASSIGN = "reassign"
    TEMPLATE = "template"
    HANDLED = "handled"
    RELEASE = "release"
    # What the service does.
    FOLLOW_UP = "follow-up"
    START = "start"
    COMMIT = "commit"
    RETRY = "retry"
    DELIVERED = "delivered"
    REFUSED = "refused"
    CANCEL = "cancel"
    SUPERSEDED = "superseded"  # another draft of the thread was approved


AGENT_EVENTS = (Event.APPROVE, Event.SAVE, Event.REJECT, Event.REASSIGN, Event.TEMPLATE,
                Event.HANDLED, Event.RELEASE)
ADMIN_ONLY = frozenset({Event.RELEASE})
NEEDS_PENDING_DRAFT = frozenset({Event.APPROVE, Event.SAVE, Event.REJECT})

_T, _D, _O = TicketState, DraftState, OutboxState
State = TicketState | DraftState | OutboxState

#: The one table of moves. A move to the same state is allowed work that changes no state.
TABLE: tuple[tuple[State, Event, State], ...] = (
    (_T.OPEN, Event.APPROVE, _T.APPROVED),
    (_T.OPEN, Event.SAVE, _T.OPEN),
    (_T.OPEN, Event.REJECT, _T.OPEN),
    (_T.OPEN, Event.REASSIGN, _T.OPEN),
    (_T.OPEN, Event.TEMPLATE, _T.OPEN),
    (_T.OPEN, Event.HANDLED, _T.HANDLED),
    (_T.OPEN, Event.FOLLOW_UP, _T.OPEN),
    (_T.QUARANTINED, Event.RELEASE, _T.OPEN),
    (_T.QUARANTINED, Event.REASSIGN, _T.QUARANTINED),
    (_T.QUARANTINED, Event.HANDLED, _T.HANDLED),
    (_T.QUARANTINED, Event.FOLLOW_UP, _T.QUARANTINED),
    (_T.APPROVED, Event.HANDLED, _T.HANDLED),  # only while the reply has not started
    (_T.APPROVED, Event.DELIVERED, _T.SENT),
    (_T.APPROVED, Event.REFUSED, _T.OPEN),
    (_T.APPROVED, Event.FOLLOW_UP, _T.APPROVED),
    (_T.SENT, Event.DELIVERED, _T.SENT),
    (_T.SENT, Event.FOLLOW_UP, _T.OPEN),
    (_T.HANDLED, Event.FOLLOW_UP, _T.OPEN),
    (_D.PENDING, Event.SAVE, _D.PENDING),
    (_D.PENDING, Event.APPROVE, _D.APPROVED),
    (_D.PENDING, Event.REJECT, _D.REJECTED),
    (_D.PENDING, Event.HANDLED, _D.DISCARDED),
    (_D.PENDING, Event.SUPERSEDED, _D.DISCARDED),
    (_D.APPROVED, Event.HANDLED, _D.DISCARDED),
    (_D.APPROVED, Event.DELIVERED, _D.SENT),
    (_D.APPROVED, Event.REFUSED, _D.PENDING),
    (_O.QUEUED, Event.START, _O.SENDING),
    (_O.QUEUED, Event.CANCEL, _O.CANCELLED),
    (_O.QUEUED, Event.RETRY, _O.QUEUED),
    (_O.QUEUED, Event.REFUSED, _O.FAILED),
    (_O.SENDING, Event.START, _O.SENDING),  # resumed after a crash before the final dot
    (_O.SENDING, Event.COMMIT, _O.COMMITTING),
    (_O.SENDING, Event.RETRY, _O.QUEUED),
    (_O.SENDING, Event.REFUSED, _O.FAILED),
    (_O.SENDING, Event.DELIVERED, _O.SENT),
    (_O.COMMITTING, Event.RETRY, _O.QUEUED),  # a 4xx answer to the final dot: not taken
    (_O.COMMITTING, Event.DELIVERED, _O.SENT),
    (_O.COMMITTING, Event.REFUSED, _O.FAILED),
)
_MOVES: dict[tuple[type, str, Event], State] = {(type(a), a.value, e): b for a, e, b in TABLE}

#: Events that are answered "already done" in these states instead of being refused: a second
#: approve, from whatever process, changes nothing.
NO_OPS = frozenset({(_T.APPROVED, Event.APPROVE), (_T.SENT, Event.APPROVE)})

#: The audit entry each ticket event writes.
AUDIT_NAMES = {
    Event.APPROVE: "draft.approved", Event.SAVE: "draft.edited", Event.REJECT: "draft.rejected",
    Event.REASSIGN: "ticket.reassigned", Event.TEMPLATE: "draft.template-changed",
    Event.HANDLED: "ticket.handled", Event.RELEASE: "ticket.released",
    Event.FOLLOW_UP: "ticket.follow-up", Event.DELIVERED: "outbox.sent",
    Event.REFUSED: "outbox.refused", Event.RETRY: "outbox.retry",
    Event.SUPERSEDED: "draft.discarded",
}

_REFUSALS = {
    TicketState.QUARANTINED: "ce message est en quarantaine : seul un administrateur peut l'en "
                             "libérer, aucune réponse ne peut être préparée ni validée avant",
    TicketState.APPROVED: "cette demande a déjà une réponse validée",
    TicketState.SENT: "la réponse à cette demande est déjà envoyée",
    TicketState.HANDLED: "cette demande est déjà traitée",
}


class NotAllowed(TriageError):
    """The event is not allowed in the current state; the message is for the agent (French)."""


def target(state: State, event: Event) -> State | None:
    """The state ``event`` leads to from ``state``, or None when the table has no such move."""
    return _MOVES.get((type(state), state.value, event))


def initial_state(action: str) -> TicketState:
    """The state a new ticket starts in, from its decided action."""
    return TicketState.QUARANTINED if action == "quarantine" else TicketState.OPEN


@dataclass(frozen=True)
class Step:
    """What :func:`transition` did: the state before and after, and whether anything changed."""

    before: TicketState
    after: TicketState
    changed: bool


# -- reading under a lock ------------------------------------------------------------------
def lock(s: Session, ticket: Ticket) -> TicketState:
    """Lock the ticket's row for this transaction (:func:`triage.store.transitions.lock_row`)
    and return its committed state."""
    transitions.lock_row(s, ticket.id)
    s.refresh(ticket)
    return TicketState(ticket.status)


def _thread_ids(s: Session, ticket: Ticket) -> list[int]:
    return [ticket.id, *transitions.follow_ups(s, ticket.id)]


def pending_draft(s: Session, ticket: Ticket) -> DraftRow | None:
    """The most recent pending draft of the thread: the one the agent works on."""
    return transitions.latest_draft(s, _thread_ids(s, ticket), DraftState.PENDING)


def live_items(s: Session, ticket: Ticket) -> list[OutboxItem]:
    return transitions.outbox_items(s, ticket.id, LIVE)


def allowed(s: Session, ticket: Ticket, *, admin: bool) -> frozenset[Event]:
    """The agents' actions ``ticket`` allows now (for an admin or not): what pages offer."""
    state = TicketState(ticket.status)
    out = {e for e in AGENT_EVENTS if target(state, e) is not None}
    if not admin:
        out -= ADMIN_ONLY
    if NEEDS_PENDING_DRAFT & out and pending_draft(s, ticket) is None:
        out -= NEEDS_PENDING_DRAFT
    if Event.HANDLED in out and any(i.state != OutboxState.QUEUED for i in live_items(s, ticket)):
        out.discard(Event.HANDLED)
    return frozenset(out)


# -- writing -------------------------------------------------------------------------------
def transition(s: Session, ticket: Ticket, event: Event, actor: str, *, admin: bool = False,
               effect: Callable[[DraftRow | None], dict[str, Any] | None] | None = None,
               record: bool = True, **detail: Any) -> Step:
    """Move ``ticket`` (a thread's head) by ``event``, with its drafts and outbox items.

    Locks the row, checks the table (and the admin-only events), finds the pending draft the
    event needs, runs ``effect(draft)`` (the caller's content change: edited text, new draft,
    new department; what it returns goes into the audit detail, and for ``APPROVE`` it must
    return the composed reply as ``item``), writes the states and one audit entry, all in
    the caller's transaction. Raises :class:`NotAllowed` with a French message (or whatever
    ``effect`` raises); the caller rolls back.
    """
    before = lock(s, ticket)
    if (before, event) in NO_OPS:
        return Step(before, before, False)
    after = target(before, event)
    if after is None:
        if event is Event.RELEASE:
            raise NotAllowed("ce message n'est pas en quarantaine")
        raise NotAllowed(_REFUSALS.get(before, "action impossible pour cette demande"))
    assert isinstance(after, TicketState)
    if event in ADMIN_ONLY and not admin:
        raise NotAllowed("seul un administrateur peut libérer un message de la quarantaine")
    draft = None
    if event in NEEDS_PENDING_DRAFT:
        draft = pending_draft(s, ticket)
        if draft is None:
            raise NotAllowed("aucun brouillon en attente pour cette demande")
    if event is Event.HANDLED:
        _cancel_replies(s, ticket, actor)
    if effect is not None:
        detail.update(effect(draft) or {})
    if event is Event.APPROVE:
        item: OutboxItem = detail.pop("item")
        assert draft is not None
        _move_draft(draft, event)
        _supersede(s, ticket, draft, actor)
        item.state = OutboxState.QUEUED
        s.add(item)
        s.flush()  # the partial unique index refuses a second live reply here
        detail.update(draft=draft.id, outbox=item.id, message_id=item.message_id)
    elif event is Event.REJECT:
        assert draft is not None
        _move_draft(draft, event)
        detail.setdefault("draft", draft.id)
    _write_state(s, ticket, after)
    if record:
        if after != before:
            detail.update(state_before=before.value, state_after=after.value)
        s.add(AuditEvent(ticket_id=ticket.id, actor=actor, event=AUDIT_NAMES[event],
                         detail=detail))
    if event is Event.APPROVE:  # after « brouillon validé »: the history reads in that order
        s.add(AuditEvent(ticket_id=ticket.id, actor=actor, event="outbox.queued",
                         detail={"outbox": detail["outbox"], "message_id": detail["message_id"],
                                 "to": item.to_addr}))
    return Step(before, after, after != before)


def _write_state(s: Session, ticket: Ticket, state: TicketState) -> None:
    if ticket.status != state:
        ticket.status = state.value


def _move_draft(draft: DraftRow, event: Event) -> None:
    after = target(DraftState(draft.status), event)
    if after is None:
        raise NotAllowed("ce brouillon n'est plus en attente")
    draft.status = after.value


def _supersede(s: Session, ticket: Ticket, approved: DraftRow, actor: str) -> None:
    """One reply per thread: the approved draft makes the thread's other pending drafts
    (older ones) stale; discarded, no later approval can send them as a second reply."""
    for draft in transitions.drafts(s, _thread_ids(s, ticket), [DraftState.PENDING],
                                    but=approved.id):
        _move_draft(draft, Event.SUPERSEDED)
        s.add(AuditEvent(ticket_id=ticket.id, actor=actor, event=AUDIT_NAMES[Event.SUPERSEDED],
                         detail={"draft": draft.id, "approved": approved.id}))


def _joined_since_queued(s: Session, ticket: Ticket, item: OutboxItem) -> list[int]:
    """The follow-ups that joined ``ticket`` after ``item`` was queued (the reply's approval).

    Read from the head's audit entries in id order, not from times: both entries are written
    under the ticket's row lock, so their ids keep the order of the two moves, whereas a
    follow-up's ticket gets its creation time when its batch starts, before it waits for the
    lock an approval holds (and times of two hosts need not agree).
    """
    joined: list[int] = []
    queued = False
    for entry in transitions.audit_entries(s, ticket.id, ("outbox.queued",
                                                          AUDIT_NAMES[Event.FOLLOW_UP])):
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if entry.event == "outbox.queued":
            queued = queued or detail.get("outbox") == item.id
        elif queued and isinstance(detail.get("ticket"), int):  # not a deferred entry
            joined.append(detail["ticket"])
    return joined


def _cancel_replies(s: Session, ticket: Ticket, actor: str) -> None:
    """``handled``: cancel the queued reply, or refuse when the sender has started on it.

    The cancel is a compare-and-set on the item's state, so it and the sender's start
    (the same on ``approved → sending``) cannot both win.
    """
    for item in live_items(s, ticket):
        if not _cas(s, item, Event.CANCEL):
            raise NotAllowed("la réponse est déjà en cours d'envoi : elle ne peut plus être "
                             "annulée")
        s.add(AuditEvent(ticket_id=ticket.id, actor=actor, event="outbox.cancelled",
                         detail={"outbox": item.id, "message_id": item.message_id}))
    for draft in transitions.drafts(s, _thread_ids(s, ticket),
                                    [DraftState.PENDING, DraftState.APPROVED]):
        _move_draft(draft, Event.HANDLED)


def _cas(s: Session, item: OutboxItem, event: Event) -> bool:
    """Move ``item`` by ``event`` only if its committed state still allows it."""
    s.refresh(item)
    before = OutboxState(item.state)
    after = target(before, event)
    if after is None:
        return False
    won = transitions.set_outbox_state(s, item.id, before.value, after.value)
    if won:
        item.state = after.value
    return won


def outbox_step(s: Session, item: OutboxItem, event: Event, **values: object) -> bool:
    """Move an outbox item (the sender's steps); False when its state no longer allows it.

    ``delivered`` and ``refused`` also move the item's draft and ticket and write the audit
    entry. The caller commits.
    """
    ends = event in (Event.DELIVERED, Event.REFUSED)
    # The ticket's lock before the item's, the order transition() takes them in (``handled``
    # locks the ticket, then cancels the item): never the reverse, which could deadlock.
    ticket = s.get(Ticket, item.ticket_id) if ends else None
    state = lock(s, ticket) if ticket is not None else None
    if not _cas(s, item, event):
        return False
    for key, value in values.items():
        setattr(item, key, value)
    if ends:
        draft = s.get(DraftRow, item.draft_id)
        if draft is not None and target(DraftState(draft.status), event) is not None:
            _move_draft(draft, event)
        after = target(state, event) if state is not None else None
        if ticket is not None and isinstance(after, TicketState):
            _write_state(s, ticket, after)
            if event is Event.DELIVERED and state is TicketState.APPROVED:
                _deferred_follow_ups(s, ticket, after, item)
    return True


def _deferred_follow_ups(s: Session, ticket: Ticket, sent: TicketState, item: OutboxItem
                         ) -> None:
    """Follow-ups that joined while the reply was queued (the ticket stayed ``approved``) take
    effect now that it is delivered: the ticket moves as a follow-up on a sent ticket does
    (back to the agents, with the follow-up's draft), instead of leaving them unseen."""
    later = _joined_since_queued(s, ticket, item)
    reopened = target(sent, Event.FOLLOW_UP)
    if not later or not isinstance(reopened, TicketState):
        return
    _write_state(s, ticket, reopened)
    s.add(AuditEvent(ticket_id=ticket.id, actor="triage", event=AUDIT_NAMES[Event.FOLLOW_UP],
                     detail={"tickets": later, "deferred": True, "state_before": sent.value,
                             "state_after": reopened.value}))


def follow_up(s: Session, root: Ticket, actor: str, **detail: Any) -> None:
    """A follow-up from the requester joined ``root``: reopen it where the table says so (a
    quarantined ticket stays quarantined, an approved one keeps its reply on its way)."""
    state = lock(s, root)
    after = target(state, Event.FOLLOW_UP)
    if isinstance(after, TicketState):
        _write_state(s, root, after)
    detail.update(state_before=state.value, state_after=(after or state).value)
    s.add(AuditEvent(ticket_id=root.id, actor=actor, event=AUDIT_NAMES[Event.FOLLOW_UP],
                     detail=detail))
