"""The dashboard of admins and team leads: the service's activity, read from the store.

Four views over a window of days (7, 30 or 90): tickets per day by department and by intent;
what agents did with the drafts (approved as they were, edited then approved, rejected); the
time from a message's arrival to the reply the relay accepted (median and 90th percentile);
the drafts waiting longest. Admins see every department, team leads (role ``lead``) their own;
agents are refused. The charts are SVG made on the server (:mod:`triage.review.charts`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from triage.config import Settings
from triage.lifecycle import DraftState
from triage.review import views
from triage.review.charts import Series, horizontal_bars, share_bar, stacked_columns
from triage.review.sessions import SessionData
from triage.store import Agent, desk

if TYPE_CHECKING:
    from triage.review.web import ReviewApp

WINDOWS = (7, 30, 90)
#: Roles that see the dashboard.
DASHBOARD_ROLES = ("admin", "lead")
EDIT_EVENTS = ("draft.edited", "draft.template-changed")
WAITING_SHOWN = 10


def local_zone() -> tzinfo:
    """Days are the helpdesk's days (Paris time); UTC if the zone database is missing."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Europe/Paris")
    except Exception:  # no tzdata: days in UTC are still days
        return UTC


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between the closest ranks."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Waiting:
    ticket_id: int
    department: str
    subject: str
    hours: float


@dataclass
class DashboardData:
    days: list[date]
    departments: list[str]
    by_department: dict[str, list[int]]
    by_intent: dict[str, list[int]]
    outcomes: dict[str, int]
    delays: dict[str, list[float]]  # hours from arrival to sent reply, by department
    waiting: list[Waiting] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.by_department.values())

    def delay_stats(self) -> list[tuple[str, int, float, float]]:
        """(department or "Tous", replies, median hours, 90th percentile hours)."""
        rows = [(d, len(v), percentile(v, 0.5), percentile(v, 0.9))
                for d, v in sorted(self.delays.items()) if v]
        everything = [h for v in self.delays.values() for h in v]
        if everything:
            rows.insert(0, ("Tous", len(everything), percentile(everything, 0.5),
                            percentile(everything, 0.9)))
        return rows


def scope(settings: Settings, agent: Agent) -> list[str]:
    """The departments whose figures ``agent`` sees."""
    codes = [d.code for d in settings.departments]
    return codes if agent.is_admin else [c for c in codes if c in agent.departments]


def gather(s: Session, settings: Settings, departments: list[str], window: int,
           now: datetime | None = None) -> DashboardData:
    """Read the figures of ``departments`` over the last ``window`` days."""
    zone = local_zone()
    now = now or datetime.now(UTC)
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=window - 1 - i) for i in range(window)]
    since = datetime.combine(days[0], datetime.min.time(), zone).astimezone(UTC)
    index = {d: i for i, d in enumerate(days)}
    everything = len(departments) == len(settings.departments)
    wanted = set(departments)

    def visible(dept: str | None) -> bool:
        return dept in wanted or (dept is None and everything)

    by_department: dict[str, list[int]] = {d: [0] * window for d in departments}
    by_intent: dict[str, list[int]] = {i: [0] * window for i in views.INTENTS}
    for dept, intent, created in desk.tickets_since(s, since):
        if not visible(dept):
            continue
        i = index.get(created.astimezone(zone).date())
        if i is None:
            continue
        by_department.setdefault(dept or "?", [0] * window)[i] += 1
        by_intent.setdefault(intent or "other", [0] * window)[i] += 1

    edited = desk.drafts_edited_since(s, since, EDIT_EVENTS)
    outcomes: Counter[str] = Counter()
    for d_id, dept, status in desk.drafts_since(s, since):
        if dept not in wanted:
            continue
        if status in (DraftState.APPROVED, DraftState.SENT):
            outcomes["edited" if d_id in edited else "unchanged"] += 1
        elif status == DraftState.REJECTED:
            outcomes["rejected"] += 1

    delays: dict[str, list[float]] = defaultdict(list)
    for dept, sent_at, created in desk.replies_sent_since(s, since):
        if dept in wanted:
            delays[dept].append(max((sent_at - created).total_seconds() / 3600, 0.0))

    waiting = [Waiting(w.ticket_id, w.department, w.subject or "(sans objet)",
                       max((now - w.created_at).total_seconds() / 3600, 0.0))
               for w in desk.longest_waiting(s, departments, WAITING_SHOWN)]
    return DashboardData(days, departments, by_department, by_intent,
                         {k: outcomes.get(k, 0) for k in ("unchanged", "edited", "rejected")},
                         dict(delays), waiting)


def unit_for(hours: Sequence[float]) -> tuple[str, float]:
    """A unit that suits the largest of ``hours``: minutes, hours or days (label, factor)."""
    top = max(hours, default=0.0)
    if top < 2:
        return "min", 60.0
    if top < 72:
        return "h", 1.0
    return "j", 1 / 24


FACTORS = {"min": 60.0, "h": 1.0, "j": 1 / 24}


def shown(hours: float, unit: str) -> float:
    """``hours`` in ``unit`` at the precision people read it (whole minutes, tenths of hours
    or days): the chart's bars and the table's cells both show this one value."""
    value = hours * FACTORS[unit]
    return float(round(value)) if unit == "min" else round(value, 1)


def duration(hours: float, unit: str | None = None) -> str:
    """A duration for people: « 12 min », « 3,5 h », « 2,1 j » (in ``unit`` when given: the
    table beside a chart uses the chart's)."""
    unit = unit or unit_for([hours])[0]
    value = shown(hours, unit)
    text = f"{value:.0f}" if unit == "min" else f"{value:.1f}".replace(".", ",")
    return f"{text} {unit}"


OUTCOME_LABELS = {"unchanged": "validés sans modification", "edited": "modifiés puis validés",
                  "rejected": "rejetés"}


def charts(data: DashboardData, settings: Settings) -> dict[str, Markup]:
    names = {d.code: f"{d.code} {d.name}" for d in settings.departments}
    columns = [d.strftime("%d/%m") for d in data.days]
    stats = data.delay_stats()
    delay_unit = unit_for([r[3] for r in stats])[0]
    wait_unit = unit_for([w.hours for w in data.waiting])[0]
    return {
        "per_department": stacked_columns(
            "departements", "Demandes reçues par jour et par département", columns,
            [Series(names.get(d, d), v) for d, v in data.by_department.items()]),
        "per_intent": stacked_columns(
            "demandes", "Demandes reçues par jour et par type de demande", columns,
            [Series(views.INTENTS.get(i, i), v) for i, v in data.by_intent.items()]),
        "outcomes": share_bar(
            "brouillons", "Ce que les agents ont fait des brouillons",
            [(OUTCOME_LABELS[k], v) for k, v in data.outcomes.items()]),
        "delays": horizontal_bars(
            "delais", "Délai entre l'arrivée et la réponse envoyée",
            [row[0] if row[0] == "Tous" else names.get(row[0], row[0]) for row in stats],
            [Series("médiane", [shown(r[2], delay_unit) for r in stats]),
             Series("90e centile", [shown(r[3], delay_unit) for r in stats])],
            unit=delay_unit),
        "waiting": horizontal_bars(
            "attente", "Brouillons en attente depuis le plus longtemps",
            [f"#{w.ticket_id} ({w.department})" for w in data.waiting],
            [Series("attente", [shown(w.hours, wait_unit) for w in data.waiting])],
            unit=wait_unit),
    }


async def dashboard_page(app: ReviewApp, request: Request, s: Session, agent: Agent,
                         data: SessionData) -> Response:
    if agent.role not in DASHBOARD_ROLES:
        return app.error(request, 403, "Le tableau de bord est réservé aux administrateurs et "
                                       "aux chefs d'équipe.", data, agent)
    settings = app.settings()
    try:
        window = int(request.query_params.get("jours", "30"))
    except ValueError:
        window = 30
    window = window if window in WINDOWS else 30
    departments = scope(settings, agent)
    figures = gather(s, settings, departments, window)
    return app.render(request, "dashboard.html", {
        "agent": agent, "window": window, "windows": WINDOWS, "d": figures,
        "charts": charts(figures, settings), "outcome_labels": OUTCOME_LABELS,
        "departments": departments, "duration": duration,
        "delay_unit": unit_for([r[3] for r in figures.delay_stats()])[0],
        "wait_unit": unit_for([w.hours for w in figures.waiting])[0]}, data)


__all__ = ["DASHBOARD_ROLES", "DashboardData", "charts", "dashboard_page", "duration", "gather",
           "percentile", "scope", "unit_for"]
