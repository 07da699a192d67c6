"""``triage status``: per mailbox, the connection, the last pass, what waits, a reconciliation,
and what needs an admin.

The reconciliation compares, for the watched folder and each outcome folder, the messages on
the server with the sightings the store has recorded there, so that a lost message would show.
Before comparing, moves a crash left unrecorded are found on the server and recorded
(:mod:`triage.mailbox.repair`), so a SIGKILL between a MOVE and its commit is not reported as
a loss. « Tickets created » is counted from the store (tickets whose message came from this
mailbox), so a killed pass loses nothing of it.

A mailbox needs an admin (``triage status`` exits 1 and says which, and why) when it cannot be
reached or refuses us (now, or at the daemon's last pass), when a message sits in the watched
folder longer than :func:`waiting_limit`, when copies owed to it are older than
:data:`OWED_AFTER`, when its folders do not reconcile, or when the daemon found IDLE not
effective on it (new mail seen by the polls only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from triage.config import Settings
from triage.errors import PeerError, describe, kind_of
from triage.mailbox.connection import ConnectionFactory, opener
from triage.mailbox.repair import repair_moves
from triage.store import Store, mailboxes
from triage.store import intake as queries

#: Copies owed to a mailbox for longer than this (seconds) need an admin.
OWED_AFTER = 300.0


def waiting_limit(settings: Settings) -> float:
    """Seconds a message may wait in the watched folder before an admin is needed."""
    return max(300.0, 10 * settings.imap.poll_interval)


@dataclass
class MailboxStatus:
    address: str
    connection: str
    last_poll: str | None
    last_error: str | None
    waiting: int | None
    tickets_created: int
    owed: int = 0
    oldest_waiting: float | None = None  # seconds
    oldest_owed: float | None = None  # seconds
    repaired: int = 0
    idle: str | None = None
    folders: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # server, store
    problems: list[str] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return all(server is None or server >= stored for server, stored in self.folders.values())


def mailbox_status(settings: Settings, store: Store,
                   connect: ConnectionFactory | None = None) -> list[MailboxStatus]:
    connect = connect or opener(lambda: settings)
    now = datetime.now(UTC)
    out = []
    for box in settings.mailboxes:
        folders = settings.mailbox_folders(box)
        with store.session() as s:
            state = mailboxes.state_of(s, box.address)
            created = queries.tickets_created(s, box.address)
            owed, oldest_owed = queries.owed_transfer_summary(s, box.address)
            copied = queries.transfers_done(s, box.address)
            idle = queries.idle_verdict(s, box.address)
        status = MailboxStatus(
            box.address, "?", state.last_poll_at.isoformat() if state and state.last_poll_at
            else None, state.last_error if state else None, None, created, owed,
            oldest_owed=(now - oldest_owed).total_seconds() if oldest_owed else None,
            idle=idle)
        try:
            with connect(box) as conn:
                status.connection = "ok"
                selected = conn.select(folders.watch)
                status.repaired = repair_moves(conn, store, box.address, folders, selected)
                arrived = conn.oldest_arrival()
                if arrived is not None:
                    status.oldest_waiting = (now - arrived).total_seconds()
                with store.session() as s:
                    stored = queries.by_folder(s, box.address, selected.uidvalidity)
                status.waiting = len(conn.uids())
                status.folders[folders.watch] = (status.waiting, stored.get(None, 0))
                for folder in (folders.draft, folders.human, folders.ignore, folders.quarantine,
                               folders.handled):
                    if folder not in status.folders:
                        status.folders[folder] = (conn.count(folder), stored.get(folder, 0))
                status.folders[folders.transferred] = (conn.count(folders.transferred), copied)
        except PeerError as exc:
            status.connection = describe(exc)
        status.problems = problems(settings, status)
        out.append(status)
    return out


def problems(settings: Settings, r: MailboxStatus) -> list[str]:
    """What needs an admin on this mailbox, one line each (empty: nothing)."""
    found = []
    if r.connection != "ok":
        what = "refused" if kind_of(r.connection) == "permanent" else "unreachable"
        found.append(f"{what} now: {r.connection}")
    elif r.last_error:
        what = "refused" if kind_of(r.last_error) == "permanent" else "unreachable"
        found.append(f"{what} at the daemon's last pass: {r.last_error}")
    limit = waiting_limit(settings)
    if r.oldest_waiting is not None and r.oldest_waiting > limit:
        found.append(f"{r.waiting} message(s) waiting, the oldest for "
                     f"{int(r.oldest_waiting)} s (limit {int(limit)} s): is the daemon running?")
    if r.owed and r.oldest_owed is not None and r.oldest_owed > OWED_AFTER:
        found.append(f"{r.owed} copie(s) to Transféré owed, the oldest for "
                     f"{int(r.oldest_owed)} s")
    for folder, (server, stored) in r.folders.items():
        if server is not None and server < stored:
            found.append(f"{folder}: {stored - server} message(s) recorded by the store are "
                         "missing on the server")
    if r.idle == "ineffective":
        found.append("IDLE not effective: new mail is seen only by the polls (enable the "
                     "server's IDLE notifications: Cyrus idled, Courier IMAP_ENHANCEDIDLE=1)")
    return found


def format_status(rows: list[MailboxStatus]) -> str:
    width = max([22] + [len(f) for r in rows for f in r.folders])
    lines = []
    for r in rows:
        lines.append(f"{r.address}")
        lines.append(f"  connection:      {r.connection}")
        lines.append(f"  last poll:       {r.last_poll or 'never'}"
                     + (f"  (last error: {r.last_error})" if r.last_error else ""))
        lines.append(f"  waiting:         {'?' if r.waiting is None else r.waiting}")
        lines.append(f"  tickets created: {r.tickets_created}")
        lines.append(f"  copies owed:     {r.owed}")
        if r.repaired:
            lines.append(f"  moves repaired:  {r.repaired} (done on the server, now recorded)")
        if r.folders:
            lines.append("  reconciliation (server / store):")
            for folder, (server, stored) in r.folders.items():
                mark = "" if server is None or server >= stored else "  <- MISSING ON SERVER"
                lines.append(f"    {folder:<{width}} {'-' if server is None else server:>6} / "
                             f"{stored:<6}{mark}")
        if r.problems:
            lines.append("  NEEDS AN ADMIN:")
            lines += [f"    - {p}" for p in r.problems]
    return "\n".join(lines)
