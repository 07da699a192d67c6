"""An attachment the intake did not fetch, fetched from its mailbox when an agent asks for it.

Messages over ``imap.full_fetch_bytes`` are fetched at intake for their header and text parts
only (:mod:`triage.mailbox.fetch`): the stored stand-in lists every other part with its type,
name and size, in the order of the message's ``BODYSTRUCTURE``. The download finds the message
again: by its recorded UID where it was left (same UIDVALIDITY), else in the folder the intake
moved it to by its Message-ID (a move gives it a new UID), and in both cases only a message
whose Message-ID is exactly the ticket's (:mod:`triage.mailbox.message_ids`). It reads its
structure, takes the part at the same place among the parts that were not fetched, checks that
its type matches, and fetches that one section (``BODY.PEEK[section]``, leaving ``\\Seen``
alone), decoded from its transfer encoding. Nothing is kept: the mailbox stays the only copy.
"""

from __future__ import annotations

import email.message
import logging

from imapclient.exceptions import IMAPClientError

from triage.config import Settings
from triage.errors import TriageError
from triage.mailbox.connection import Connection
from triage.mailbox.fetch import walk_structure
from triage.mailbox.message_ids import uids_with_message_id
from triage.parse import Attachment
from triage.parse.mime import parse_bytes
from triage.store import Ticket, TicketSource

log = logging.getLogger("triage.web")


def fetch_missing(settings: Settings, ticket: Ticket, sources: list[TicketSource],
                  entries: list[Attachment], entry: Attachment) -> bytes | None:
    """The content of ``entry`` (not stored) from the mailbox, or None when it cannot be had."""
    missing = [e for e in entries if not e.stored]
    if entry not in missing or not ticket.message_id:
        return None
    place = missing.index(entry)
    for source in sources:
        box = settings.mailbox_of(source.mailbox)
        if box is None:
            continue
        try:
            with Connection(settings, box).open() as conn:
                found = _fetch(conn, settings, source, ticket.message_id, place, entry)
        # A hostile Message-ID or a server's odd answer (imapclient raises IMAPClientError,
        # ValueError, UnicodeError) is one more attachment that cannot be had, never a 500.
        except (TriageError, OSError, IMAPClientError, ValueError) as exc:
            log.warning("attachment of ticket %s not fetched from %s: %s", ticket.id,
                        source.mailbox, exc)
            continue
        if found is not None:
            return found
    return None


def _fetch(conn: Connection, settings: Settings, source: TicketSource, message_id: str,
           place: int, entry: Attachment) -> bytes | None:
    box = conn.box
    if source.moved_to:
        name, pinned = conn.folder(source.moved_to), None
    else:
        name, pinned = source.folder or conn.folder(settings.mailbox_folders(box).watch), [
            source.uid]
    if not conn.imap.folder_exists(name):
        return None
    info = conn.imap.select_folder(name, readonly=True)
    if pinned is not None and int(info.get(b"UIDVALIDITY", 0)) != source.uidvalidity:
        pinned = None  # the folder was rebuilt: its UIDs name other messages now
    for uid in uids_with_message_id(conn, message_id, among=pinned):
        meta = conn.fetch([uid], ["BODYSTRUCTURE"]).get(uid, {})
        structure = meta.get(b"BODYSTRUCTURE")
        if structure is None:
            continue
        parts = [p for p in walk_structure(structure) if not p.is_text]
        if place >= len(parts) or parts[place].ctype != entry.content_type:
            continue
        section = parts[place].section
        data = conn.fetch([uid], [f"BODY.PEEK[{section}.MIME]", f"BODY.PEEK[{section}]"]).get(
            uid, {})
        head = data.get(f"BODY[{section}.MIME]".encode()) or b""
        body = data.get(f"BODY[{section}]".encode())
        if not isinstance(body, bytes):
            continue
        if entry.content_type.startswith("message/"):
            return body
        part = parse_bytes(head.rstrip(b"\r\n") + b"\r\n\r\n" + body)
        payload = part.get_payload(decode=True) if isinstance(
            part, email.message.Message) else None
        return payload if isinstance(payload, bytes) else body
    return None
