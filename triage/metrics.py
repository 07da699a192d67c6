"""Observability: Prometheus metrics (``/metrics``) and readiness (``/readyz``).

Two kinds of metrics:

- read from the store at scrape time, so that every process (``triage run``, ``triage web``,
  ``triage serve``, several instances on PostgreSQL) reports the same numbers: tickets by
  department, action and intent; drafts waiting and the age of the oldest; replies sent; send
  failures (temporary and permanent, from the audit trail); whether each mailbox was reached;
- kept in the process that does the work, so only meaningful where the daemon runs
  (``triage serve``, or ``triage run`` next to a web process that does not see them): intake
  pass errors and the time spent per message (:class:`IntakeMetrics`, the workers' observer).

Readiness: ready when the store answers and every configured mailbox was polled successfully
within :data:`STALE_AFTER` seconds (or ten poll intervals, if longer), as the daemon records it
in the store. A mailbox that cannot be reached (transient: network, busy server) or that refuses
us (permanent: login or folder refused, an admin must act), or a daemon that stopped polling,
makes it fail; each line says which kind it is (:func:`triage.errors.kind_of`).
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triage.config import Settings
from triage.errors import PeerError, kind_of
from triage.store import Store, desk

#: A mailbox not polled successfully for this long (seconds) makes ``/readyz`` fail.
STALE_AFTER = 120.0

# -- process-local metrics -----------------------------------------------------------------
# Created outside any registry: each application registers them in its own registry, next to a
# collector bound to its store (two apps in one test process must not share a registry).
POLL_ERRORS = Counter("triage_poll_errors", "Intake passes that failed on a network or IMAP "
                      "error (this process)", ["mailbox"], registry=None)
MESSAGE_SECONDS = Histogram(
    "triage_message_seconds", "Time to triage one message in an intake pass: fetch, parse, "
    "rules, draft, commit and move, the pass's time shared among its messages (this process)",
    ["mailbox"], registry=None,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


class IntakeMetrics:
    """The observer the daemon gives its mailbox workers: each pass feeds :data:`POLL_ERRORS`
    and :data:`MESSAGE_SECONDS` (see :class:`triage.mailbox.worker.PassObserver`)."""

    def passed(self, mailbox: str, messages: int, seconds: float) -> None:
        if messages:
            histogram = MESSAGE_SECONDS.labels(mailbox)
            for _ in range(messages):
                histogram.observe(seconds / messages)

    def failed(self, mailbox: str, error: PeerError) -> None:
        POLL_ERRORS.labels(mailbox).inc()


# -- metrics read from the store -----------------------------------------------------------
class StoreCollector(Collector):
    """Reads the ticket store at each scrape, so every process reports the same numbers."""

    def __init__(self, store: Store, settings: Callable[[], Settings]) -> None:
        self.store = store
        self.settings = settings

    def collect(self) -> Iterable[Metric]:
        now = datetime.now(UTC)
        settings = self.settings()
        tickets = CounterMetricFamily(
            "triage_tickets", "Tickets in the store by department, action (as it stands now: an "
            "agent's rejection turns a draft into human) and intent",
            labels=["department", "action", "intent"])
        waiting = GaugeMetricFamily("triage_drafts_waiting", "Drafts waiting for an agent",
                                    labels=["department"])
        oldest = GaugeMetricFamily("triage_drafts_waiting_oldest_seconds",
                                   "Age of the oldest draft waiting for an agent",
                                   labels=["department"])
        sent = CounterMetricFamily("triage_replies_sent", "Replies the relay accepted",
                                   labels=["department"])
        failures = CounterMetricFamily(
            "triage_send_failures", "Failed sending attempts: temporary (relay down or 4xx, "
            "retried) and permanent (5xx, back to an agent)", labels=["department", "kind"])
        up = GaugeMetricFamily("triage_mailbox_up", "1 when the last intake pass of the mailbox "
                               "succeeded recently, else 0", labels=["mailbox"])
        last_poll = GaugeMetricFamily("triage_mailbox_last_poll_timestamp_seconds",
                                      "Unix time of the last successful intake pass",
                                      labels=["mailbox"])
        with self.store.session() as s:
            for dept, action, intent, n in desk.ticket_counts(s):
                tickets.add_metric([dept or "none", action, intent or "none"], n)
            pending = desk.drafts_waiting(s)
            for dept in [d.code for d in settings.departments] + sorted(
                    set(pending) - {d.code for d in settings.departments}):
                n, first = pending.get(dept, (0, None))
                waiting.add_metric([dept], n)
                oldest.add_metric([dept], (now - first).total_seconds() if first else 0.0)
            for dept, n in desk.replies_sent(s).items():
                sent.add_metric([dept], n)
            for dept, kind, n in desk.send_failures(s):
                failures.add_metric([dept or "none", kind], n)
            states = desk.mailbox_states(s)
        for box in settings.mailboxes:
            state = states.get(box.address)
            polled = state.last_poll_at if state else None
            fresh = polled is not None and (now - polled).total_seconds() <= stale_after(settings)
            failing = state is None or bool(state.last_error)
            up.add_metric([box.address], 1.0 if fresh and not failing else 0.0)
            if polled is not None:
                last_poll.add_metric([box.address], polled.timestamp())
        yield from (tickets, waiting, oldest, sent, failures, up, last_poll)


def stale_after(settings: Settings) -> float:
    return max(STALE_AFTER, 10 * settings.imap.poll_interval)


def registry_for(store: Store, settings: Callable[[], Settings]) -> CollectorRegistry:
    """A registry with the store's metrics and this process's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, settings))
    registry.register(POLL_ERRORS)
    registry.register(MESSAGE_SECONDS)
    return registry


# -- readiness -----------------------------------------------------------------------------
def readiness(settings: Settings, store: Store) -> tuple[bool, list[str]]:
    """Whether the service can do its work, and one line per thing checked."""
    now = datetime.now(UTC)
    try:
        with store.session() as s:
            desk.answers(s)
            states = desk.mailbox_states(s)
    except SQLAlchemyError as exc:
        return False, [f"store: error: {type(exc).__name__}"]
    lines = ["store: ok"]
    ok = True
    limit = stale_after(settings)
    for box in settings.mailboxes:
        state = states.get(box.address)
        polled = state.last_poll_at if state else None
        if state is not None and state.last_error:
            ok = False
            what = "refused" if kind_of(state.last_error) == "permanent" else "unreachable"
            lines.append(f"{box.address}: {what}: {state.last_error.splitlines()[0][:300]}")
        elif polled is None:
            ok = False
            lines.append(f"{box.address}: not polled yet")
        elif (now - polled).total_seconds() > limit:
            ok = False
            lines.append(f"{box.address}: last successful poll "
                         f"{int((now - polled).total_seconds())} s ago")
        else:
            lines.append(f"{box.address}: ok")
    return ok, lines


# -- HTTP endpoints ------------------------------------------------------------------------
def metrics_token(settings: Settings) -> str | None:
    """The bearer token ``/metrics`` requires (``web.metrics_token_env`` or
    ``web.metrics_token_file``), or None: then ``/metrics`` is open to whoever reaches the web
    application's address (loopback by default)."""
    web = settings.web
    if web.metrics_token_env:
        value = os.environ.get(web.metrics_token_env, "").strip()
        if value:
            return value
    if web.metrics_token_file:
        try:
            value = settings.path(web.metrics_token_file).read_text("utf-8").strip()
        except OSError:
            value = ""
        # A configured but unreadable or empty token file locks /metrics rather than opening it.
        return value or secrets.token_urlsafe(32)
    # A variable named but empty or unset locks /metrics too.
    return secrets.token_urlsafe(32) if web.metrics_token_env else None


def routes(store: Store, settings: Callable[[], Settings]) -> list[Route]:
    """``/metrics`` (Prometheus text format) and ``/readyz`` (200 or 503, plain text)."""
    registry = registry_for(store, settings)

    async def metrics_endpoint(request: Request) -> Response:
        token = metrics_token(settings())
        given = request.headers.get("authorization", "")
        if token is not None and not hmac.compare_digest(
                given.encode("utf-8", "replace"), f"Bearer {token}".encode()):
            return Response("bearer token required\n", status_code=401, media_type="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def readyz(request: Request) -> Response:
        ok, lines = await run_in_threadpool(readiness, settings(), store)
        return Response("\n".join(["ready" if ok else "not ready", *lines]) + "\n",
                        status_code=200 if ok else 503, media_type="text/plain")

    return [Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"])]


def families(text: str) -> Iterator[Metric]:
    """Parse an exposition (for tests and tools): the Prometheus text-format parser."""
    from prometheus_client.parser import text_string_to_metric_families

    yield from text_string_to_metric_families(text)


__all__ = ["MESSAGE_SECONDS", "POLL_ERRORS", "IntakeMetrics", "StoreCollector", "families",
           "metrics_token", "readiness", "registry_for", "routes"]
