"""Named queries of the agents' accounts (:mod:`triage.review.agents` manages them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from triage.store.models import Agent


def by_login(s: Session, login: str) -> Agent | None:
    """The account of ``login`` (as stored: lower case), enabled or not."""
    return s.scalar(select(Agent).where(Agent.login == login))


def everyone(s: Session) -> list[Agent]:
    """Every account, enabled or not, by login."""
    return list(s.scalars(select(Agent).order_by(Agent.login)))
