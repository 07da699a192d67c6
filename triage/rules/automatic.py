"""Is this an automatic message (auto-reply, bounce, list or bulk mail, our own mail)?

Signals, after RFC 3834 and the practice of RT and Sieve: ``Auto-Submitted`` other than ``no``;
``X-Autoreply`` / ``X-Autorespond``; ``Precedence: bulk|junk|list|auto_reply``; ``List-Id`` /
``List-Unsubscribe``; ``X-Auto-Response-Suppress`` (set by Exchange on its automatic mail);
``X-Loop`` naming one of our mailboxes; a null return path or a MAILER-DAEMON / postmaster /
no-reply sender; a ``multipart/report`` delivery status; mail sent by the helpdesk mailboxes
themselves; and an out-of-office subject (« Réponse automatique », « Absence », « Out of
Office »). Automatic messages are never answered: their text is never acted on.
"""

from __future__ import annotations

import re

from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding
from triage.text import fold

NAME = "automatic"
DESCRIPTION = "message automatique (réponse d'absence, rapport de non-remise, liste, envoi du service)"

LOOP_HEADER = "X-Triage-Loop"

_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_AUTOMATED_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|listserv|majordomo|no-?reply|ne-?pas-?repondre|donotreply|"
    r"do-not-reply|nepasrepondre|bounces?|owner-.*|.*-request|.*-bounces?)$")
_OOF_SUBJECT = re.compile(
    r"^\s*(r[ée]ponse automatique|automatic reply|auto(matic)?[- ]?reply|autoreply|"
    r"out of (the )?office|absence( du bureau)?\s*:|message d'absence|absent(e)?\s*:|"
    r"accus[ée] de r[ée]ception|notification d'absence|auto\s*:|r[ée]ponse automatique d'absence|"
    r"undeliver(ed|able)|delivery status notification|mail delivery (failed|subsystem)|"
    r"non remis|non-remise|returned mail)", re.IGNORECASE)
_AUTO_TEXT = re.compile(
    r"(ceci est une reponse automatique|ceci est un (message|courriel|mail) automatique|"
    r"this is an automat(ic|ed) (reply|response|message)|reponse automatique d'absence|"
    r"i am (currently )?out of (the )?office)")
# Absence wording alone could be a person's own note; it counts only in a reply's new text.
_ABSENCE_TEXT = re.compile(
    r"(je suis (actuellement )?absente? (du|jusqu|et je)|je serai absente? (du|jusqu)|"
    r"(je suis|actuellement) en conges? (du|jusqu)|absente? du bureau (du|jusqu))")
_REPLY_SUBJECT = re.compile(r"^\s*(re|aw|sv|r[ée]p)\s*:", re.IGNORECASE)


def check(message: MessageView, ctx: Context) -> Finding[bool]:
    """True, with the signal found, when the message was sent by a machine or by us."""
    for reason in _signals(message, ctx):
        return finding(NAME, True, reason)
    return finding(NAME, False)


def _signals(message: MessageView, ctx: Context):  # type: ignore[no-untyped-def]
    auto = message.header("Auto-Submitted")
    if auto is not None and fold(auto).split(";")[0].strip() not in ("no", ""):
        yield f"en-tête Auto-Submitted: {auto.strip()[:60]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autorespons"):
        value = message.header(name)
        if value is not None and fold(value).strip() not in ("no", "false", "0"):
            yield f"en-tête {name}: {value.strip()[:60]}"
    precedence = message.header("Precedence")
    if precedence and fold(precedence).strip() in _PRECEDENCE:
        yield f"en-tête Precedence: {precedence.strip()}"
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if message.header(name) is not None:
            yield f"message de liste de diffusion (en-tête {name})"
    suppress = message.header("X-Auto-Response-Suppress")
    if suppress and any(w in fold(suppress) for w in ("all", "oof", "autoreply")):
        yield f"en-tête X-Auto-Response-Suppress: {suppress.strip()[:60]}"
    own = ctx.settings.helpdesk_addresses
    for name in ("X-Loop", LOOP_HEADER):
        for value in message.headers_named(name):
            if name == LOOP_HEADER or any(a in value.lower() for a in own):
                yield f"en-tête {name} : message déjà passé par le service ({value.strip()[:60]})"
    return_path = message.header("Return-Path")
    if return_path is not None and re.fullmatch(r"\s*<\s*>\s*", return_path):
        yield "chemin de retour vide (Return-Path: <>), signe d'un message automatique"
    sender = message.from_addresses[0] if message.from_addresses else None
    if sender is not None:
        if sender.address in own:
            yield f"envoyé par une boîte du service ({sender.address})"
        elif _AUTOMATED_LOCAL.match(sender.local_part):
            yield f"expéditeur automatique ({sender.address})"
    for s in message.sender:
        if s.address in own:
            yield f"envoyé au nom d'une boîte du service (Sender: {s.address})"
    if message.content_type == "multipart/report" or "message/delivery-status" in message.part_types:
        yield "rapport de remise (multipart/report, delivery-status)"
    if _OOF_SUBJECT.match(message.subject):
        yield f"objet de message automatique : « {message.subject[:80]} »"
    head = fold(message.new_text[:600])
    match = _AUTO_TEXT.search(head)
    if match is None and _REPLY_SUBJECT.match(message.subject):
        match = _ABSENCE_TEXT.search(head)
    if match and len(message.new_text) < 1500:
        yield f"texte de réponse automatique : « {match.group(0)} »"
