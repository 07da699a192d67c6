"""Schema migrations: the same schema from migrations and from models, on SQLite and
PostgreSQL; a database at another revision is refused with the command to run."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, inspect, text

from triage.errors import StoreError
from triage.store import Store, migrate
from triage.store.store import make_engine


def _tables(engine) -> dict[str, set[str]]:
    meta = MetaData()
    meta.reflect(engine)
    return {name: {c.name for c in table.columns} for name, table in meta.tables.items()}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_the_models_schema(backend, tmp_path, request):
    """Running the migrations gives the same tables and columns as the models."""
    if backend == "sqlite":
        migrated, fresh = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    else:
        migrated, fresh = request.getfixturevalue("pg_url"), None
    engine = make_engine(migrated)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    by_migration = _tables(engine)
    engine.dispose()
    if fresh is None:
        with make_engine(migrated).begin() as conn:  # rebuild from the models in place
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        fresh = migrated
    store = Store.from_url(fresh)
    by_models = _tables(store.engine)
    store.dispose()
    assert by_migration == by_models


def test_other_revision_is_refused(tmp_path):
    """A database at an unknown or older revision is refused with a clear message."""
    url = f"sqlite:///{tmp_path}/x.db"
    Store.from_url(url).dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(StoreError, match="does not know"):
        Store.from_url(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(StoreError, match="no schema revision"):
        Store.from_url(url)
    assert "tickets" in inspect(engine).get_table_names()
