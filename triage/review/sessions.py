"""Sessions in signed cookies, CSRF tokens, and login rate limiting.

The web application keeps no state in the process: a session is a signed cookie (itsdangerous)
holding the agent's id, the agent's session epoch, a random session id, the CSRF token and two
times (issued, last seen). Each request checks the signature, the absolute and inactivity
timeouts, and that the agent still exists, is enabled and has the same epoch (disabling an
agent or changing the password bumps the epoch: every open session ends). A new session (new id,
new CSRF token) is issued at login. Failed logins are counted in the store, per login and per
client address, so the limit holds across several web processes.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.store import Agent, LoginAttempt


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

    def dump(self) -> dict[str, Any]:
        return {"a": self.agent_id, "e": self.epoch, "s": self.sid, "c": self.csrf,
                "i": self.issued, "l": self.seen}


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
            data = SessionData(raw["a"], int(raw["e"]), str(raw["s"]), str(raw["c"]),
                               float(raw["i"]), float(raw["l"]))
        except (KeyError, TypeError, ValueError):
            return None
        now = time.time()
        if now - data.issued > web.session_max_hours * 3600:
            return None
        if data.agent_id is not None and now - data.seen > web.session_idle_minutes * 60:
            return None
        return data

    def touch(self, data: SessionData) -> SessionData:
        return SessionData(data.agent_id, data.epoch, data.sid, data.csrf, data.issued,
                           time.time())

    def cookie_args(self) -> dict[str, Any]:
        return {"key": self.cookie_name, "httponly": True, "samesite": "strict",
                "secure": self.settings.web.secure_cookies, "path": "/",
                "max_age": self.settings.web.session_max_hours * 3600}


def csrf_ok(data: SessionData | None, token: str | None) -> bool:
    return bool(data and token and hmac.compare_digest(data.csrf, token))


def agent_of(s: Session, data: SessionData | None) -> Agent | None:
    """The session's agent, if the session is still valid for that agent."""
    if data is None or data.agent_id is None:
        return None
    agent = s.get(Agent, data.agent_id)
    if agent is None or agent.disabled or agent.session_epoch != data.epoch:
        return None
    return agent


def too_many_attempts(s: Session, settings: Settings, login: str, address: str) -> bool:
    since = datetime.now(UTC) - timedelta(minutes=settings.web.login_window_minutes)
    failures = s.scalar(select(func.count(LoginAttempt.id)).where(
        LoginAttempt.success.is_(False), LoginAttempt.at >= since,
        (LoginAttempt.login == login) | (LoginAttempt.address == address)))
    return int(failures or 0) >= settings.web.login_attempts


def record_attempt(s: Session, login: str, address: str, success: bool) -> None:
    s.add(LoginAttempt(login=login[:100], address=address[:100], success=success))
