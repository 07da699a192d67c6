"""Moves a crash left unrecorded, found on the server and recorded (worker and ``status``).

A SIGKILL between an IMAP ``MOVE`` (or, without MOVE, the COPY and ``\\Deleted`` flag) and the
commit of ``moved_to`` leaves sightings that the store believes are still in the watched
folder although the server moved them (or holds only a flagged original, expunged once its
move is recorded). A message
recorded as waiting but gone from the watched folder is looked for, by Message-ID, in the
outcome folder of its ticket's action (then in ``Traité``, where the sender files a message
answered before it moved); where it is found, the move is recorded. One that is nowhere is
left as it is: ``status`` then reports it missing, which is the truth.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from triage.config import Folders
from triage.mailbox.protocol import MailboxConnection, Selected
from triage.store import Store
from triage.store import intake as queries

log = logging.getLogger("triage.mailbox")


def repair_moves(conn: MailboxConnection, store: Store, mailbox: str, folders: Folders,
                 selected: Selected) -> int:
    """Record the moves found done; returns how many. Leaves the watched folder selected."""
    with store.session() as s:
        waiting = queries.not_moved(s, mailbox, selected.uidvalidity)
    if not waiting:
        return 0
    # A message flagged \Deleted counts as gone: on a server without MOVE the fallback
    # flags it once its copy is made, and a crash may come before the commit.
    present = set(conn.uids())
    gone = [w for w in waiting if w.uid not in present]
    if not gone:
        return 0
    by_folder: dict[str, dict[str, int]] = defaultdict(dict)
    for w in gone:
        if w.message_id:
            by_folder[folders.for_action(w.action)][w.message_id] = w.uid
    found: dict[int, str] = {}
    for folder, ids in by_folder.items():
        found.update({ids[m]: folder for m in conn.message_ids_in(folder, list(ids))})
    rest = {m: u for ids in by_folder.values() for m, u in ids.items() if u not in found}
    if rest:
        found.update({rest[m]: folders.handled
                      for m in conn.message_ids_in(folders.handled, list(rest))})
    again = conn.select(folders.watch)
    if again.uidvalidity != selected.uidvalidity:
        return 0  # recreated meanwhile: the next pass resynchronises
    if found:
        with store.session() as s:
            queries.record_moved(s, mailbox, selected.uidvalidity, found)
            s.commit()
        log.info("%d move(s) found done on the server and recorded", len(found),
                 extra={"mailbox": mailbox, "event": "imap.moves-repaired"})
    return len(found)
