"""Sessions: signed cookies naming a server-side session, CSRF tokens, flash notices, and
login throttling that slows attackers without locking anyone out.

A session is a signed cookie (itsdangerous) holding the agent's id and session epoch, a random
session id, the CSRF token, two times (issued, last seen) and at most one flash notice. For a
signed-in agent the session id also names a row of ``web_sessions``: each request checks the
signature, the absolute and inactivity timeouts, that the agent exists, is enabled and has the
same epoch (disabling an agent or changing the password bumps it: every session ends), and that
the row stands. Logging out or an admin's revocation ends the row, so a copied cookie is dead
at once. (A bump of the epoch at logout would end the agent's other browsers too, and would not
let an admin see or end one session: hence the table.)

Notices shown after an action (« Réponse validée… ») travel in the signed cookie, written by the
server, read once; nothing in a URL can put words on a page.

Failed logins are counted in the store, so the limits hold across web processes. Past
``login_attempts`` failures for one login from one client, each further attempt from that
client must wait ``login_delay_seconds``, doubled at each failure up to
``login_max_delay_seconds``; the same login from another client is not slowed (no one can lock
an agent out), and ``login_global_per_minute`` bounds the password checks of all logins
together (argon2 is costly). An unknown login costs one argon2 check too, against a dummy hash,
so timing does not tell which logins exist.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.review.agents import check_password
from triage.store import Agent, AuditEvent, LoginAttempt, WebSession
from triage.store import agents as accounts
from triage.store import sessions as stored

#: A session's last-seen time is written at most this often (seconds): one write per minute,
#: not one per page.
_SEEN_EVERY = 60.0


def secret_key(settings: Settings) -> str:
    """The cookie signing key: from the environment, a file, or created once under data_dir."""
    web = settings.web
    if web.secret_env and os.environ.get(web.secret_env):
        return os.environ[web.secret_env]
    path = Path(web.secret_file) if web.secret_file else settings.path(settings.data_dir) / (
        "web-secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text("utf-8").strip()


@dataclass(frozen=True)
class SessionData:
    agent_id: int | None
    epoch: int
    sid: str
    csrf: str
    issued: float
    seen: float
    #: A notice to show once: ("ok" or "err", text written by the server).
    flash: tuple[str, str] | None = None

    def dump(self) -> dict[str, Any]:
        return {"a": self.agent_id, "e": self.epoch, "s": self.sid, "c": self.csrf,
                "i": self.issued, "l": self.seen, "f": list(self.flash) if self.flash else None}


class SessionCodec:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.serializer = URLSafeTimedSerializer(secret_key(settings), salt="triage-session")
        self.cookie_name = "__Host-triage" if settings.web.secure_cookies else "triage_session"

    def new(self, agent: Agent | None) -> SessionData:
        t = time.time()
        return SessionData(agent.id if agent else None, agent.session_epoch if agent else 0,
                           secrets.token_urlsafe(16), secrets.token_urlsafe(32), t, t)

    def encode(self, data: SessionData) -> str:
        return self.serializer.dumps(data.dump())

    def decode(self, value: str | None) -> SessionData | None:
        if not value:
            return None
        web = self.settings.web
        try:
            raw = self.serializer.loads(value, max_age=web.session_max_hours * 3600)
        except (BadSignature, ValueError, TypeError):
            return None
        try:
            flash = raw.get("f")
            data = SessionData(raw["a"], int(raw["e"]), str(raw["s"]), str(raw["c"]),
                               float(raw["i"]), float(raw["l"]),
                               (str(flash[0]), str(flash[1])) if flash else None)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None
        now = time.time()
        if now - data.issued > web.session_max_hours * 3600:
            return None
        if data.agent_id is not None and now - data.seen > web.session_idle_minutes * 60:
            return None
        return data

    def touch(self, data: SessionData) -> SessionData:
        return replace(data, seen=time.time())

    def cookie_args(self) -> dict[str, Any]:
        return {"key": self.cookie_name, "httponly": True, "samesite": "strict",
                "secure": self.settings.web.secure_cookies, "path": "/",
                "max_age": self.settings.web.session_max_hours * 3600}


def csrf_ok(data: SessionData | None, token: str | None) -> bool:
    return bool(data and token and hmac.compare_digest(data.csrf, token))


def _row_id(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogateescape")).hexdigest()


# -- server-side sessions ------------------------------------------------------------------
def open_session(s: Session, agent: Agent, data: SessionData, client: str,
                 user_agent: str) -> None:
    """Record the session a login opened."""
    s.add(WebSession(id=_row_id(data.sid), agent_id=agent.id, client=client[:100],
                     user_agent=user_agent[:200]))


def agent_of(s: Session, data: SessionData | None) -> Agent | None:
    """The session's agent, if the session is still valid for that agent."""
    if data is None or data.agent_id is None:
        return None
    agent = s.get(Agent, data.agent_id)
    if agent is None or agent.disabled or agent.session_epoch != data.epoch:
        return None
    row = s.get(WebSession, _row_id(data.sid))
    if row is None or row.ended_at is not None or row.agent_id != agent.id:
        return None
    now = datetime.now(UTC)
    if (now - row.last_seen_at).total_seconds() > _SEEN_EVERY:
        row.last_seen_at = now
        s.commit()
    return agent


def end_session(s: Session, data: SessionData, actor: str) -> None:
    """End the session ``data`` names (logout)."""
    row = s.get(WebSession, _row_id(data.sid))
    if row is not None and row.ended_at is None:
        row.ended_at, row.ended_by = datetime.now(UTC), actor[:100]


def active_sessions(s: Session, settings: Settings) -> list[tuple[WebSession, Agent]]:
    """Sessions still standing (not ended, within both timeouts), newest first."""
    now = datetime.now(UTC)
    idle = now - timedelta(minutes=settings.web.session_idle_minutes)
    born = now - timedelta(hours=settings.web.session_max_hours)
    # last_seen_at is written once a minute at most: a session seen since may look older.
    return [(row, agent) for row, agent in stored.standing(
        s, born, idle - timedelta(seconds=_SEEN_EVERY)) if not agent.disabled]


def revoke_session(s: Session, row_id: str, admin: Agent) -> WebSession | None:
    """End one session (an admin's action, audited); None when there is no such session."""
    row = s.get(WebSession, row_id[:64])
    if row is None or row.ended_at is not None:
        return None
    row.ended_at, row.ended_by = datetime.now(UTC), admin.login
    agent = s.get(Agent, row.agent_id)
    s.add(AuditEvent(actor=admin.login, event="session.revoked",
                     detail={"login": agent.login if agent else "?", "client": row.client}))
    return row


# -- login and its throttling --------------------------------------------------------------
@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    from triage.review.agents import hash_password

    return hash_password(secrets.token_urlsafe(24))


def verify_login(s: Session, login: str, password: str) -> Agent | None:
    """The enabled agent whose login and password these are, else None.

    Exactly one argon2 check whatever the login: an unknown login or a disabled agent is
    checked against a dummy hash, so all answers take the same time.
    """
    agent = accounts.by_login(s, login)
    usable = agent is not None and not agent.disabled
    ok = check_password(agent.password_hash if usable and agent else _dummy_hash(), password)
    return agent if ok and usable else None


def login_wait(s: Session, settings: Settings, login: str, client: str,
               now: datetime | None = None) -> float:
    """Seconds before a password may be checked for ``login`` from ``client``; 0 for now.

    Argon2 is costly, so checks are counted per minute, but never so that one client can
    refuse another: one client gets ``login_global_per_minute`` checks; all clients together
    twice as many, beyond which only a (login, client) pair that succeeded within the login
    window is still checked (an agent at their usual desk). Failures for one login from one
    client then wait longer and longer (``login_delay_seconds`` doubled).
    """
    web = settings.web
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=web.login_window_minutes)
    last_ok = stored.last_success(s, login, client)
    known_good = last_ok is not None and last_ok > since
    cap = web.login_global_per_minute
    wait = _minute_spent(s, now, cap, client)
    if not wait and not known_good:
        wait = _minute_spent(s, now, 2 * cap)
    if wait:
        return wait
    if known_good and last_ok is not None:
        since = last_ok
    failures = stored.failures_since(s, login, client, since, 64)
    over = len(failures) - web.login_attempts
    if over < 0:
        return 0.0
    delay = min(web.login_max_delay_seconds, web.login_delay_seconds * 2.0 ** min(over, 30))
    return max(0.0, delay - (now - failures[0]).total_seconds())


def _minute_spent(s: Session, now: datetime, limit: int, client: str | None = None) -> float:
    """Seconds until fewer than ``limit`` attempts (from ``client``, or from anywhere) fall
    within the last minute; 0 when already so."""
    recent = stored.attempts_since(s, now - timedelta(minutes=1), limit, client)
    if len(recent) < limit:
        return 0.0
    return max(1.0, 60.0 - (now - recent[-1]).total_seconds())


def record_attempt(s: Session, login: str, address: str, success: bool) -> None:
    s.add(LoginAttempt(login=login[:100], address=address[:100], success=success))
