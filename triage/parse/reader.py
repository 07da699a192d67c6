"""Turn raw bytes into a :class:`MessageView`, within limits, without ever raising."""

from __future__ import annotations

import email.errors
import email.message
import email.parser
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Iterator

from email_validator import EmailNotValidError, validate_email

from triage.config import Limits
from triage.parse.decode import decode_bytes, decode_header
from triage.parse.html import html_to_text
from triage.parse.message import Address, Attachment, MessageView
from triage.parse.quoting import split_quoted

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FORWARD_SUBJECT = re.compile(r"^\s*((re|aw|sv)\s*:\s*)*(tr|fwd?|wg|transf[ée]r[ée]?)\s*:", re.I)


def parse_message(raw: bytes, limits: Limits | None = None) -> MessageView:
    """Parse ``raw`` into a view. Limits exceeded are recorded in ``violations``."""
    limits = limits or Limits()
    violations: list[str] = []
    defects: list[str] = []
    digest = hashlib.sha256(raw).hexdigest()
    size = len(raw)
    header_block, body = _split_header_block(raw)
    headers_only = False
    if size > limits.max_message_bytes:
        violations.append(f"message de {size} octets, au-delà de la limite de "
                          f"{limits.max_message_bytes} octets")
        headers_only = True
    if len(header_block) > limits.max_header_bytes:
        violations.append(f"en-têtes de {len(header_block)} octets, au-delà de la limite de "
                          f"{limits.max_header_bytes} octets")
        header_block = _cut_at_line(header_block, limits.max_header_bytes)
        headers_only = True
    to_parse = header_block + b"\n\n" if headers_only else raw
    try:
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            to_parse, headersonly=headers_only)
    except Exception as exc:  # the parser is tolerant; this is a last resort
        defects.append(f"message unreadable by the MIME parser: {exc!r}")
        msg = email.message.Message()
    headers = _headers(msg, defects)
    if len(headers) > limits.max_header_count:
        violations.append(f"{len(headers)} en-têtes, au-delà de la limite de "
                          f"{limits.max_header_count}")
        headers = headers[: limits.max_header_count]
        headers_only = True

    def get_all(name: str) -> list[str]:
        return [v for k, v in headers if k.lower() == name]

    from_values = get_all("from")
    from_addresses, from_problem = _from_addresses(msg, len(from_values))
    text, attachments, part_types = "", [], []
    if not headers_only:
        text, attachments, part_types = _body(msg, limits, defects, violations)
    text = text[: limits.max_text_chars]
    split = split_quoted(text)
    subject = (get_all("subject") or [""])[0]
    kind = split.kind
    if kind and _FORWARD_SUBJECT.match(subject):
        kind = "forward"
    return MessageView(
        raw_size=size,
        digest=digest,
        headers=tuple(headers),
        message_id=_message_id((get_all("message-id") or [None])[0]),
        subject=subject,
        from_header=from_values[0] if from_values else "",
        from_addresses=from_addresses,
        from_problem=from_problem,
        reply_to=_addresses(msg, "reply-to"),
        sender=_addresses(msg, "sender"),
        to=_addresses(msg, "to"),
        cc=_addresses(msg, "cc"),
        delivered_to=tuple(
            a.address for name in ("delivered-to", "x-original-to")
            for a in _addresses(msg, name)),
        content_type=msg.get_content_type() if not headers_only else _ctype(headers),
        text=text,
        new_text=split.new_text,
        quoted_text=split.quoted_text,
        signature=split.signature,
        quote_kind=kind,
        attachments=tuple(attachments),
        part_types=tuple(part_types),
        defects=tuple(defects),
        violations=tuple(violations),
    )


def _split_header_block(raw: bytes) -> tuple[bytes, bytes]:
    match = _HEADER_END.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end():]


def _cut_at_line(block: bytes, limit: int) -> bytes:
    cut = block.rfind(b"\n", 0, limit)
    return block[: cut if cut > 0 else 0]


def _ctype(headers: list[tuple[str, str]]) -> str:
    value = next((v for k, v in headers if k.lower() == "content-type"), "text/plain")
    return value.split(";")[0].strip().lower() or "text/plain"


def _headers(msg: email.message.Message, defects: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in msg.raw_items():
        try:
            out.append((str(name), decode_header(value)))
        except Exception as exc:  # one bad header must not lose the others
            defects.append(f"header {name!r} undecodable: {exc!r}")
            out.append((str(name), str(value)))
    return out


def _message_id(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"<([^<>\s]+)>", value)
    mid = match.group(1) if match else value.strip().split()[0] if value.strip() else ""
    return mid[:998] or None


def _raw_header(msg: email.message.Message, name: str) -> list[str]:
    values = msg.get_all(name) or []
    return [decode_header(v) if not isinstance(v, str) or "\udc80" <= max(v, default=" ")
            else str(v) for v in values]


def _addresses(msg: email.message.Message, name: str) -> tuple[Address, ...]:
    out = []
    for display, addr in email.utils.getaddresses(_raw_header(msg, name)):
        addr = addr.strip().lower()
        if "@" not in addr:
            continue
        out.append(Address(decode_header(display).strip().strip('"'), addr))
    return tuple(out)


def _from_addresses(msg: email.message.Message, count: int) -> tuple[tuple[Address, ...], str | None]:
    if count == 0:
        return (), "aucun en-tête From"
    raw = _raw_header(msg, "from")
    if count > 1:
        return _addresses(msg, "from"), f"{count} en-têtes From"
    pairs = [(d, a) for d, a in email.utils.getaddresses(raw) if d or a]
    if not pairs:
        return (), "en-tête From vide"
    found: list[Address] = []
    for display, addr in pairs:
        if "@" not in addr:
            return tuple(found), f"pas d'adresse électronique dans From ({raw[0][:80]!r})"
        try:
            info = validate_email(addr, check_deliverability=False, allow_smtputf8=True,
                                  allow_quoted_local=True)
        except EmailNotValidError as exc:
            return tuple(found), f"adresse de l'expéditeur invalide ({addr[:80]!r} : {exc})"
        found.append(Address(decode_header(display).strip().strip('"'),
                             info.normalized.lower()))
    if len(found) > 1:
        return tuple(found), f"{len(found)} adresses dans From"
    return tuple(found), None


def _walk(msg: email.message.Message, limits: Limits, violations: list[str]
          ) -> Iterator[tuple[email.message.Message, int, bool]]:
    """Depth-first over the parts, iteratively (no recursion limit), within the limits."""
    stack: list[tuple[email.message.Message, int, bool]] = [(msg, 0, False)]
    count = 0
    while stack:
        part, depth, inner = stack.pop()
        count += 1
        if count > limits.max_parts:
            violations.append(f"plus de {limits.max_parts} parties MIME")
            return
        if depth > limits.max_depth:
            violations.append(f"imbrication MIME au-delà de {limits.max_depth} niveaux")
            return
        yield part, depth, inner
        payload = part.get_payload()
        if isinstance(payload, list):
            is_message = part.get_content_maintype() == "message"
            for child in reversed(payload):
                if isinstance(child, email.message.Message):
                    stack.append((child, depth + 1, inner or is_message))


def _body(msg: email.message.Message, limits: Limits, defects: list[str],
          violations: list[str]) -> tuple[str, list[Attachment], list[str]]:
    plain: list[str] = []
    html: list[str] = []
    inner_texts: list[str] = []
    attachments: list[Attachment] = []
    types: list[str] = []
    for part, _depth, inner in _walk(msg, limits, violations):
        ctype = part.get_content_type()
        types.append(ctype)
        if part.is_multipart() or part.get_content_maintype() == "message":
            if ctype == "message/rfc822" or (part.get_filename() and ctype.startswith("message")):
                attachments.append(Attachment(_filename(part) or "message.eml", ctype,
                                              _size(part)))
            continue
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = _filename(part)
        if disposition == "attachment" or filename or not ctype.startswith("text/"):
            attachments.append(Attachment(filename or "", ctype, _size(part)))
            continue
        if ctype not in ("text/plain", "text/html"):
            continue
        text = _decode_part(part, defects)
        if inner:
            inner_texts.append(html_to_text(text) if ctype == "text/html" else text)
        elif ctype == "text/plain":
            plain.append(text)
        else:
            html.append(text)
    body = "\n\n".join(t for t in plain if t.strip())
    if not body.strip() and html:
        body = "\n\n".join(html_to_text(h) for h in html)
    if inner_texts:
        # Messages attached whole (forwards as attachment, bounced originals) read as quoted.
        body += "\n\n" + "\n".join("> " + ln for t in inner_texts for ln in t.splitlines())
    return body.replace("\r\n", "\n").replace("\r", "\n"), attachments, types


def _filename(part: email.message.Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return decode_header(name) if name else None


def _size(part: email.message.Message) -> int:
    payload = part.get_payload()
    if isinstance(payload, str):
        encoding = (part.get("Content-Transfer-Encoding") or "").strip().lower()
        return len(payload) * 3 // 4 if encoding == "base64" else len(payload)
    if isinstance(payload, list):
        return sum(_size(p) for p in payload if isinstance(p, email.message.Message))
    return 0


def _decode_part(part: email.message.Message, defects: list[str]) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        defects.append(f"part body undecodable: {exc!r}")
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    text, note = decode_bytes(data, part.get_content_charset())
    if note:
        defects.append(note)
    return text
