"""The pure pipeline: bytes in, outcome out (view, decision, draft). No I/O happens here.

``explain``, ``eval``, ``replay`` and the daemon all call :func:`triage_bytes`, so they decide
alike. Any failure becomes a quarantine outcome carrying the error: one bad message never stops
the caller.
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
    """
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
        ctx = Context(settings=settings, mailbox=mailbox)
        findings = decision_mod.evaluate(view, ctx, history, at)
        decision = decision_mod.decide(findings)
        draft = (make_draft(view, decision, settings, mailbox)
                 if decision.action is Action.DRAFT else None)
        elapsed = time.monotonic() - started
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
        error = f"erreur de traitement : {type(exc).__name__}: {exc}"
        detail = traceback.format_exc(limit=8)
        return Outcome(view, decision_mod.quarantine(error), None, None, detail, at)


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
