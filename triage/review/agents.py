"""Agents: logins with argon2 password hashes, their departments and role."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from triage.config import Settings
from triage.errors import TriageError
from triage.store import Agent, AuditEvent, Ticket
from triage.store import agents as accounts
from triage.store.queries import head_of, mailboxes_of

#: agent: reviews drafts; lead: also sees the dashboard; admin: everything, every department.
ROLES = ("agent", "lead", "admin")
_hasher = PasswordHasher()


class AgentError(TriageError):
    """An agent command was given something invalid (unknown login, department, role)."""


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise AgentError("a password needs at least 10 characters")
    return _hasher.hash(password)


def verify_password(agent: Agent, password: str) -> bool:
    return check_password(agent.password_hash, password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_agent(s: Session, settings: Settings, login: str, password: str,
              departments: list[str], role: str = "agent", name: str = "",
              actor: str = "cli") -> Agent:
    login = login.strip().lower()
    if not login or not login.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise AgentError(f"invalid login {login!r} (letters, digits, . - _)")
    if role not in ROLES:
        raise AgentError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    known = {d.code for d in settings.departments}
    unknown = [d for d in departments if d not in known]
    if unknown or not departments:
        raise AgentError(f"unknown departments {unknown or '(none given)'}; "
                         f"configured: {', '.join(sorted(known))}")
    if accounts.by_login(s, login) is not None:
        raise AgentError(f"agent {login!r} exists already")
    agent = Agent(login=login, name=name, password_hash=hash_password(password),
                  departments=sorted(set(departments)), role=role)
    s.add(agent)
    s.flush()
    s.add(AuditEvent(actor=actor, event="agent.added",
                     detail={"login": login, "departments": agent.departments, "role": role}))
    return agent


def get_agent(s: Session, login: str) -> Agent:
    agent = accounts.by_login(s, login.strip().lower())
    if agent is None:
        raise AgentError(f"no agent {login!r}")
    return agent


def disable_agent(s: Session, login: str, actor: str = "cli") -> Agent:
    agent = get_agent(s, login)
    agent.disabled = True
    agent.session_epoch += 1  # ends every open session at its next request
    s.add(AuditEvent(actor=actor, event="agent.disabled", detail={"login": agent.login}))
    return agent


def set_password(s: Session, login: str, password: str, actor: str = "cli") -> Agent:
    agent = get_agent(s, login)
    agent.password_hash = hash_password(password)
    agent.session_epoch += 1
    s.add(AuditEvent(actor=actor, event="agent.password-changed", detail={"login": agent.login}))
    return agent


def ticket_departments(s: Session, settings: Settings, ticket: Ticket) -> set[str]:
    """The departments whose agents may see ``ticket``.

    Its decided department; when none could be decided, the departments of the mailboxes that
    received it, so that someone can route it.
    """
    if ticket.department:
        return {ticket.department}
    out = set()
    for mailbox in mailboxes_of(s, ticket.id):
        dept = settings.department_of_mailbox(mailbox)
        if dept:
            out.add(dept.code)
    return out


def may_see(s: Session, settings: Settings, agent: Agent, ticket: Ticket) -> bool:
    """May ``agent`` read ``ticket`` and act on it: the one visibility check of every page,
    action and attachment.

    Judged on the thread's head, whatever member's id was given: every action on a follow-up
    acts on its head, and the thread page shows them all, so a follow-up decided for the
    agent's department opens no door to another department's thread.
    """
    if agent.is_admin:
        return True
    head = head_of(s, ticket)
    return bool(ticket_departments(s, settings, head) & set(agent.departments))
