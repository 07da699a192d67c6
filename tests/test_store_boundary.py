"""The store's boundary: SQL is built and run in ``triage/store/`` only (and in the test helpers
of ``triage/testing/``); pages, commands, the sender and the lifecycle call its named queries."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "triage"

#: Where SQL belongs: the store, and the test helpers shipped in the package (they create
#: databases and check them; nothing of the service runs them).
OWNERS = ("store/", "testing/")

#: Modules outside the owners that still build SQL, each with the reason.
ALLOWED: dict[str, str] = {}

#: What may be imported from SQLAlchemy outside the store: the session's type (a parameter
#: type) and the errors a caller catches. Everything else (select, update, delete, insert,
#: text, func, or_, columns…) builds statements.
HARMLESS = {"sqlalchemy.orm": {"Session"}, "sqlalchemy.exc": None}

#: Session and connection methods that run a statement (``query``: the legacy query builder).
RUNNERS = {"execute", "exec_driver_sql", "scalar", "scalars", "query"}


def _project_module(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _builds_sql(found: object) -> bool:
    """Whether ``found`` is one of SQLAlchemy's objects other than the harmless ones (a
    statement builder that a store module imports, and so re-exports)."""
    where = str(getattr(found, "__module__", "") or "")
    name = getattr(found, "__name__", "")
    return where.split(".")[0] == "sqlalchemy" and not (
        where.startswith("sqlalchemy.exc") or name in HARMLESS["sqlalchemy.orm"])


def _violations(source: str) -> list[str]:
    tree = ast.parse(source)
    found = []
    modules: dict[str, ModuleType] = {}  # the project's modules imported by name: their aliases
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "triage":
            parent = _project_module(node.module or "")
            for a in node.names:
                value = getattr(parent, a.name, None)
                if isinstance(value, ModuleType):
                    modules[a.asname or a.name] = value
                elif _builds_sql(value):
                    found.append(f"line {node.lineno}: from {node.module} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                imported = _project_module(a.name) if a.name.startswith("triage.") else None
                if a.asname and imported is not None:
                    modules[a.asname] = imported
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == (
                "sqlalchemy"):
            allowed = HARMLESS.get(node.module or "", set())
            found += [f"line {node.lineno}: from {node.module} import {a.name}"
                      for a in node.names if allowed is not None and a.name not in allowed]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in modules
              and _builds_sql(getattr(modules[node.value.id], node.attr, None))):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in RUNNERS):
            found.append(f"line {node.lineno}: .{node.func.attr}(…)")
    return sorted(found, key=lambda line: int(line.split(":")[0].split()[1]))


def _modules() -> list[str]:
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                  if not str(p.relative_to(PACKAGE)).startswith(OWNERS))


@pytest.mark.parametrize("module", _modules())
def test_no_sql_outside_the_store(module: str) -> None:
    """A module outside ``triage/store/`` and ``triage/testing/`` neither imports SQLAlchemy's
    statement builders nor runs a statement, unless it is allow-listed with its reason."""
    found = _violations((PACKAGE / module).read_text("utf-8"))
    if module in ALLOWED:
        assert found, f"{module} builds no SQL any more: take it off the allow-list"
    else:
        assert not found, f"{module} builds SQL outside triage/store/: {found}"


def test_the_check_sees_sql() -> None:
    """The check finds a statement builder's import and a statement run (it can fail)."""
    sample = ("from sqlalchemy.orm import Session\n"
              "from sqlalchemy.exc import IntegrityError\n"
              "from sqlalchemy import func, select\n"
              "def count(s: Session) -> int:\n"
              "    import sqlalchemy\n"
              "    s.get(object, 1)\n"
              "    return s.execute(select(func.count()))\n")
    assert _violations(sample) == ["line 3: from sqlalchemy import func",
                                   "line 3: from sqlalchemy import select",
                                   "line 5: import sqlalchemy", "line 7: .execute(…)"]


def test_the_check_sees_sql_by_other_ways() -> None:
    """The check also finds a legacy ``Session.query`` and a statement builder taken from a
    store module that imports it (``from triage.store.queries import select``,
    ``desk.select``); the session's type and the errors stay allowed."""
    sample = ("from triage.store import Ticket, desk\n"
              "from triage.store.queries import PER_PAGE, func, select\n"
              "from triage.store.store import IntegrityError, Session\n"
              "import triage.store.desk as figures\n"
              "def ids(s: Session):\n"
              "    s.query(Ticket.id).limit(PER_PAGE).all()\n"
              "    desk.select(figures.func.count())\n")
    assert _violations(sample) == ["line 2: from triage.store.queries import func",
                                   "line 2: from triage.store.queries import select",
                                   "line 6: .query(…)", "line 7: desk.select",
                                   "line 7: figures.func"]


def _imports_transitions(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "triage.store" and any(
                a.name == "transitions" for a in node.names):
            return True
        module = node.module if isinstance(node, ast.ImportFrom) else None
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                name.startswith("triage.store.transitions")
                for name in [module or "", *(a.name for a in node.names)]):
            return True
    return False


def test_only_the_lifecycle_runs_its_statements() -> None:
    """``triage.store.transitions`` (the row lock, the compare-and-set of a state) is imported
    by ``triage.lifecycle`` alone: no other module can move a state behind its back."""
    users = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if _imports_transitions(p.read_text("utf-8")))
    assert users == ["lifecycle.py"]
    assert _imports_transitions("from triage.store.transitions import lock_row\n")


def test_the_stores_times_are_aware(tmp_path: Path, store_url: str) -> None:
    """Every time a named query returns is timezone-aware, an aggregate's too (on SQLite as on
    PostgreSQL), so callers compare them with ``datetime.now(UTC)`` without converting."""
    from datetime import UTC, datetime

    from tests.review.conftest import DEV, make_settings
    from triage.pipeline import triage_bytes
    from triage.review.sessions import record_attempt
    from triage.store import Store, desk
    from triage.store import sessions as stored

    settings = make_settings(tmp_path, store={"url": store_url})
    store = Store.open(settings)
    raw = (DEV / "063.eml").read_bytes()
    store.record(triage_bytes(raw, settings), raw, origin="test:063.eml")
    with store.session() as s:
        record_attempt(s, "agent38", "10.0.0.1", True)
        s.commit()
        (_n, oldest), = desk.drafts_waiting(s).values()
        times = [oldest, stored.last_success(s, "agent38", "10.0.0.1"),
                 *(created for _d, _i, created in desk.tickets_since(s, datetime.min.replace(
                     tzinfo=UTC)))]
    store.dispose()
    assert times and all(t is not None and t.utcoffset() is not None for t in times)
