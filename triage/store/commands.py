"""``triage db``: bring the store's schema to this code's revision, or show where it stands."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from triage.errors import StoreError
from triage.store import migrate


@click.group("db")
def db() -> None:
    """The store's schema (Alembic migrations, SQLite or PostgreSQL)."""


def _engine(config_path: Path | None):  # type: ignore[no-untyped-def]
    from triage.cli import settings_or_exit
    from triage.store.store import make_engine

    return make_engine(settings_or_exit(config_path).store_url)


@db.command("upgrade")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
def upgrade_command(config_path: Path | None) -> None:
    """Migrate the store to this triage's schema (back it up first)."""
    engine = _engine(config_path)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
    except Exception as exc:
        click.echo(f"error: migration failed: {exc}", err=True)
        sys.exit(2)
    click.echo(f"schema at {migrate.head_revision()} (was {before or 'empty'})")


@db.command("current")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path))
def current_command(config_path: Path | None) -> None:
    """Print the store's schema revision and this code's; exit 1 when they differ."""
    engine = _engine(config_path)
    try:
        current, head = migrate.current_revision(engine), migrate.head_revision()
    except SQLAlchemyError as exc:
        click.echo(f"error: cannot read the store: {exc}", err=True)
        sys.exit(2)
    click.echo(f"database: {current or 'empty'}\ncode:     {head}")
    if current != head:
        try:
            migrate.check(engine, create=False)
        except StoreError as exc:
            click.echo(str(exc), err=True)
        sys.exit(1)
