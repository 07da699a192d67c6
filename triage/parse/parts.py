"""What the review pages read of a stored message besides its view: one attachment's content
and the cleaned HTML body, found by the same walk and within the same limits as
:func:`triage.parse.parse_message` (a message over a limit yields neither)."""

from __future__ import annotations

import email.message

from triage.config import Limits
from triage.parse.html import clean_html
from triage.parse.prescan import scan
from triage.parse.reader import (
    _HTML_FACTOR,
    _decode_part,
    _parse,
    _strip_padding,
    _walk,
    is_attachment,
)


def _tree(raw: bytes, limits: Limits) -> email.message.Message | None:
    """The parsed message, or None when it is over a limit (then only its headers were read)."""
    content = _strip_padding(raw, [])
    pre = scan(content, limits)
    if pre.headers_only or pre.violations:
        return None
    violations: list[str] = []
    msg = _parse(content, pre, violations, [])
    return None if violations else msg


def attachment_content(raw: bytes, part: str, limits: Limits | None = None) -> bytes | None:
    """The decoded content of the manifest entry at IMAP section ``part``, or None.

    An attached message (``message/rfc822``) is given whole, as its own ``.eml``.
    """
    limits = limits or Limits()
    msg = _tree(raw, limits)
    if msg is None or not part:
        return None
    for node, _depth, _inner, section in _walk(msg, limits, []):
        if section != part or not is_attachment(node):
            continue
        if node.get_content_maintype() == "message":
            inner = node.get_payload()
            if not isinstance(inner, list) or not isinstance(inner[0], email.message.Message):
                return b""
            try:
                return bytes(inner[0].as_bytes())
            except Exception:  # a message the generator cannot write back: not served
                return None
        data = node.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    return None


def html_body(raw: bytes, limits: Limits | None = None) -> str | None:
    """The message's own HTML body (not an attached message's), cleaned, or None."""
    limits = limits or Limits()
    msg = _tree(raw, limits)
    if msg is None:
        return None
    for node, _depth, inner, _section in _walk(msg, limits, []):
        if inner or node.get_content_type() != "text/html" or is_attachment(node):
            continue
        text = _decode_part(node, [], limit=limits.max_text_chars * _HTML_FACTOR)
        return clean_html(text)
    return None
