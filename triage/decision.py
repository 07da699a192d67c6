"""From findings to a decision, with the precedence of the specification in one place.

Every rule is evaluated (agents see all the evidence), then the chain is walked top-down and
the first link whose test holds decides::

    automatic message            -> ignore
    limits exceeded              -> quarantine
    trusted DMARC fail           -> quarantine
    sender unparseable           -> quarantine
    intent other                 -> human
    sender's daily limit reached -> human   (the sender-history port; loop protection)
    sender not nominative        -> draft request_nominative_address
    department undetermined      -> human
    unauthenticated, where the department requires it -> human
    expired password             -> draft expired_password
    forgotten password           -> draft reset_password
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from triage.parse import MessageView
from triage.rules import RULES, authentication, intent
from triage.rules.base import Context, Finding, Reason


class Action(enum.StrEnum):
    IGNORE = "ignore"
    QUARANTINE = "quarantine"
    HUMAN = "human"
    DRAFT = "draft"


class SenderHistory(Protocol):
    """What the chain may know of a sender's past: the store in the daemon and in replay.

    ``drafts_before`` counts the drafts prepared for ``address`` for messages received in the
    24 hours up to ``at`` (the message's arrival, or its date for archived mail), before this
    message; ``drafted`` tells the port that this message was decided a draft, so that later
    messages of the same batch count it before it is stored.
    """

    def drafts_before(self, address: str, at: datetime) -> int: ...

    def drafted(self, address: str, at: datetime) -> None: ...


@dataclass(frozen=True)
class Findings:
    """Every rule's finding for one message, by rule name."""

    by_rule: dict[str, Finding[Any]]
    violations: tuple[str, ...] = ()
    # Departments that draft a reset only for an authenticated sender (configuration).
    require_authentication: frozenset[str] = frozenset()
    # Drafts already prepared for the sender in the last 24 h; None: no history was given.
    drafts_today: int | None = None
    max_drafts_per_day: int = 3

    def value(self, rule: str) -> Any:
        return self.by_rule[rule].value


@dataclass(frozen=True)
class Link:
    name: str
    test: Callable[[Findings], bool]
    action: Action
    template: str | None
    explanation: str


def _auth(f: Findings) -> authentication.AuthResult:
    result: authentication.AuthResult = f.value("authentication")
    return result


CHAIN: tuple[Link, ...] = (
    Link("automatic", lambda f: bool(f.value("automatic")), Action.IGNORE, None,
         "message automatique : jamais de réponse"),
    Link("limits", lambda f: bool(f.violations), Action.QUARANTINE, None,
         "message hors limites : mis en quarantaine"),
    Link("dmarc-fail", lambda f: _auth(f).dmarc == "fail", Action.QUARANTINE, None,
         "échec DMARC selon le serveur de confiance : mis en quarantaine"),
    Link("sender-unparseable", lambda f: f.value("sender") is None, Action.QUARANTINE, None,
         "expéditeur illisible : mis en quarantaine"),
    Link("intent-other", lambda f: f.value("intent") == intent.OTHER, Action.HUMAN, None,
         "demande autre qu'un mot de passe -xt oublié ou expiré : à traiter par un agent"),
    Link("sender-daily-limit",
         lambda f: f.drafts_today is not None and f.drafts_today >= f.max_drafts_per_day,
         Action.HUMAN, None, "limite quotidienne de brouillons atteinte pour cet expéditeur : "
         "à traiter par un agent"),
    Link("not-nominative", lambda f: not f.value("nominative"), Action.DRAFT,
         "request_nominative_address",
         "adresse non nominative : réponse demandant d'écrire depuis l'adresse nominative"),
    Link("department-unknown", lambda f: f.value("department") is None, Action.HUMAN, None,
         "département indéterminé : à orienter par un agent"),
    Link("authentication-required",
         lambda f: f.value("department") in f.require_authentication and not _auth(f).authenticated,
         Action.HUMAN, None, "ce département exige un expéditeur authentifié (DMARC) pour "
         "préparer une réinitialisation : à vérifier par un agent"),
    Link("expired", lambda f: f.value("intent") == intent.EXPIRED, Action.DRAFT,
         "expired_password", "mot de passe expiré : réponse de renouvellement"),
    Link("forgotten", lambda f: f.value("intent") == intent.FORGOTTEN, Action.DRAFT,
         "reset_password", "mot de passe oublié : réponse de réinitialisation"),
)


@dataclass(frozen=True)
class Decision:
    action: Action
    template: str | None
    intent: str
    department: str | None
    nominative: bool
    identifier: str | None
    link: str
    reasons: tuple[Reason, ...]
    authenticated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "template": self.template,
            "intent": self.intent,
            "department": self.department,
            "nominative": self.nominative,
            "identifier": self.identifier,
            "authenticated": self.authenticated,
            "link": self.link,
            "reasons": [str(r) for r in self.reasons],
        }


def findings_of(message: MessageView, ctx: Context) -> Findings:
    """Run every rule on ``message``: the part of the chain that needs nothing but the message
    and the configuration (no sender history), so that bulk commands may run it in other
    processes; :func:`with_history` adds the history in the caller's order."""
    strict = frozenset(d.code for d in ctx.settings.departments if d.require_authentication)
    return Findings({rule.NAME: rule.check(message, ctx) for rule in RULES}, message.violations,
                    strict, None, ctx.settings.max_drafts_per_sender_per_day)


def with_history(findings: Findings, message: MessageView, history: SenderHistory | None,
                 at: datetime | None) -> Findings:
    """``findings`` with the sender's drafts of the last 24 h up to ``at``, read from the
    port; unchanged (the limit not checked) without a port, a readable sender or a time."""
    sender = message.sender_address
    if history is None or sender is None or at is None:
        return findings
    return replace(findings, drafts_today=history.drafts_before(sender.address, at))


def _history_reason(findings: Findings) -> Reason | None:
    sender = findings.value("sender") if "sender" in findings.by_rule else None
    if sender is None:
        return None
    limit = findings.max_drafts_per_day
    if findings.drafts_today is None:
        return Reason("loop", f"limite de {limit} brouillons par expéditeur et par jour non "
                              "vérifiée : pas d'historique des expéditeurs")
    if findings.drafts_today >= limit:
        return Reason("loop", f"déjà {findings.drafts_today} brouillons préparés pour "
                              f"{sender.address} depuis 24 h : à traiter par un agent")
    return Reason("loop", f"{findings.drafts_today} brouillon(s) préparé(s) pour "
                          f"{sender.address} depuis 24 h (limite {limit})")


def decide(findings: Findings) -> Decision:
    """Walk the chain; the first link that holds decides. Pure."""
    link = next(link for link in CHAIN if link.test(findings))
    reasons: list[Reason] = [Reason("limits", v) for v in findings.violations]
    for finding in findings.by_rule.values():
        reasons.extend(finding.reasons)
    history = _history_reason(findings)
    if history is not None:
        reasons.append(history)
    reasons.append(Reason("decision", link.explanation))
    return Decision(
        action=link.action,
        template=link.template,
        intent=findings.value("intent"),
        department=findings.value("department"),
        nominative=bool(findings.value("nominative")),
        identifier=findings.value("identifier"),
        link=link.name,
        reasons=tuple(reasons),
        authenticated=_auth(findings).authenticated,
    )


def quarantine(error: str) -> Decision:
    """The decision for a message the pipeline could not process at all."""
    return Decision(Action.QUARANTINE, None, intent.OTHER, None, False, None, "error",
                    (Reason("pipeline", error),))
