"""Alembic environment: migrations run with the connection the store hands over."""

from __future__ import annotations

from alembic import context

from triage.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - the store always passes its connection
        raise RuntimeError("run migrations through `triage db upgrade`")
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
