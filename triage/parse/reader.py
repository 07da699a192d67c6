"""Turn raw bytes into a :class:`MessageView`, within limits, without ever raising.

The steps: a linear prescan checks the limits on the bytes (:mod:`triage.parse.prescan`); the
message is parsed whole, or for its headers only when it is over a limit; headers are decoded
(:mod:`triage.parse.decode`), address headers parsed strictly
(:mod:`triage.parse.addresses`); the parts are walked iteratively, the text parts decoded
(no more of each than the text limit needs) and the others listed as attachments; and the text
is split into the new part, the quoted part and the signature (:mod:`triage.parse.quoting`).
"""

from __future__ import annotations

import email.message
import functools
import re
import sys
import unicodedata
from collections.abc import Iterator

from email_validator import EmailNotValidError, validate_email

from triage.config import Limits
from triage.parse.addresses import parse_addresses
from triage.parse.decode import decode_bytes, decode_header, recover_8bit
from triage.parse.html import html_to_text
from triage.parse.message import Address, Attachment, MessageView
from triage.parse.mime import SafeMessage, parse_bytes, payload
from triage.parse.prescan import Prescan, scan
from triage.parse.quoting import split_quoted

_FORWARD_SUBJECT = re.compile(r"^\s*((re|aw|sv)\s*:\s*)*(tr|fwd?|wg|transf[ée]r[ée]?)\s*:", re.I)
#: Of an HTML part, at most this many times the text limit is read (markup is verbose).
_HTML_FACTOR = 20
_LEADING_BLANK = re.compile(rb"(?:[ \t]*(?:\r\n|\r|\n))+")
_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status",
                 "message/disposition-notification", "message/feedback-report")


def _remember_domains() -> None:
    """Make ``validate_email`` remember the domains it has checked, process-wide.

    Most of its cost (about 45 of 60 µs an address) is the check of the domain (IDNA, the
    special-use names), a pure function of its arguments; senders' addresses are mostly
    distinct, their domains mostly not (2,243 domains for 8,442 addresses in 10,000 archive
    messages). Its result, a dict, is only read by ``validate_email``; a domain that fails
    raises each time, as before (``lru_cache`` keeps no exception). Nothing here changes
    ``email_validator.SPECIAL_USE_DOMAIN_NAMES``, the one setting the check reads.
    """
    module = sys.modules.get("email_validator.validate_email")
    check = getattr(module, "validate_email_domain_name", None)
    if module is not None and callable(check) and not hasattr(check, "cache_info"):
        setattr(module, "validate_email_domain_name",  # noqa: B010
                functools.lru_cache(maxsize=4096)(check))


_remember_domains()


def parse_message(raw: bytes, limits: Limits | None = None, *,
                  partial: bool = False) -> MessageView:
    """Parse ``raw`` into a view. Limits exceeded are recorded in ``violations``.

    ``partial`` is the intake's word, out of band, that ``raw`` is the stand-in
    :mod:`triage.mailbox.fetch` rebuilt for a large message: only then are its stubs read as
    parts not fetched. A sender can write any header, so in a message as received the marker
    means nothing (the part is listed with what it holds).
    """
    limits = limits or Limits()
    defects: list[str] = []
    content = _strip_padding(raw, defects)
    pre = scan(content, limits)
    violations = list(pre.violations)
    headers_only = pre.headers_only
    msg = _parse(content, pre, violations, defects)
    headers_only = headers_only or bool(violations)
    headers = _headers(msg, defects)

    def get_all(name: str) -> list[str]:
        return [v for k, v in headers if k.lower() == name]

    raw_values = _raw_values(msg)
    from_values = raw_values.get("from", [])
    from_addresses, from_problem = _from_addresses(from_values)
    text, report = "", None
    attachments: list[Attachment] = []
    part_types: list[str] = []
    if not headers_only:
        text, attachments, part_types, report = _body(msg, limits, defects, violations,
                                                       partial)
    text = text[: limits.max_text_chars]
    split = split_quoted(text)
    subject = (get_all("subject") or [""])[0]
    kind = split.kind
    if kind and _FORWARD_SUBJECT.match(subject):
        kind = "forward"
    return MessageView(
        raw_size=len(raw),
        headers=tuple(headers),
        message_id=_message_id(next(iter(get_all("message-id")), None)),
        subject=subject,
        from_header=decode_header(from_values[0]) if from_values else "",
        from_addresses=from_addresses,
        from_problem=from_problem,
        reply_to=_addresses(raw_values, "reply-to"),
        sender=_addresses(raw_values, "sender"),
        to=_addresses(raw_values, "to"),
        cc=_addresses(raw_values, "cc"),
        delivered_to=tuple(
            a.address for name in ("delivered-to", "x-original-to")
            for a in _addresses(raw_values, name)),
        content_type=_ctype(headers) if headers_only else msg.get_content_type(),
        text=text,
        new_text=split.new_text,
        quoted_text=split.quoted_text,
        signature=split.signature,
        quote_kind=kind,
        attachments=tuple(attachments),
        part_types=tuple(part_types),
        report=report,
        defects=tuple(defects),
        violations=tuple(violations),
    )


def _strip_padding(raw: bytes, defects: list[str]) -> bytes:
    """Without a UTF-8 byte order mark or blank lines before the first header.

    The parser would read a leading blank line as the end of an empty header section and lose
    every header; files saved by some tools start so.
    """
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    match = _LEADING_BLANK.match(raw, start)
    if match:
        start = match.end()
    if start:
        defects.append(f"{start} bytes of padding before the first header ignored")
    return raw[start:] if start else raw


def _parse(raw: bytes, pre: Prescan, violations: list[str],
           defects: list[str]) -> email.message.Message:
    """Parse the whole message, or its kept headers only; never raises."""
    if not pre.headers_only:
        try:
            return parse_bytes(raw, delimiters=pre.delimiters, line_ends=pre.line_ends)
        except RecursionError:
            violations.append("structure MIME trop profondément imbriquée pour être lue")
        except Exception as exc:  # the parser is tolerant; this is a last resort
            defects.append(f"message unreadable by the MIME parser: {type(exc).__name__}")
    try:
        return parse_bytes(raw[:pre.parse_end] + b"\n\n", headers_only=True)
    except Exception as exc:
        defects.append(f"headers unreadable by the MIME parser: {type(exc).__name__}")
        return email.message.Message()


def _raw_values(msg: email.message.Message) -> dict[str, list[str]]:
    """The raw (undecoded) values of each header, by lower-cased name, top first."""
    out: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        out.setdefault(str(name).lower(), []).append(str(value))
    return out


def _ctype(headers: list[tuple[str, str]]) -> str:
    value = next((v for k, v in headers if k.lower() == "content-type"), "")
    ctype = value.split(";")[0].strip().lower()
    # As the parser does: a malformed type is text/plain.
    return ctype if ctype.count("/") == 1 and " " not in ctype else "text/plain"


def _headers(msg: email.message.Message, defects: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        try:
            out.append((str(name), decode_header(value)))
        except Exception as exc:  # one bad header must not lose the others
            defects.append(f"header {name!r} undecodable: {type(exc).__name__}")
            out.append((str(name), recover_8bit(str(value))))
    return out


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"<([^<>\s]+)>", value)
    mid = match.group(1) if match else value.strip().split()[0] if value.strip() else ""
    return mid[:998] or None


def _addresses(raw_values: dict[str, list[str]], name: str) -> tuple[Address, ...]:
    """The addresses of a header, read leniently: routing evidence, never a reply target."""
    return parse_addresses(raw_values.get(name, []), strict=False).addresses


def _from_addresses(values: list[str]) -> tuple[tuple[Address, ...], str | None]:
    if not values:
        return (), "aucun en-tête From"
    parsed = parse_addresses(values, strict=True)
    if len(values) > 1:
        return parsed.addresses, f"{len(values)} en-têtes From"
    shown = recover_8bit(values[0]).strip()[:80]
    if not shown:
        return (), "en-tête From vide"
    if parsed.problem:
        return parsed.addresses, f"en-tête From mal formé ({parsed.problem}) : {shown!r}"
    pairs = [(d, a) for d, a in parsed.pairs if d or a]
    if not pairs:
        return (), "en-tête From vide"
    found: list[Address] = []
    for display, addr in pairs:
        if "@" not in addr:
            return tuple(found), f"pas d'adresse électronique dans From ({shown!r})"
        if len(addr) > 320:
            return tuple(found), "adresse de l'expéditeur trop longue"
        try:
            info = validate_email(addr, check_deliverability=False, allow_smtputf8=True,
                                  allow_quoted_local=True)
        except EmailNotValidError as exc:
            return tuple(found), f"adresse de l'expéditeur invalide ({addr[:80]!r} : {exc})"
        found.append(Address(display, info.normalized.lower()))
    if len(found) > 1:
        return tuple(found), f"{len(found)} adresses dans From"
    return tuple(found), None


def _join(prefix: str, number: int) -> str:
    return f"{prefix}.{number}" if prefix else str(number)


def _walk(msg: email.message.Message, limits: Limits, violations: list[str]
          ) -> Iterator[tuple[email.message.Message, int, bool, str]]:
    """Depth-first over the parts, iteratively (no recursion limit), within the limits.

    Yields (part, depth, inside an attached message, IMAP section number). Sections follow
    RFC 3501 §6.4.5: the parts of a multipart are numbered from 1 under its own number; the
    body of a message that is not multipart (the message itself, or one attached) is its
    number followed by 1; an attached message's multipart shares the attached part's number.
    """
    # (part, depth, inner, section, whether the part is a message's top: the whole message,
    # or the message a message/rfc822 part holds)
    stack: list[tuple[email.message.Message, int, bool, str, bool]] = [(msg, 0, False, "", True)]
    count = 0
    while stack:
        part, depth, inner, section, top = stack.pop()
        count += 1
        if count > limits.max_parts:
            violations.append(f"plus de {limits.max_parts} parties MIME, au-delà de la limite")
            return
        if depth > limits.max_depth:
            violations.append(f"imbrication MIME de plus de {limits.max_depth} niveaux, "
                              "au-delà de la limite")
            return
        value = payload(part)
        is_message = part.get_content_maintype() == "message"
        is_multipart = isinstance(value, list) and not is_message
        own = _join(section, 1) if top and not is_multipart else section
        yield part, depth, inner, own
        if isinstance(value, list):
            children = [c for c in value if isinstance(c, email.message.Message)]
            for number, child in reversed(list(enumerate(children, 1))):
                if is_message:
                    stack.append((child, depth + 1, True, own, True))
                else:
                    stack.append((child, depth + 1, inner, _join(own, number), False))


def _body(msg: email.message.Message, limits: Limits, defects: list[str],
          violations: list[str], partial: bool = False
          ) -> tuple[str, list[Attachment], list[str], str | None]:
    """The text, the attachments, the part types, and the type of the message's own report.

    The message's own HTML parts are decoded where they stand (their defects are recorded in
    order) but turned into text only when needed: when no plain-text part says anything (the
    HTML is then the body), or when a later text part is weighed against the text budget,
    which the HTML's text counts against. A multipart/alternative (most replies) thus never
    pays for the HTML tokenizer.
    """
    plain: list[str] = []
    html_markup: list[str] = []  # the message's own HTML parts, decoded
    html: list[str] = []  # the text of the first len(html) of them
    inner_texts: list[str] = []
    attachments: list[Attachment] = []
    types: list[str] = []
    report: str | None = None
    budget = limits.max_text_chars

    def settle() -> None:
        nonlocal budget
        for markup in html_markup[len(html):]:
            text = html_to_text(markup)
            budget -= len(text)
            html.append(text)

    for part, _depth, inner, section in _walk(msg, limits, violations):
        ctype = part.get_content_type()
        types.append(ctype)
        if ctype in _REPORT_TYPES and not inner and report is None:
            report = ctype
        if is_attachment(part, ctype):
            attachments.append(_manifest_entry(part, ctype, len(attachments), section, partial))
            continue
        if part.is_multipart() or ctype.partition("/")[0] == "message":
            continue
        if ctype not in ("text/plain", "text/html"):
            continue
        settle()
        if budget <= 0:
            continue
        factor = _HTML_FACTOR if ctype == "text/html" else 4
        text = _decode_part(part, defects, limit=limits.max_text_chars * factor)
        if ctype == "text/html" and not inner:
            html_markup.append(text)
            continue
        if ctype == "text/html":
            text = html_to_text(text)
        budget -= len(text)
        if inner:
            inner_texts.append(text)
        else:
            plain.append(text)
    body = "\n\n".join(t for t in plain if t.strip())
    if not body.strip() and html_markup:
        settle()
        body = "\n\n".join(html)
    if inner_texts:
        # Messages attached whole (forwards as attachment, bounced originals) read as quoted.
        body += "\n\n" + "\n".join("> " + ln for t in inner_texts for ln in t.splitlines())
    return body.replace("\r\n", "\n").replace("\r", "\n"), attachments, types, report


def is_attachment(part: email.message.Message, ctype: str | None = None) -> bool:
    """Whether a part is listed in the attachment manifest (the one test, for the listing and
    for the download): an attached message, a part with a file name or an ``attachment``
    disposition, or any leaf that is not text. ``ctype`` is the part's content type, when the
    caller has it already."""
    ctype = ctype or part.get_content_type()
    if part.is_multipart() or ctype.partition("/")[0] == "message":
        return ctype == "message/rfc822" or bool(ctype.startswith("message") and _filename(part))
    return _disposition(part) == "attachment" or (
        not ctype.startswith("text/")) or bool(_filename(part))


#: The stub :mod:`triage.mailbox.fetch` leaves for a part of a large message it did not fetch
#: carries this header with the part's announced size ("12345 bytes not fetched"); it is read
#: only in a stand-in the intake said it rebuilt (``parse_message(partial=True)``).
_NOT_FETCHED = re.compile(r"^\s*(\d+) bytes not fetched")


def _manifest_entry(part: email.message.Message, ctype: str, index: int, section: str,
                    partial: bool) -> Attachment:
    default = "message.eml" if ctype.startswith("message/") else ""
    stub = _NOT_FETCHED.match(str(part.get("X-Triage-Partial", ""))) if partial else None
    size = int(stub.group(1)) if stub else _size(part)
    return Attachment(display_name(_filename(part) or default), ctype, size, index, section,
                      stored=stub is None)


def display_name(name: str) -> str:
    """A file name safe to show: no control, bidi or other invisible format character
    (U+202E would show ``exe.pdf`` as ``fdp.exe``), runs of spaces made one."""
    out = []
    for ch in name:
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif category not in ("Cf", "Co", "Cs", "Cn"):
            out.append(ch)
    return " ".join("".join(out).split())[:255]


def _disposition(part: email.message.Message) -> str:
    values = [str(v) for k, v in part.raw_items() if k.lower() == "content-disposition"]
    return values[0].split(";")[0].strip().lower() if values else ""


def _filename(part: email.message.Message) -> str | None:
    # A file name is a ``filename`` parameter of Content-Disposition or a ``name`` one of
    # Content-Type (RFC 2231 sections included): without "name" in either, there is none, and
    # the parameters need not be parsed.
    if not any(k.lower() in ("content-disposition", "content-type") and "name" in str(v).lower()
               for k, v in part.raw_items()):
        return None
    try:
        name = part.get_filename()
    except Exception:  # a hostile parameter must not stop the parse
        return None
    return decode_header(name)[:255] if name else None


def _size(part: email.message.Message) -> int:
    """The decoded size of a part, estimated from its encoded payload (nothing is decoded);
    for an attached message, its headers and all its parts."""
    total = 0
    stack = [(part, False)]
    while stack:
        current, count_headers = stack.pop()
        if count_headers:
            total += sum(len(str(k)) + len(str(v)) + 4 for k, v in current.raw_items())
        value = payload(current)
        if isinstance(value, list):
            stack.extend((p, True) for p in value if isinstance(p, email.message.Message))
        elif isinstance(value, str):
            encoding = str(current.get("Content-Transfer-Encoding", "")).strip().lower()
            if encoding == "base64":
                # Counting a character reads each one (0.5-0.7 ms a megabyte); whether there is
                # one at all is a memchr, fifty times faster (and most mail has no CR). The
                # prescan of a large message has counted the "\n" already.
                returns = value.count("\r") if "\r" in value else 0
                newlines = (current.newlines(value) if isinstance(current, SafeMessage)
                            else value.count("\n"))
                total += (len(value) - newlines - returns) * 3 // 4
            else:
                total += len(value)
    return total


def _decode_part(part: email.message.Message, defects: list[str], *, limit: int) -> str:
    """The text of a part, from its charset or the one it really uses; at most ``limit`` bytes."""
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        defects.append(f"part body undecodable: {type(exc).__name__}")
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    if len(data) > limit:
        # Cut at a line end, so that no multi-byte character is split (the strict decoders
        # would then reject the whole text and fall back to windows-1252).
        cut = data.rfind(b"\n", 0, limit)
        data = data[: cut if cut > limit // 2 else limit]
        defects.append(f"part text cut at {len(data)} bytes")
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    text, note = decode_bytes(data, charset)
    if note:
        defects.append(note)
    return text
