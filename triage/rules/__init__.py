"""The rules: each module answers one question about a message, with its evidence.

``RULES`` lists them in the order they are evaluated; :mod:`triage.decision` holds the order in
which their answers decide (the precedence of the specification). Adding a rule means adding a
module here and, if it decides anything, a link in the decision chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from triage.rules import (
    authentication,
    automatic,
    department,
    identifier,
    intent,
    nominative,
    sender,
    trust,
)

RULES: tuple[ModuleType, ...] = (
    automatic,
    authentication,
    sender,
    intent,
    nominative,
    department,
    identifier,
    trust,
)

BY_NAME: dict[str, ModuleType] = {rule.NAME: rule for rule in RULES}

# Labels of the reasons that do not come from a rule module, and of rules that do not carry
# their own ``LABEL`` yet.
_LABELS = {
    "decision": "Décision",
    "limits": "Limites",
    "pipeline": "Erreur de traitement",
    "loop": "Boucle",
    "authentication": "Authentification",
    "trust": "Vigilance",
}


def label(source: str) -> str:
    """The French label agents read before a reason of ``source`` (a rule's name, or
    ``decision``, ``limits``, ``pipeline``)."""
    rule = BY_NAME.get(source)
    found = getattr(rule, "LABEL", None) if rule is not None else None
    return str(found) if found else _LABELS.get(source, source)


def description(source: str) -> str | None:
    """A rule's one-line description (French), or None for a source that is not a rule."""
    rule = BY_NAME.get(source)
    return str(rule.DESCRIPTION) if rule is not None else None


def reasons_of(source: str, stored: Iterable[str]) -> list[str]:
    """The texts of ``source``'s reasons among reasons stored as strings (``str(Reason)``),
    without their label: « Vigilance : nom affiché trompeur » -> « nom affiché trompeur »."""
    prefix = f"{label(source)} : "
    return [r.removeprefix(prefix) for r in stored if r.startswith(prefix)]


def legend() -> tuple[tuple[str, str], ...]:
    """(label, description) of every rule, in evaluation order: what the reasons' labels mean,
    for ``triage explain`` and the ticket page."""
    return tuple((label(rule.NAME), str(rule.DESCRIPTION)) for rule in RULES)
