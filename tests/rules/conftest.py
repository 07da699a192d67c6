"""Fixtures for the rule tests: run one rule on one .eml fixture of tests/data/rules/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from triage.config import Settings, load_settings
from triage.parse import parse_message
from triage.rules.base import Context, Finding

DATA = Path(__file__).resolve().parent.parent / "data" / "rules"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture()
def check(settings: Settings) -> Callable[..., Finding[Any]]:
    """``check(rule_module, "rule/fixture.eml", mailbox=None)`` -> the rule's finding."""

    def run(rule: ModuleType, fixture: str, mailbox: str | None = None) -> Finding[Any]:
        view = parse_message((DATA / fixture).read_bytes(), settings.limits)
        finding: Finding[Any] = rule.check(view, Context(settings=settings, mailbox=mailbox))
        assert finding.rule == rule.NAME
        assert all(r.rule == rule.NAME for r in finding.reasons)
        return finding

    return run


def reasons(finding: Finding[Any]) -> str:
    return "\n".join(r.text for r in finding.reasons)
