"""The review queue on a PostgreSQL store of 1,000,000 tickets: how fast a page answers.

A script, not a test. It creates a throwaway database (``triage.testing.temporary_database``,
the local PostgreSQL), builds the schema with the store, fills it in SQL (``generate_series``:
a million tickets over two years, five departments and some undetermined ones, one in ten a
follow-up, nine in ten already answered or handled), runs ``ANALYZE``, then times the queue as
the web page asks for it (:func:`triage.review.views.queue`: filter, counts, order, page) for
a department agent and for an admin, over a mix of filters, orders and pages. Each query runs
in its own session, as a request would. Prints p50, p95 and max per case and writes JSON.

    python bench/review_queue.py [--tickets 1000000] [--repeat 200] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from triage.config import load_settings  # noqa: E402
from triage.review import views  # noqa: E402
from triage.store import Agent, Store  # noqa: E402
from triage.testing import temporary_database  # noqa: E402

DEPARTMENTS = ("07", "26", "38", "73", "74")

# Tickets in SQL: department by i % 20 (19 of 20 in a department, 1 undetermined), status by
# a hash of i, independent of the department (8 % open, 1 % quarantined, 1 % approved, 60 %
# sent, 30 % handled), action and intent spread,
# created over two years (newest last, as ids grow), one in ten a follow-up of an earlier one.
FILL = """
INSERT INTO tickets (id, identity, message_id, digest, created_at, updated_at, received_at,
    origin, subject, sender, requester, status, action, template, intent, department,
    nominative, identifier, authenticated, reasons, error, raw, raw_size, parent_id)
SELECT i, md5(i::text) || md5((i + 1)::text), 'm' || i || '@bench', md5(i::text),
    now() - make_interval(secs => (:n - i) * 63.0),
    now() - make_interval(secs => (:n - i) * 63.0),
    now() - make_interval(secs => (:n - i) * 63.0),
    'bench', 'Chorus Pro - mot de passe ' || i, 'Agent ' || i || ' <a' || (i % 50000) ||
    '@mairie.example>', 'a' || (i % 50000) || '@mairie.example',
    CASE WHEN h < 8 THEN 'open' WHEN h = 8 THEN 'quarantined'
         WHEN h = 9 THEN 'approved' WHEN h < 70 THEN 'sent' ELSE 'handled' END,
    CASE WHEN h = 8 THEN 'quarantine' WHEN i % 10 < 6 THEN 'draft'
         WHEN i % 10 < 9 THEN 'human' ELSE 'ignore' END,
    NULL, CASE WHEN i % 3 = 0 THEN 'expired_password' WHEN i % 3 = 1
         THEN 'forgotten_password' ELSE 'other' END,
    CASE WHEN i % 20 = 19 THEN NULL ELSE (ARRAY['07','26','38','73','74'])[i % 5 + 1] END,
    true, 'a' || i || '-xt', i % 2 = 0, '[]'::json, NULL, convert_to('From: x', 'UTF8'), 7,
    CASE WHEN i % 10 = 5 AND i > 100 THEN i - 100 ELSE NULL END
FROM (SELECT i, (hashint4(i) & 2147483647) % 100 AS h FROM generate_series(1, :n) AS i) AS g
"""
# Where each ticket was received, as in production (one source per ticket): its department's
# mailbox, and for the undetermined ones any of the five.
SOURCES = """
INSERT INTO ticket_sources (ticket_id, mailbox, uidvalidity, uid, seen_at)
SELECT i, 'ddfip' || CASE WHEN i % 20 = 19
                          THEN (ARRAY['07','26','38','73','74'])[(i / 20) % 5 + 1]
                          ELSE (ARRAY['07','26','38','73','74'])[i % 5 + 1] END
          || '.pgp.spl-pes@dgfip.finances.gouv.fr', 1, i, now()
FROM generate_series(1, :n) AS i
"""

CASES = {
    "todo, newest first, page 1": {"status": "todo"},
    "todo, oldest first, page 1": {"status": "todo", "order": "oldest"},
    "todo, drafts only": {"status": "todo", "action": "draft"},
    "todo, expired passwords": {"status": "todo", "intent": "expired_password"},
    "todo, page 20": {"status": "todo", "page": 20},
    "all states, page 1": {"status": "all"},
    "sent, page 1": {"status": "sent"},
    "all states, page 200 (the last)": {"status": "all", "page": 200},
    # The desk's search box (any state): an identifier, an address, words of the subject.
    "search: identifier": {"status": "all", "q": "a17-xt"},
    "search: address": {"status": "all", "q": "a17@mairie.example"},
    "search: subject words": {"status": "all", "q": "mot de passe 12347"},
}


def fill(store: Store, n: int) -> float:
    started = time.monotonic()
    with store.engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text(FILL), {"n": n})
        conn.execute(text(SOURCES), {"n": n})
        conn.execute(text("SELECT setval(pg_get_serial_sequence('tickets', 'id'), :n)"),
                     {"n": n})
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE tickets"))
        conn.execute(text("VACUUM ANALYZE ticket_sources"))
    return time.monotonic() - started


def run_case(store: Store, settings, agent: Agent, args: dict[str, object],  # type: ignore[no-untyped-def]
             repeat: int) -> dict[str, float]:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        with store.session() as s:
            page = views.queue(s, settings, agent, views.Filters(
                args.get("action"), args.get("intent"),  # type: ignore[arg-type]
                str(args["status"]), str(args.get("order", "newest")),
                int(args.get("page", 1)),  # type: ignore[call-overload]
                search=str(args.get("q", ""))))
            assert page.rows or int(args.get("page", 1)) > 1  # type: ignore[call-overload]
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2),
            "max_ms": round(timings[-1], 2), "rows_total": page.total}


def _explain(store: Store, settings) -> None:  # type: ignore[no-untyped-def]
    """The plans of the queue's statements for the agent of 38, one case after another."""
    from sqlalchemy import event

    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "tickets" in statement:
            statements.append((statement, parameters))

    agent = Agent(login="bench38", departments=["38"], role="agent")
    for case, query in CASES.items():
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", keep)
        run_case(store, settings, agent, query, 1)
        event.remove(store.engine, "before_cursor_execute", keep)
        print(f"== {case}")
        with store.engine.connect() as conn:
            for statement, parameters in statements:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement,
                                            parameters)  # type: ignore[arg-type]
                print("\n".join(row[0] for row in plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("/tmp/triage-bench/queue.json"))
    parser.add_argument("--database", default=None,
                        help="an existing database URL to fill once and keep (to study plans "
                             "with EXPLAIN); default: a throwaway one")
    parser.add_argument("--explain", action="store_true",
                        help="print each case's query plans (EXPLAIN ANALYZE) once")
    args = parser.parse_args()
    settings = load_settings(ROOT / "config" / "departments.yaml")
    random.seed(1)
    results: dict[str, object] = {"tickets": args.tickets, "repeat": args.repeat}
    with (contextlib.nullcontext(args.database) if args.database
          else temporary_database()) as url:
        store = Store.from_url(url)
        with store.engine.connect() as conn:
            present = conn.execute(text("SELECT count(*) FROM tickets")).scalar()
        if not present:
            seconds = fill(store, args.tickets)
            results["fill_seconds"] = round(seconds, 1)
            print(f"{args.tickets:,} tickets written and analysed in {seconds:.0f} s",
                  flush=True)
        if args.explain:
            _explain(store, settings)
        with store.engine.connect() as conn:
            results["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
        who = {"agent of 38": Agent(login="bench38", departments=["38"], role="agent"),
               "admin": Agent(login="admin", departments=list(DEPARTMENTS), role="admin")}
        for name, agent in who.items():
            for case, query in CASES.items():
                figures = run_case(store, settings, agent, query, args.repeat)
                results[f"{name}: {case}"] = figures
                print(f"{name:12} {case:30} p50 {figures['p50_ms']:7.2f} ms  "
                      f"p95 {figures['p95_ms']:7.2f} ms  max {figures['max_ms']:7.2f} ms  "
                      f"({figures['rows_total']:,} rows)", flush=True)
        store.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
