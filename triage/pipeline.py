"""The pure pipeline: bytes in, outcome out (view, decision, draft). No I/O happens here.

``explain``, ``eval``, ``replay`` and the daemon all run :func:`triage_bytes`, so they decide
alike. Any failure becomes a quarantine outcome carrying the error: one bad message never stops
the caller.

It is two steps. :func:`examine` (parse and rules) depends on the message alone;
:func:`conclude` (the sender's history, the decision, the draft) depends on the messages
concluded before it. The daemon and ``explain`` call both at once through
:func:`triage_bytes`; ``eval`` and ``replay`` examine in a pool of processes
(:mod:`triage.bulk`) and conclude in input order in their own.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from triage import decision as decision_mod
from triage.config import Settings
from triage.decision import Action, Decision, Findings, SenderHistory
from triage.draft import Draft, make_draft
from triage.parse import MessageView, parse_message
from triage.rules.base import Context


@dataclass(frozen=True)
class Outcome:
    message: MessageView | None
    decision: Decision
    draft: Draft | None
    findings: Findings | None = None
    error: str | None = None
    # When the message arrived (or was dated, for archived mail): the decision's "now".
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Examined:
    """What the part of the pipeline that needs no sender history learnt of one message:
    its view and every rule's finding (or the error that stopped it). Picklable, so that bulk
    commands examine in other processes and conclude in their own, in input order."""

    message: MessageView | None
    findings: Findings | None
    # The decision's "now": the arrival, or the message's Date for archived mail.
    received_at: datetime
    seconds: float  # spent examining, counted against ``limits.max_seconds``
    error: str | None = None
    detail: str | None = None  # the traceback behind ``error``


def triage_bytes(raw: bytes, settings: Settings, mailbox: str | None = None,
                 size: int | None = None, history: SenderHistory | None = None,
                 at: datetime | None = None, dated: bool = False,
                 partial: bool = False) -> Outcome:
    """Parse, evaluate the rules, decide and draft; never raises.

    ``size`` is the message's real size when ``raw`` is only part of it (the daemon does not
    download large attachments); the size limit applies to it. ``history`` is the sender-history
    port (the store); without it the per-sender daily limit is not checked, and the reasons say
    so. ``at`` is when the message arrived (default: now); ``dated`` takes it from the
    message's Date instead (archived mail, as of when it was written). ``partial`` is the
    intake's out-of-band word that ``raw`` is a stand-in of a large message
    (:attr:`triage.mailbox.fetch.Fetched.partial`); nothing in ``raw`` can say so.

    It is :func:`examine` then :func:`conclude`; bulk commands call those two apart.
    """
    return conclude(examine(raw, settings, mailbox, size, at, dated, partial), settings,
                    mailbox, history)


def examine(raw: bytes, settings: Settings, mailbox: str | None = None,
            size: int | None = None, at: datetime | None = None, dated: bool = False,
            partial: bool = False) -> Examined:
    """Parse and run every rule (arguments as :func:`triage_bytes`); never raises.

    Pure and independent of every other message, unlike :func:`conclude`."""
    view: MessageView | None = None
    started = time.monotonic()
    at = at or datetime.now(UTC)
    try:
        view = parse_message(raw, settings.limits, partial=partial)
        if dated:
            at = message_date(view) or at
        limit = settings.limits.max_message_bytes
        if size is not None and size > limit and not view.violations:
            view = replace(view, violations=(
                f"message de {size} octets, au-delà de la limite de {limit} octets",))
        findings = decision_mod.findings_of(view, Context(settings=settings, mailbox=mailbox))
        return Examined(view, findings, at, time.monotonic() - started)
    except Exception as exc:  # a failure on one message must not stop the service
        error, detail = _failure(exc)
        return Examined(view, None, at, time.monotonic() - started, error, detail)


def prepare(settings: Settings) -> None:
    """Build now what :func:`examine` builds on first use, once per configuration (the
    geography: departments, communes, groupings), for a process about to examine many."""
    _ = Context(settings=settings).geography


def conclude(examined: Examined, settings: Settings, mailbox: str | None = None,
             history: SenderHistory | None = None) -> Outcome:
    """Read the sender's history, decide and draft; never raises.

    Messages must be concluded in the order they are decided: the history counts the drafts
    of the messages concluded before (``history.drafted``)."""
    view, findings, at = examined.message, examined.findings, examined.received_at
    if examined.error is not None or view is None or findings is None:
        error = examined.error or "erreur de traitement : message non examiné"
        return Outcome(view, decision_mod.quarantine(error), None, None, examined.detail, at)
    started = time.monotonic()
    try:
        findings = decision_mod.with_history(findings, view, history, at)
        decision = decision_mod.decide(findings)
        draft = (make_draft(view, decision, settings, mailbox)
                 if decision.action is Action.DRAFT else None)
        elapsed = examined.seconds + time.monotonic() - started
        if elapsed > settings.limits.max_seconds and decision.action is not Action.IGNORE:
            # The input limits bound the work; a message that still took too long is set aside
            # for a person rather than trusted.
            decision = decision_mod.quarantine(
                f"traitement trop long ({elapsed:.1f} s, limite {settings.limits.max_seconds} s)")
            return Outcome(view, decision, None, findings, received_at=at)
        if draft is not None and history is not None:
            history.drafted(draft.to, at)
        return Outcome(view, decision, draft, findings, received_at=at)
    except Exception as exc:  # a failure on one message must not stop the service
        error, detail = _failure(exc)
        return Outcome(view, decision_mod.quarantine(error), None, None, detail, at)


def _failure(exc: Exception) -> tuple[str, str]:
    """The quarantine reason for ``exc``, and its traceback (called in the handler)."""
    return (f"erreur de traitement : {type(exc).__name__}: {exc}",
            traceback.format_exc(limit=8))


def message_date(view: MessageView) -> datetime | None:
    """The message's Date header as an aware time, never later than now (archived mail is
    decided as of when it was written); None when absent or unreadable."""
    value = view.header("Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(when.astimezone(UTC), datetime.now(UTC))
