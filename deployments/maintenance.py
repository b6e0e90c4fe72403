"""Maintenance windows written in a descriptor: recurring weekly ones and one-off ones.

Recurring::

    [[maintenance]]
    description = "Polaris preventive maintenance"
    weekday = "monday"
    start = "09:00"            # local time in `timezone`
    duration_hours = 8
    timezone = "America/Chicago"
    every_weeks = 2            # optional (default 1)
    anchor = "2026-01-05"      # a date of one occurrence, needed when every_weeks > 1

One-off::

    [[maintenance]]
    description = "Facility-wide power work"
    starts_at = "2026-12-01T07:00:00-06:00"
    ends_at = "2026-12-02T19:00:00-06:00"
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deployments._fields import Fields
from deployments.state import Outage

__all__ = ["MaintenanceWindow", "parse_maintenance"]

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class MaintenanceWindow:
    """One recurring or one-off window.

    For a recurring window ``weekday`` (0 = Monday), ``start``, ``duration``,
    ``timezone``, ``every_weeks`` and ``anchor`` are set; for a one-off
    window ``starts_at`` and ``ends_at`` (POSIX seconds) are.
    """

    description: str
    weekday: int | None = None
    start: time | None = None
    duration: timedelta | None = None
    timezone: str = "UTC"
    every_weeks: int = 1
    anchor: date | None = None
    starts_at: float | None = None
    ends_at: float | None = None

    def occurrences(self, begin: float, end: float) -> list[Outage]:
        """Every occurrence that intersects ``[begin, end]`` (POSIX seconds)."""
        if self.starts_at is not None and self.ends_at is not None:
            one = Outage(self.starts_at, self.ends_at, True, self.description)
            return [one] if one.overlaps(begin, end) else []
        if self.weekday is None or self.start is None or self.duration is None:
            return []
        zone = ZoneInfo(self.timezone)
        first = datetime.fromtimestamp(begin, zone).date() - timedelta(days=7 * self.every_weeks)
        last = datetime.fromtimestamp(end, zone).date()
        day = first + timedelta(days=(self.weekday - first.weekday()) % 7)
        found = []
        while day <= last:
            weeks = 0 if self.anchor is None else (day - self.anchor).days // 7
            if weeks % self.every_weeks == 0:
                s = datetime.combine(day, self.start, zone).timestamp()
                e = s + self.duration.total_seconds()
                outage = Outage(s, e, True, self.description)
                if outage.overlaps(begin, end):
                    found.append(outage)
            day += timedelta(days=7)
        return found


def parse_maintenance(f: Fields) -> MaintenanceWindow:
    """Validate one ``[[maintenance]]`` table."""
    description = f.string("description")
    if "starts_at" in f.data or "ends_at" in f.data:
        starts = _datetime(f, "starts_at")
        ends = _datetime(f, "ends_at")
        if ends <= starts:
            raise f.error("ends_at", "must be after starts_at", found=f.data["ends_at"])
        f.finish()
        return MaintenanceWindow(description, starts_at=starts, ends_at=ends)
    day = f.string("weekday").lower()
    if day not in _WEEKDAYS:
        raise f.error("weekday", "not a weekday", expected="monday ... sunday", found=day)
    start_text = f.string("start")
    try:
        start = time.fromisoformat(start_text)
    except ValueError:
        raise f.error("start", "not a time", expected="HH:MM", found=f.data["start"]) from None
    hours = f.number("duration_hours", strict=True)
    zone = f.string("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise f.error(
            "timezone", "unknown time zone", expected="an IANA name", found=zone
        ) from None
    every = f.integer("every_weeks", 1, minimum=1)
    anchor = None
    if every > 1 or "anchor" in f.data:
        text = f.string("anchor")
        try:
            anchor = date.fromisoformat(text)
        except ValueError:
            raise f.error("anchor", "not a date", expected="YYYY-MM-DD", found=text) from None
        if anchor.weekday() != _WEEKDAYS.index(day):
            raise f.error("anchor", f"is not a {day}", found=str(anchor))
    f.finish()
    return MaintenanceWindow(
        description,
        weekday=_WEEKDAYS.index(day),
        start=start,
        duration=timedelta(hours=hours),
        timezone=zone,
        every_weeks=every,
        anchor=anchor,
    )


def _datetime(f: Fields, key: str) -> float:
    raw = f.data.get(key)
    if isinstance(raw, datetime):  # a TOML date-time literal
        f.mark(key)
        value = raw
    else:
        text = f.string(key)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise f.error(key, "not a date-time", expected="ISO 8601", found=text) from None
    if value.tzinfo is None:
        raise f.error(key, "needs a UTC offset", expected="e.g. 2026-12-01T07:00:00-06:00")
    return value.timestamp()
