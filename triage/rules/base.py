"""What a rule is: a name, a one-line description, and a pure ``check``.

A rule answers one question about a message and returns a :class:`Finding`: the answer and the
reasons that support it, each naming the rule and the evidence in words an agent understands.
Rules never act; :mod:`triage.decision` reads the findings and decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from triage.config import Settings
from triage.parse import MessageView

if TYPE_CHECKING:
    from triage.rules.communes import CommuneIndex
    from triage.rules.places import Geography

T = TypeVar("T")


@dataclass(frozen=True)
class Reason:
    """One piece of evidence, in French, attributed to the rule that found it.

    Written for agents as « Label : texte » (``Demande : mot de passe expiré…``), the label
    being the rule's French ``LABEL``; ``rule`` keeps the rule's name for programs."""

    rule: str
    text: str

    def __str__(self) -> str:
        from triage.rules import label  # the rules package imports this module

        return f"{label(self.rule)} : {self.text}"


@dataclass(frozen=True)
class Finding(Generic[T]):
    """A rule's answer and the reasons behind it."""

    rule: str
    value: T
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Context:
    """What a rule may know besides the message: the configuration and the receiving mailbox."""

    settings: Settings
    mailbox: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @cached_property
    def geography(self) -> Geography:
        """The configured departments, their names and communes (cached per configuration)."""
        from triage.rules.places import geography

        return geography(self.settings.departments)

    @property
    def communes(self) -> CommuneIndex:
        return self.geography.communes


class Rule(Protocol):
    """The shape every module of :mod:`triage.rules` presents: a name for programs, a French
    label and one-line description for agents, and a pure ``check``."""

    NAME: str
    LABEL: str
    DESCRIPTION: str

    def check(self, message: MessageView, ctx: Context) -> Finding[object]: ...


def finding(rule: str, value: T, *reasons: str) -> Finding[T]:
    """Build a finding whose reasons all belong to ``rule``."""
    return Finding(rule, value, tuple(Reason(rule, r) for r in reasons))
