"""``triage status``: per mailbox, the connection, the last poll, what waits, and a reconciliation.

The reconciliation compares, for the watched folder and each outcome folder, the messages on
the server with the sightings the store has recorded there, so that a lost message would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from triage.config import Settings
from triage.mailbox.connection import Connection
from triage.mailbox.worker import NETWORK_ERRORS
from triage.store import MailboxState, Store, TicketSource


@dataclass
class MailboxStatus:
    address: str
    connection: str
    last_poll: str | None
    last_error: str | None
    waiting: int | None
    tickets_created: int
    folders: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # server, store

    @property
    def reconciled(self) -> bool:
        return all(server is None or server >= stored for server, stored in self.folders.values())


def mailbox_status(settings: Settings, store: Store) -> list[MailboxStatus]:
    out = []
    for box in settings.mailboxes:
        folders = settings.mailbox_folders(box)
        with store.session() as s:
            state = s.get(MailboxState, box.address)
            stored = dict(s.execute(
                select(TicketSource.moved_to, func.count(TicketSource.id))
                .where(TicketSource.mailbox == box.address).group_by(TicketSource.moved_to)
            ).all())
        status = MailboxStatus(
            box.address, "?", state.last_poll_at.isoformat() if state and state.last_poll_at
            else None, state.last_error if state else None, None,
            state.tickets_created if state else 0)
        names = {"watch": folders.watch, "draft": folders.draft, "human": folders.human,
                 "ignore": folders.ignore, "quarantine": folders.quarantine}
        try:
            with Connection(settings, box) as conn:
                status.connection = "ok"
                for key, folder in names.items():
                    on_server = conn.count(folder)
                    in_store = stored.get(None, 0) if key == "watch" else stored.get(folder, 0)
                    status.folders[folder] = (on_server, in_store)
                status.waiting = status.folders[folders.watch][0]
        except NETWORK_ERRORS as exc:
            status.connection = f"error: {exc}"
        out.append(status)
    return out


def format_status(rows: list[MailboxStatus]) -> str:
    lines = []
    for r in rows:
        lines.append(f"{r.address}")
        lines.append(f"  connection:      {r.connection}")
        lines.append(f"  last poll:       {r.last_poll or 'never'}"
                     + (f"  (last error: {r.last_error})" if r.last_error else ""))
        lines.append(f"  waiting:         {'?' if r.waiting is None else r.waiting}")
        lines.append(f"  tickets created: {r.tickets_created}")
        if r.folders:
            lines.append("  reconciliation (server / store):")
            for folder, (server, stored) in r.folders.items():
                mark = "" if server is None or server >= stored else "  <- MISSING ON SERVER"
                lines.append(f"    {folder:<22} {'-' if server is None else server:>6} / "
                             f"{stored:<6}{mark}")
    return "\n".join(lines)
