"""the agents' desk: holds (« Je m'en occupe »), search indexes

Revision ID: 0005_desk
Revises: 0003_lifecycle
Create Date: 2026-12-07 08:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_desk"
down_revision = "0003_lifecycle"  # the head when this was written
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns added in place (no batch rebuild: on SQLite it would cascade deletes).
    op.add_column("tickets", sa.Column("held_by", sa.String(length=100), nullable=True))
    op.add_column("tickets", sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_identifier", "tickets", ["identifier"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_tickets_subject_fts", "tickets",
                        [sa.text("to_tsvector('french', subject)")], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_tickets_subject_fts", table_name="tickets")
    op.drop_index("ix_tickets_identifier", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("held_at")
        batch.drop_column("held_by")
