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


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_lifecycle_migration_keeps_data_and_one_reply_per_draft(backend, tmp_path, request):
    """From 0002 with data: requesters are filled from the senders, and a reply queued twice
    for one draft (the double-approve defect) keeps only its oldest copy."""
    url = f"sqlite:///{tmp_path}/m.db" if backend == "sqlite" else request.getfixturevalue(
        "pg_url")
    engine = make_engine(url)
    migrate.upgrade(engine, "0002")
    now = "2026-12-01 10:00:00+00"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO tickets (id, identity, digest, created_at, updated_at, origin, subject,"
            " sender, status, action, intent, nominative, authenticated, reasons, raw, raw_size)"
            f" VALUES (1, 'i1', 'd1', '{now}', '{now}', 'test', 's', "
            "'Aurélie Martin <Aurelie.Martin@Ville-Voiron.fr>', 'approved', 'draft', 'other', "
            "true, true, '[]', :raw, 1)"), {"raw": b"x"})
        conn.execute(text(
            "INSERT INTO drafts (id, ticket_id, template, department, to_addr, subject, body,"
            f" status, created_at, updated_at) VALUES (1, 1, 't', '38', 'a@b', 's', 'b', "
            f"'approved', '{now}', '{now}')"))
        for n in (1, 2):
            conn.execute(text(
                "INSERT INTO outbox (id, ticket_id, draft_id, department, message_id, from_addr,"
                " to_addr, raw, state, attempts, next_attempt_at, approved_by, approved_at,"
                f" filed) VALUES ({n}, 1, 1, '38', 'm{n}', 'f', 't', :raw, 'approved', 0, "
                f"'{now}', 'agent', '{now}', false)"), {"raw": b"x"})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT requester FROM tickets")).scalar() == \
            "aurelie.martin@ville-voiron.fr"
        assert [tuple(r) for r in conn.execute(
            text("SELECT id, state FROM outbox ORDER BY id"))] == [(1, "approved"),
                                                                   (2, "cancelled")]
    engine.dispose()
