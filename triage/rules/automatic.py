"""Is this an automatic message (auto-reply, bounce, list or bulk mail, our own mail)?

Automatic messages are never answered and their text is never acted on: answering them makes
mail loops, and an out-of-office text may carry instructions nobody wrote to us. The signals,
after RFC 3834 §2 and §5, RFC 5230 §4.5 (Sieve vacation), RFC 2369 / 2919 (list headers) and
the practice of RT and Pigeonhole:

- headers: ``Auto-Submitted`` other than ``no``; ``X-Autoreply`` / ``X-Autorespond``;
  ``Precedence: bulk|junk|list|auto_reply``; any ``List-*`` header; ``X-Auto-Response-Suppress``
  naming All, OOF or AutoReply (Exchange's own automatic mail), unless ``Auto-Submitted: no``
  says a person wrote the message (Outlook adds the header to a person's mail too); ``X-Loop``
  (set by autoresponders and list managers); our own loop header;
- senders: a null return path (``Return-Path: <>``, ``From: <>``); MAILER-DAEMON, postmaster,
  LISTSERV, majordomo, ``owner-*``, ``*-request`` in From, Sender or Return-Path; a no-reply
  From; « Mail Delivery Subsystem » and the like as From's display name; the helpdesk mailboxes
  themselves (From, Sender or Return-Path), plus-addressed too (``box+tag@``); a From that
  matches ``patterns.ignore_senders`` of the configuration;
- content: a report (``multipart/report``, or a delivery-status, disposition-notification or
  feedback-report part of the message itself, not of a message attached to it); an automatic
  reply's subject (« Réponse automatique », « Out of Office », « Away: », « Abwesend: »,
  « Undeliverable »), or one that matches ``patterns.automatic_subjects``; an automatic reply's
  own wording, in French, English, German, Spanish, Italian or Dutch (« I'm away », « ich bin
  nicht im Büro »), at the top of the sender's new text (never in quoted or forwarded text, so
  a person forwarding a portal notice that says « message automatique » is still answered).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from triage.config import compile_pattern, without_subaddress
from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding
from triage.text import Sieved, fold

NAME = "automatic"
LABEL = "Message automatique"
DESCRIPTION = ("message automatique (réponse d'absence, rapport de non-remise, liste, envoi du "
               "service)")

LOOP_HEADER = "X-Triage-Loop"

_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
_SUPPRESS = re.compile(r"\b(all|oof|autoreply)\b")
# RFC 5230 §4.5: never answer these, in the envelope sender or the header sender.
_SYSTEM_LOCAL = re.compile(r"^(mailer-daemon|postmaster|listserv|majordomo|owner-.+|.+-request)$")
# In From only: senders that say they read no answers.
_NO_REPLY_LOCAL = re.compile(
    r"^(no-?reply|ne-?pas-?repondre|donotreply|do-not-reply|nepasrepondre|bounces?|"
    r".+-bounces?|bounces?[-+.].+)$")
_SYSTEM_DISPLAY = re.compile(
    r"^(mail delivery (subsystem|system|service)|mailer[- ]daemon|postmaster|"
    r"administrateur (systeme|de messagerie)|systemadministrator|mail administrator)$")
_OOF_SUBJECT = re.compile(
    r"^\s*(r[ée]ponse automatique|automatic reply|auto(matic)?[- ]?reply|autoreply|"
    r"out of (the )?office|absence( du bureau)?\s*:|message d'absence|absent(e)?\s*:|"
    r"accus[ée] de r[ée]ception|notification d'absence|auto\s*:|r[ée]ponse automatique d'absence|"
    r"undeliver(ed|able)|delivery status notification|mail delivery (failed|subsystem)|"
    r"non remis|non-remise|returned mail|delivery failure|failure notice|"
    r"absente? (jusqu|du \d|a partir)|en cong[ée]s? (jusqu|du \d)|"
    # Outlook's and others' out-of-office subjects in the languages seen at the helpdesk
    r"away\s*:|away from (the )?office|on (annual )?leave\s*:|on vacation\s*:|on holiday\s*:|"
    r"abwesend|abwesenheits?(notiz|meldung)?\s*:|automatische antwort|"
    r"respuesta autom[aá]tica|fuera de la oficina|ausente\s*:|risposta automatica|"
    r"fuori ufficio|assente\s*:|automatisch antwoord|afwezig\s*:|resposta autom[aá]tica)",
    re.IGNORECASE)
# « [Absence] RE: … », « [EXT] Réponse automatique : … »: a leading tag is not the subject.
_SUBJECT_TAG = re.compile(r"^\s*(\[[^\]]{1,30}\]\s*)+")
# RE2 scans the text first (triage.text.Sieved): a person's text holds none of these.
_AUTO_TEXT = Sieved(re.compile(
    r"(ceci est une reponse automatique|ceci est un (message|courriel|mail) automatique|"
    r"this is an automat(ic|ed) (reply|response|message)|reponse automatique d'absence|"
    r"i am (currently )?out of (the )?office|^message automatique\s*:|"
    r"votre (message|courriel|mail) (ne sera pas|n'est pas|ne sera pas) transfere)"))
# Absence notices in English, German, Spanish, Italian, Dutch: a person's request in these
# words would not be about a Chorus Pro password. Searched only where a hint is present.
_AWAY_HINTS = ("i'm", "i am", "i will", "access to", "ich bin", "estoy", "sono", "ik ben")
_AWAY_TEXT = re.compile(
    r"\bi('m| am) (currently )?(away|out of (the )?office|on (annual |parental |sick )?leave|"
    r"on (vacation|holiday))\b|\bi will be (away|out of (the )?office)\b|"
    r"\bi('m| am) (currently )?not in the office\b|\bwith (limited|no) access to (my )?e-?mail|"
    r"\bich bin (derzeit |zurzeit |bis )?(nicht im buro|abwesend|im urlaub)|"
    r"\bestoy (fuera de la oficina|de vacaciones|ausente)|\bsono (fuori ufficio|assente|in ferie)|"
    r"\bik ben (afwezig|niet op kantoor|met vakantie)")
# Absence wording alone could be a person's own note; it counts only in a reply's new text.
# (RE2 first too.)
_ABSENCE_TEXT = Sieved(re.compile(
    r"(je suis (actuellement )?absente? (du|jusqu|et je)|je serai absente? (du|jusqu)|"
    r"(je suis|actuellement) en conges? (du|jusqu)|absente? du bureau (du|jusqu)|"
    r"en conge (maternite|maladie|parental)|ne (pourrai|pourrons) pas traiter)"))
_REPLY_SUBJECT = re.compile(r"^\s*(\[[^\]]{1,30}\]\s*)*(re|aw|sv|r[ée]p)\s*:|\[absen",
                            re.IGNORECASE)
#: An automatic reply's own wording is looked for in this much of the new text, and only when
#: the new text is short (an auto-reply is; a person's long message quoting one is not).
_AUTO_TEXT_HEAD = 600
_AUTO_TEXT_MAX = 1500


def check(message: MessageView, ctx: Context) -> Finding[bool]:
    """True, with every signal found, when the message was sent by a machine or by us."""
    reasons = list(dict.fromkeys(_signals(message, ctx)))
    return finding(NAME, bool(reasons), *reasons)


def _address_of(value: str) -> str:
    match = re.search(r"<([^<>]*)>", value)
    return (match.group(1) if match else value).strip().lower()


def _signals(message: MessageView, ctx: Context) -> Iterator[str]:
    yield from _header_signals(message)
    yield from _sender_signals(message, ctx)
    yield from _content_signals(message, ctx)


def _header_signals(message: MessageView) -> Iterator[str]:
    auto = message.header("Auto-Submitted")
    person = auto is not None and fold(auto).split(";")[0].strip() == "no"
    if auto is not None and fold(auto).split(";")[0].strip() not in ("no", ""):
        yield f"en-tête Auto-Submitted: {auto.strip()[:60]} (RFC 3834)"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autorespons"):
        value = message.header(name)
        if value is not None and fold(value).strip() not in ("no", "false", "0"):
            yield f"en-tête {name}: {value.strip()[:60]}"
    precedence = message.header("Precedence")
    if precedence and (fold(precedence).split() or [""])[0].strip(" ;") in _PRECEDENCE:
        yield f"en-tête Precedence: {precedence.strip()[:40]}"
    for name, _value in message.headers:
        if name.lower().startswith("list-"):
            yield f"message de liste de diffusion (en-tête {name[:40]})"
            break
    suppress = message.header("X-Auto-Response-Suppress")
    # « Auto-Submitted: no » says a person wrote it; Outlook adds X-Auto-Response-Suppress to
    # a person's mail too (to keep auto-replies away), so that header does not overrule it.
    if suppress and _SUPPRESS.search(fold(suppress)) and not person:
        yield f"en-tête X-Auto-Response-Suppress: {suppress.strip()[:60]}"
    for name in ("X-Loop", LOOP_HEADER):
        for value in message.headers_named(name)[:1]:
            yield f"en-tête {name} : message déjà passé par un répondeur ({value.strip()[:60]})"


def _sender_signals(message: MessageView, ctx: Context) -> Iterator[str]:
    ours = ctx.settings.helpdesk_addresses  # built once per message, not once per address

    def own(address: str) -> bool:
        return address in ours or ("+" in address and without_subaddress(address) in ours)

    return_path = message.header("Return-Path")
    if return_path is not None:
        envelope = _address_of(return_path)
        if not envelope:
            yield "chemin de retour vide (Return-Path: <>) : rapport ou réponse automatique"
        elif own(envelope):
            yield f"envoyé par une boîte du service (Return-Path: {envelope[:80]})"
        elif _SYSTEM_LOCAL.match(envelope.rpartition("@")[0] or envelope):
            yield f"expéditeur système dans Return-Path ({envelope[:80]})"
    if re.fullmatch(r"\s*<\s*>\s*", message.from_header):
        yield "expéditeur vide (From: <>) : rapport ou réponse automatique"
    for address in message.from_addresses:
        local = address.local_part
        if own(address.address):
            yield f"envoyé par une boîte du service ({address.address})"
        elif _SYSTEM_LOCAL.match(local):
            yield f"expéditeur système ({address.address}) : MAILER-DAEMON, postmaster, liste"
        elif _NO_REPLY_LOCAL.match(local):
            yield f"expéditeur automatique qui ne lit pas les réponses ({address.address})"
        if _SYSTEM_DISPLAY.match(fold(address.display_name).strip()):
            yield f"expéditeur système (nom affiché « {address.display_name[:60]} »)"
        for pattern in ctx.settings.patterns.ignore_senders:
            if compile_pattern(pattern).search(fold(address.address)):
                yield (f"expéditeur à ignorer selon la configuration ({address.address} : "
                       f"motif « {pattern[:60]} »)")
                break
    for address in message.sender:
        if own(address.address):
            yield f"envoyé au nom d'une boîte du service (Sender: {address.address})"
        elif _SYSTEM_LOCAL.match(address.local_part):
            yield f"expéditeur système dans Sender ({address.address})"


def _content_signals(message: MessageView, ctx: Context) -> Iterator[str]:
    if message.content_type == "multipart/report":
        yield "rapport de remise ou de lecture (multipart/report)"
    elif message.report:
        yield f"rapport de remise ou de lecture (partie {message.report})"
    if _OOF_SUBJECT.match(_SUBJECT_TAG.sub("", message.subject)) or re.match(
            r"^\s*\[(absence|absent|ooo|out of office|auto)", message.subject, re.IGNORECASE):
        yield f"objet de message automatique : « {message.subject[:80]} »"
    subject = fold(message.subject)
    for pattern in ctx.settings.patterns.automatic_subjects:
        if compile_pattern(pattern).search(subject):
            yield (f"objet de message automatique selon la configuration : "
                   f"« {message.subject[:80]} » (motif « {pattern[:60]} »)")
            break
    if len(message.new_text) < _AUTO_TEXT_MAX:
        head = fold(message.new_text[:_AUTO_TEXT_HEAD])
        match = _AUTO_TEXT.search(head)
        if match is None and any(hint in head for hint in _AWAY_HINTS):
            match = _AWAY_TEXT.search(head)
        if match is None and _REPLY_SUBJECT.match(message.subject):
            match = _ABSENCE_TEXT.search(head)
        if match:
            yield f"texte de réponse automatique : « {match.group(0)} »"
