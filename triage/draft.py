"""Render the reply an agent will review, from the templates in ``templates/``.

Templates run in Jinja2's sandbox with undefined variables as errors and without autoescape
(the replies are plain text). Message content reaches a template only as variable values, never
as template source, so a sender cannot inject template code. Header values built here are
stripped of line breaks so that no header can be injected into the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from triage.config import Department, Settings
from triage.decision import Decision
from triage.errors import TemplateError
from triage.parse import MessageView
from triage.text import fold


@dataclass(frozen=True)
class Draft:
    template: str
    to: str
    subject: str
    body: str
    department: str
    in_reply_to: str | None


_BLANK_LINES = re.compile(r"\n{3,}")
_REPLY_PREFIXES = re.compile(r"^\s*((re|aw|sv|tr|fwd?)\s*:\s*)+", re.I)


@lru_cache(maxsize=8)
def _environment(templates: Path) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def one_line(text: str, limit: int = 200) -> str:
    """A header-safe value: no CR, LF or other control characters, bounded length."""
    return re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]+", " ", text).strip()[:limit]


def greeting_name(message: MessageView, settings: Settings) -> str | None:
    """The sender's name for « Bonjour … », when the display name is a person's."""
    sender = message.sender_address
    if sender is None or not sender.display_name:
        return None
    name = one_line(sender.display_name, 80).strip("\"' ")
    words = re.split(r"[^a-z]+", fold(name))
    if not name or "@" in name or any(w in settings.organisation_words for w in words if w):
        return None
    if name.isupper() or name.islower():
        name = name.title()
    return name


def render(template: str, settings: Settings, department: Department, *,
           sender_name: str | None, identifier: str | None) -> str:
    """Render ``template`` (a name such as ``reset_password``) for ``department``."""
    env = _environment(settings.templates_path)
    try:
        tpl = env.get_template(settings.template_file(template))
        body = tpl.render(sender_name=sender_name, identifier=identifier, department=department)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {template!r}: {exc}") from exc
    return _BLANK_LINES.sub("\n\n", body).strip() + "\n"


def signing_department(message: MessageView, decision: Decision, settings: Settings,
                       mailbox: str | None) -> Department:
    """The department whose signature ends the reply.

    Normally the decided department; a ``request_nominative_address`` reply can be drafted with
    no department known, and then signs as the mailbox that received the message.
    """
    candidates = [settings.department(decision.department)] if decision.department else []
    candidates.append(settings.department_of_mailbox(mailbox) if mailbox else None)
    candidates += [settings.department_of_mailbox(a.address) for a in message.recipients]
    candidates += [settings.department_of_mailbox(a) for a in message.delivered_to]
    return next((d for d in candidates if d is not None), settings.departments[0])


def make_draft(message: MessageView, decision: Decision, settings: Settings,
               mailbox: str | None = None) -> Draft | None:
    """The draft for a ``draft`` decision, else ``None``."""
    if decision.template is None or message.sender_address is None:
        return None
    department = signing_department(message, decision, settings, mailbox)
    body = render(decision.template, settings, department,
                  sender_name=greeting_name(message, settings), identifier=decision.identifier)
    subject = one_line(message.subject) or "Votre demande Chorus Pro"
    subject = "Re: " + _REPLY_PREFIXES.sub("", subject)
    return Draft(decision.template, message.sender_address.address, subject, body,
                 department.code, message.message_id)
