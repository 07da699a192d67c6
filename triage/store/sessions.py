"""Named queries of the web sessions and the login attempts (:mod:`triage.review.sessions`
decides what they mean: timeouts, throttling), and their purge by the housekeeping pass."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from triage.store.models import Agent, LoginAttempt, WebSession


def standing(s: Session, born: datetime, seen: datetime) -> list[tuple[WebSession, Agent]]:
    """Sessions not ended, opened since ``born`` and seen since ``seen``, newest first, with
    their agent."""
    return [(row, agent) for row, agent in s.execute(
        select(WebSession, Agent).join(Agent, Agent.id == WebSession.agent_id)
        .where(WebSession.ended_at.is_(None), WebSession.created_at >= born,
               WebSession.last_seen_at >= seen)
        .order_by(WebSession.created_at.desc()))]


def last_success(s: Session, login: str, client: str) -> datetime | None:
    """When ``login`` last signed in from ``client``, if ever (as far as the store keeps)."""
    return s.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.login == login, LoginAttempt.address == client,
        LoginAttempt.success.is_(True)))


def failures_since(s: Session, login: str, client: str, since: datetime, limit: int
                   ) -> list[datetime]:
    """When ``login`` failed from ``client`` after ``since``: the ``limit`` latest, newest
    first."""
    return list(s.scalars(select(LoginAttempt.at).where(
        LoginAttempt.login == login, LoginAttempt.address == client,
        LoginAttempt.success.is_(False), LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc()).limit(limit)))


def attempts_since(s: Session, since: datetime, limit: int, client: str | None = None
                   ) -> list[datetime]:
    """When logins were tried since ``since`` (from ``client``, or from anywhere): the
    ``limit`` latest, newest first."""
    where: list[ColumnElement[bool]] = [LoginAttempt.at >= since]
    if client is not None:
        where.append(LoginAttempt.address == client)
    return list(s.scalars(select(LoginAttempt.at).where(*where)
                          .order_by(LoginAttempt.at.desc()).limit(limit)))


def purge(s: Session, sessions_before: datetime, attempts_before: datetime) -> tuple[int, int]:
    """Delete the sessions that ended or expired before ``sessions_before`` (ended, or opened
    before it: past any absolute timeout) and the login attempts made before
    ``attempts_before``; returns how many of each. The caller commits."""
    sessions = s.execute(delete(WebSession).where(or_(
        WebSession.ended_at < sessions_before, WebSession.created_at < sessions_before)))
    attempts = s.execute(delete(LoginAttempt).where(LoginAttempt.at < attempts_before))
    return int(sessions.rowcount), int(attempts.rowcount)  # type: ignore[attr-defined]
