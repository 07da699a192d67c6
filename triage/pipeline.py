"""The pure pipeline: bytes in, outcome out (view, decision, draft). No I/O happens here.

``explain``, ``eval``, ``replay`` and the daemon all call :func:`triage_bytes`, so they decide
alike. Any failure becomes a quarantine outcome carrying the error: one bad message never stops
the caller.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, replace

from triage import decision as decision_mod
from triage.config import Settings
from triage.decision import Action, Decision, Findings
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


def triage_bytes(raw: bytes, settings: Settings, mailbox: str | None = None,
                 size: int | None = None) -> Outcome:
    """Parse, evaluate the rules, decide and draft; never raises.

    ``size`` is the message's real size when ``raw`` is only part of it (the daemon does not
    download large attachments); the size limit applies to it.
    """
    view: MessageView | None = None
    started = time.monotonic()
    try:
        view = parse_message(raw, settings.limits)
        limit = settings.limits.max_message_bytes
        if size is not None and size > limit and not view.violations:
            view = replace(view, violations=(
                f"message de {size} octets, au-delà de la limite de {limit} octets",))
        ctx = Context(settings=settings, mailbox=mailbox)
        findings = decision_mod.evaluate(view, ctx)
        decision = decision_mod.decide(findings)
        draft = (make_draft(view, decision, settings, mailbox)
                 if decision.action is Action.DRAFT else None)
        elapsed = time.monotonic() - started
        if elapsed > settings.limits.max_seconds and decision.action is not Action.IGNORE:
            # The input limits bound the work; a message that still took too long is set aside
            # for a person rather than trusted.
            decision = decision_mod.quarantine(
                f"traitement trop long ({elapsed:.1f} s, limite {settings.limits.max_seconds} s)")
            return Outcome(view, decision, None, findings)
        return Outcome(view, decision, draft, findings)
    except Exception as exc:  # a failure on one message must not stop the service
        error = f"erreur de traitement : {type(exc).__name__}: {exc}"
        detail = traceback.format_exc(limit=8)
        return Outcome(view, decision_mod.quarantine(error), None, None, detail)
