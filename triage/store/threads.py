"""Threading: which ticket a message refers to, and whether it may join it.

A message refers to a ticket by our reply's Message-ID (the outbox), by the Message-ID of a
ticket (In-Reply-To, References), or by the ``[réf. Tn]`` we put in our replies' subjects.
Ticket numbers are sequential and printed in every reply, so a reference proves nothing: a
message joins the ticket only when it comes from the ticket's requester (same address, not
quarantined, no trust warning) and reached the same department's mailbox or was addressed to
a mailbox the ticket reached (:func:`may_join`). Anything else opens its own ticket, which
*mentions* the one it referred to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.pipeline import Outcome
from triage.send.compose import TICKET_REF  # the reference our replies carry
from triage.store.models import MAX_TICKET_ID, OutboxItem, Ticket, TicketSource

_MESSAGE_IDS = re.compile(r"<([^<>\s]+)>")
_CHUNK = 500  # values per IN list: far below every database's limit on bound parameters


def in_chunks(s: Session, query: Callable[[list[Any]], Any], values: Iterable[Any]
              ) -> list[Any]:
    """The rows of ``query(chunk)`` for ``values`` cut into chunks."""
    ordered = sorted(values)
    out: list[Any] = []
    for i in range(0, len(ordered), _CHUNK):
        out += s.scalars(query(ordered[i:i + _CHUNK])).all()
    return out


def references(outcome: Outcome) -> list[str]:
    """The Message-IDs a message refers to (In-Reply-To, References)."""
    message = outcome.message
    if message is None:
        return []
    in_reply_to = (message.header("In-Reply-To") or "")[:998]
    refs = (message.header("References") or "")[:8000]
    return _MESSAGE_IDS.findall(f"{in_reply_to} {refs}")


@dataclass(frozen=True)
class Arrival:
    """What :func:`may_join` needs to know about the message that refers to a ticket."""

    sender: str | None  # the one From address, lower-cased
    trusted: bool  # not quarantined, and the trust rule found nothing to warn about
    places: frozenset[str]  # the mailbox it reached, else the addresses it was sent to


def arrival(outcome: Outcome, mailbox: str | None) -> Arrival:
    message, decision = outcome.message, outcome.decision
    if message is None:
        return Arrival(None, False, frozenset())
    sender = message.sender_address
    trust = outcome.findings.by_rule.get("trust") if outcome.findings is not None else None
    trusted = decision.action.value not in ("quarantine", "ignore") and not (
        trust is not None and trust.value)
    if mailbox:
        places = frozenset({mailbox.strip().lower()})
    else:
        places = frozenset(a.address for a in message.recipients) | frozenset(
            d.strip().lower() for d in message.delivered_to)
    return Arrival(sender.address if sender else None, trusted, places)


def may_join(requester: str | None, places: Iterable[str], who: Arrival) -> bool:
    """May ``who`` join the ticket of ``requester`` that reached (or belongs to) ``places``?"""
    return (who.trusted and who.sender is not None and requester is not None
            and who.sender == requester.lower() and bool(who.places & set(places)))


class Threads:
    """Which ticket each message of a batch refers to, in a few queries for the whole batch.

    By our reply's Message-ID (the outbox), else by the Message-ID of a ticket (the oldest one,
    in the database or earlier in the batch), looked up from the last reference back, else by
    the ticket reference in the subject; always the thread's head.
    """

    def __init__(self, s: Session, refs: list[list[str]]) -> None:
        self.s = s
        wanted = {mid for r in refs for mid in r}
        self.outbox: dict[str, int] = {}
        self.tickets: dict[str, Ticket] = {}
        if wanted:
            for item in in_chunks(s, lambda chunk: select(OutboxItem).where(
                    OutboxItem.message_id.in_(chunk)), wanted):
                self.outbox[item.message_id] = item.ticket_id
            found = in_chunks(s, lambda chunk: select(Ticket).where(
                Ticket.message_id.in_(chunk)), wanted)
            for ticket in sorted(found, key=lambda t: t.id):
                self.tickets.setdefault(ticket.message_id or "", ticket)
        self.links: list[tuple[Ticket, Ticket]] = []  # (follow-up, head), set after the flush
        self.mentions: list[tuple[Ticket, Ticket]] = []  # (new ticket, the one it mentions)
        self._linked: dict[int, Ticket] = {}
        self._places: dict[int, set[str]] = {}  # id(ticket) -> mailboxes it reached

    def referred(self, subject: str, in_reply_to: str | None, refs: str | None
                 ) -> Ticket | None:
        """The head of the thread the message refers to, if any."""
        ids = _MESSAGE_IDS.findall(f"{in_reply_to or ''} {refs or ''}")
        for mid in reversed(ids):
            if mid in self.outbox:
                return self.head(self.s.get(Ticket, self.outbox[mid]))
            if mid in self.tickets:
                return self.head(self.tickets[mid])
        match = TICKET_REF.search(subject or "")
        if match and int(match.group(1)) <= MAX_TICKET_ID:  # beyond: no ticket has that id
            return self.head(self.s.get(Ticket, int(match.group(1))))
        return None

    def head(self, ticket: Ticket | None) -> Ticket | None:
        if ticket is not None and id(ticket) in self._linked:  # a follow-up of this batch
            return self._linked[id(ticket)]
        while ticket is not None and ticket.parent_id is not None:
            ticket = self.s.get(Ticket, ticket.parent_id)
        return ticket

    def places(self, ticket: Ticket) -> set[str]:
        """The mailboxes ``ticket`` reached (recorded, or seen earlier in this batch)."""
        known = self._places.setdefault(id(ticket), set())
        if ticket.id is not None:
            known.update(self.s.scalars(select(TicketSource.mailbox).where(
                TicketSource.ticket_id == ticket.id)))
        return known

    def reached(self, ticket: Ticket, mailbox: str | None) -> None:
        if mailbox:
            self._places.setdefault(id(ticket), set()).add(mailbox.strip().lower())

    def link(self, child: Ticket, head: Ticket) -> None:
        self.links.append((child, head))
        self._linked[id(child)] = head

    def mention(self, ticket: Ticket, other: Ticket) -> None:
        self.mentions.append((ticket, other))

    def add(self, ticket: Ticket) -> None:
        """A ticket of this batch, found by its Message-ID by the messages after it."""
        if ticket.message_id:
            self.tickets.setdefault(ticket.message_id, ticket)

    def resolve(self) -> None:
        """After the flush: every ticket has its id; set the links and mentions."""
        for child, head in self.links:
            child.parent_id = head.id
        for ticket, other in self.mentions:
            ticket.mentions_id = other.id
