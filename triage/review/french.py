"""Dates, times and ages as French agents read them: Europe/Paris, « 7 déc. 2026 à 06:22 »,
« il y a 3 h », and ages in business days (weekends and French public holidays skipped).

The store keeps UTC; only pages convert, here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
          "nov.", "déc.")


def local(at: datetime) -> datetime:
    """``at`` in Paris time (naive values are UTC, as SQLite returns them)."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(PARIS)


def day(at: datetime) -> str:
    """« 7 déc. 2026 »."""
    p = local(at)
    return f"{p.day} {MONTHS[p.month - 1]} {p.year}"


def when(at: datetime) -> str:
    """« 7 déc. 2026 à 06:22 » (Paris time)."""
    return f"{day(at)} à {local(at):%H:%M}"


def ago(at: datetime, now: datetime | None = None) -> str:
    """« il y a 3 h », « il y a 5 min », « à l'instant », « il y a 2 j »."""
    now = now or datetime.now(UTC)
    then = at if at.tzinfo else at.replace(tzinfo=UTC)
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "à l'instant"
    if seconds < 3600:
        return f"il y a {seconds // 60} min"
    if seconds < 86400:
        return f"il y a {seconds // 3600} h"
    return f"il y a {seconds // 86400} j"


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_ + 433) // 2953
    month = (h + l_ - 7 * m + 90) // 25
    return date(year, month, (h + l_ - 7 * m + 33 * month + 19) % 32)


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """The eleven French public holidays of metropolitan France (Alsace-Moselle's two
    extra days are not national)."""
    easter = _easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    moving = [easter + timedelta(days=1), easter + timedelta(days=39),
              easter + timedelta(days=50)]
    return frozenset([date(year, m, d) for m, d in fixed] + moving)


def business_day(d: date) -> bool:
    return d.weekday() < 5 and d not in holidays(d.year)


def business_days(at: datetime, now: datetime | None = None) -> int:
    """Whole business days since ``at`` (Paris dates): 0 the same day, 1 the next working
    day, and a Friday's request is 1 day old on Monday."""
    start, end = local(at).date(), local(now or datetime.now(UTC)).date()
    if end <= start:
        return 0
    n, d = 0, start + timedelta(days=1)
    while d <= end:
        n += business_day(d)
        d += timedelta(days=1)
    return n


def age(at: datetime, now: datetime | None = None) -> str:
    """The queue's age column: « il y a 3 h » today, « 2 j ouvrés » later."""
    days = business_days(at, now)
    if days == 0:
        return ago(at, now)
    return f"{days} j ouvré{'s' if days > 1 else ''}"


def business_days_ago(n: int, now: datetime) -> datetime:
    """The start (Paris midnight, in UTC) of the day after which a request is less than ``n``
    business days old: requests received before it are ``n`` or more days old."""
    d = local(now).date()
    counted = 0
    while counted < n:
        if business_day(d):
            counted += 1
        d -= timedelta(days=1)
    start = datetime(d.year, d.month, d.day, tzinfo=PARIS) + timedelta(days=1)
    return start.astimezone(UTC)
