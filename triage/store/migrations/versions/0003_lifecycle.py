"""lifecycle: requester, received time and mention of tickets; queue indexes; one reply per draft

Revision ID: 0003_lifecycle
Revises: 0004_web_hardening
Create Date: 2026-12-07 07:30:00

Tickets get the requester's address (who may add to the ticket), the time the message was
received (the per-sender daily limit counts from it) and the ticket a message mentions without
joining it. The queue's indexes cover thread heads by department and state. The outbox gets a
partial unique index: at most one reply per draft queued, on its way or sent. Replies queued
twice for one draft before this revision (the double-approve defect) are cancelled, keeping
the oldest; two replies already sent for one draft cannot be undone, and the upgrade stops
naming them.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0003_lifecycle"
down_revision = "0004_web_hardening"  # the head when this was merged
branch_labels = None
depends_on = None

_ONE_PER_DRAFT = "state IN ('approved', 'sending', 'committing', 'sent')"
_HEADS = "parent_id IS NULL"
_UNDECIDED = "parent_id IS NULL AND department IS NULL"
_QUEUE_INDEXES = {
    "ix_tickets_queue": ["department", "status", "created_at", "id"],
    "ix_tickets_queue_counts": ["department", "status", "action", "intent"],
    "ix_tickets_heads": ["status", "created_at", "id"],
    "ix_tickets_heads_counts": ["status", "action", "intent"],
    "ix_tickets_department_time": ["department", "created_at", "id"],
    "ix_tickets_time": ["created_at", "id"],
    "ix_tickets_undecided": ["status", "created_at", "id"],
    "ix_tickets_undecided_time": ["created_at", "id"],
}
_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>\s*$")


def upgrade() -> None:
    bind = op.get_bind()
    # Plain ADD COLUMN, never a batch rebuild of ``tickets``: on SQLite a rebuild drops the
    # table, and with foreign keys on (the store's setting) that cascades to every draft,
    # source and outbox row. So on SQLite the new column keeps no foreign key and
    # ``received_at`` stays nullable in the file (the code always writes it).
    op.add_column("tickets", sa.Column("requester", sa.String(length=320), nullable=True))
    op.add_column("tickets", sa.Column("received_at", sa.DateTime(timezone=True),
                                       nullable=True))
    op.add_column("tickets", sa.Column("mentions_id", sa.Integer(), nullable=True))
    op.execute("UPDATE tickets SET received_at = created_at")
    _backfill_requesters(bind)
    if bind.dialect.name != "sqlite":
        op.create_foreign_key("fk_tickets_mentions_id", "tickets", "tickets", ["mentions_id"],
                              ["id"], ondelete="SET NULL")
        op.alter_column("tickets", "received_at", existing_type=sa.DateTime(timezone=True),
                        nullable=False)
    for name, columns in _QUEUE_INDEXES.items():
        where = _UNDECIDED if "undecided" in name else _HEADS
        op.create_index(name, "tickets", columns, postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))
    op.create_index("ix_tickets_requester", "tickets", ["requester", "received_at"])
    op.create_index("ix_drafts_to_addr", "drafts", ["to_addr"])
    _one_reply_per_draft(bind)
    op.create_index("uq_outbox_one_reply_per_draft", "outbox", ["draft_id"], unique=True,
                    postgresql_where=sa.text(_ONE_PER_DRAFT),
                    sqlite_where=sa.text(_ONE_PER_DRAFT))


def _backfill_requesters(bind: sa.engine.Connection) -> None:
    """The address part of ``sender`` (``Name <a@b>`` or ``a@b``), lower-cased."""
    rows = bind.execute(sa.text("SELECT id, sender FROM tickets")).fetchall()
    updates = []
    for ticket_id, sender in rows:
        sender = (sender or "").strip()
        match = _ADDRESS.search(sender)
        address = match.group(1) if match else (sender if "@" in sender and " " not in sender
                                                 else None)
        if address:
            updates.append({"id": ticket_id, "requester": address.lower()[:320]})
    for i in range(0, len(updates), 1000):
        bind.execute(sa.text("UPDATE tickets SET requester = :requester WHERE id = :id"),
                     updates[i:i + 1000])


def _one_reply_per_draft(bind: sa.engine.Connection) -> None:
    rows = bind.execute(sa.text(
        f"SELECT id, draft_id, state FROM outbox WHERE {_ONE_PER_DRAFT} ORDER BY id")).fetchall()
    seen: dict[int, str] = {}
    sent_twice: list[int] = []
    for item_id, draft_id, state in rows:
        if draft_id not in seen:
            seen[draft_id] = state
        elif state == "approved":
            bind.execute(sa.text("UPDATE outbox SET state = 'cancelled' WHERE id = :id"),
                         {"id": item_id})
        else:
            sent_twice.append(draft_id)
    if sent_twice:
        raise RuntimeError(
            "these drafts already have two replies sent or being sent (the double-approve "
            f"defect): {sorted(set(sent_twice))}; mark the extra outbox rows 'failed' after "
            "checking the relay's logs, then run `triage db upgrade` again")


def downgrade() -> None:
    op.drop_index("uq_outbox_one_reply_per_draft", table_name="outbox")
    op.drop_index("ix_drafts_to_addr", table_name="drafts")
    op.drop_index("ix_tickets_requester", table_name="tickets")
    for name in _QUEUE_INDEXES:
        op.drop_index(name, table_name="tickets")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_tickets_mentions_id", "tickets", type_="foreignkey")
    for column in ("mentions_id", "received_at", "requester"):
        op.drop_column("tickets", column)  # SQLite 3.35+ drops a column in place
