"""The rules: each module answers one question about a message, with its evidence.

``RULES`` lists them in the order they are evaluated; :mod:`triage.decision` holds the order in
which their answers decide (the precedence of the specification). Adding a rule means adding a
module here and, if it decides anything, a link in the decision chain.
"""

from __future__ import annotations

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
