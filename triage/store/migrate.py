"""Schema migrations (Alembic), for SQLite and PostgreSQL alike.

``triage db upgrade`` brings a database to this code's schema. At start-up the store checks the
database's revision: an empty database is created at once; one at another revision (older or
newer than this code) is refused with a message naming the command to run.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from triage.errors import StoreError

HERE = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()  # type: ignore[arg-type]
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def create_fresh(engine: Engine) -> None:
    """An empty database gets the current schema directly, stamped at the head revision
    (the same tables the migrations build, without replaying them one by one)."""
    from triage.store.models import Base

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        Base.metadata.create_all(conn)
        cfg.attributes["connection"] = conn
        command.stamp(cfg, "head")


def check(engine: Engine, create: bool = True) -> None:
    """Create an empty database; refuse one whose schema is not this code's."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        tables = set(inspect(engine).get_table_names())
        if not (tables - {"alembic_version"}):
            if not create:
                raise StoreError("the database is empty: run `triage db upgrade`")
            create_fresh(engine)
            return
        raise StoreError("the database has tables but no schema revision: it was not created "
                         "by triage (or by a version before migrations); run `triage db upgrade`"
                         " after a backup")
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    known = {s.revision for s in scripts.walk_revisions()}
    if current in known:
        raise StoreError(f"the database schema is at revision {current}, older than this "
                         f"triage's {head}: run `triage db upgrade`")
    raise StoreError(f"the database schema is at revision {current}, which this triage does not "
                     f"know (newer software wrote it; this one expects {head}): upgrade triage")
