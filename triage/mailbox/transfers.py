"""Copies owed to other departments: a ticket placed in another department's mailbox gets a
copy of its message in that mailbox's ``Triage/Transféré``, made by that mailbox's worker.

The copy is owed in the transaction that creates the ticket (:func:`owe`), and made later by
:func:`copy_owed`: a message already in the folder (a crash after the copy, before it was
marked done) is not copied again, the folder being searched for the Message-IDs first; the
copies go in pipelined groups, each group marked done in one transaction once the server has
them all. The folder is left before the APPEND (Courier refuses an APPEND to the examined
mailbox).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session

from triage.config import Mailbox, Settings
from triage.mailbox.protocol import MailboxConnection
from triage.store import Store, Ticket, Transfer
from triage.store import intake as queries

log = logging.getLogger("triage.mailbox")

#: Copies to Transféré sent in one pipelined group (and marked done in one transaction).
GROUP, GROUP_BYTES = 50, 8 << 20


def owe(s: Session, settings: Settings, mailbox: str, ticket: Ticket) -> bool:
    """A ticket of ``mailbox`` placed in another department: owe that mailbox a copy."""
    home = settings.department_of_mailbox(mailbox)
    if ticket.department is None or home is None or ticket.department == home.code:
        return False
    target = settings.department(ticket.department)
    if target is None or not any(m.address == target.mailbox for m in settings.mailboxes):
        return False
    s.add(Transfer(ticket_id=ticket.id, target=target.mailbox))
    return True


def copy_owed(conn: MailboxConnection, store: Store, settings: Settings, box: Mailbox,
              stopping: threading.Event) -> int:
    """Copy into ``box`` the messages other mailboxes routed to its department; how many."""
    folder = settings.mailbox_folders(box).transferred
    done = 0
    with store.session() as s:
        pending = queries.owed_transfers(s, box.address)
        if not pending:
            return 0
        present = conn.message_ids_in(folder, [mid for _, mid in pending if mid])
        copied: list[str] = []  # Message-IDs appended in this run, folded
        group: list[tuple[Transfer, str | None]] = []
        raws: list[bytes] = []
        for i, (transfer, message_id) in enumerate(pending):
            if stopping.is_set():
                break
            there = message_id is not None and (
                message_id in present or any(message_id.lower() in c for c in copied))
            if not there:
                ticket = s.get(Ticket, transfer.ticket_id)
                if ticket is None:
                    continue
                raws.append(ticket.raw)
                if message_id:
                    copied.append(message_id.lower())
            group.append((transfer, message_id))
            if (len(group) >= GROUP or sum(map(len, raws)) >= GROUP_BYTES
                    or i == len(pending) - 1):
                done += _copy(s, conn, box.address, folder, group, raws)
                group, raws = [], []
        if group:  # stopped half-way: what was gathered still goes
            done += _copy(s, conn, box.address, folder, group, raws)
    return done


def _copy(s: Session, conn: MailboxConnection, mailbox: str, folder: str,
          group: list[tuple[Transfer, str | None]], raws: list[bytes]) -> int:
    conn.append_many(folder, raws)
    queries.done_now(t for t, _ in group)
    s.commit()
    for transfer, message_id in group:
        log.info("ticket %s copied to %s", transfer.ticket_id, folder,
                 extra={"mailbox": mailbox, "ticket": transfer.ticket_id,
                        "message_id": message_id, "event": "ticket.transferred"})
    return len(group)
