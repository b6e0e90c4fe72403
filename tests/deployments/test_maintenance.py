"""Maintenance windows from the descriptor, and the calendar probe built on them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deployments._fields import Fields
from deployments.maintenance import parse_maintenance
from deployments.status import CalendarProbe, FacilityState
from xpcs_kernel.errors import ConfigurationError

CHICAGO = ZoneInfo("America/Chicago")


def window(**data: Any):  # type: ignore[no-untyped-def]
    return parse_maintenance(Fields(data, "x.toml", "maintenance[0]"))


def ts(*args: int, tz: Any = CHICAGO) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def test_biweekly_monday_window_in_local_time() -> None:
    w = window(
        description="PM",
        weekday="monday",
        start="09:00",
        duration_hours=8,
        timezone="America/Chicago",
        every_weeks=2,
        anchor="2026-01-05",
    )
    # November 2026 Mondays: 2, 9, 16, 23, 30; 2026-01-05 + 44 weeks is November 9
    found = w.occurrences(ts(2026, 11, 1), ts(2026, 12, 1))
    assert [datetime.fromtimestamp(o.start, CHICAGO).day for o in found] == [9, 23]
    assert all(o.end is not None and o.end - o.start == 8 * 3600 for o in found)
    assert all(o.planned for o in found)
    # 09:00 in Chicago is 15:00 UTC in November (CST)
    assert datetime.fromtimestamp(found[0].start, UTC).hour == 15


def test_window_follows_daylight_saving_time() -> None:
    w = window(
        description="PM",
        weekday="monday",
        start="09:00",
        duration_hours=1,
        timezone="America/Chicago",
    )
    (july,) = w.occurrences(ts(2026, 7, 6), ts(2026, 7, 6, 23))
    assert datetime.fromtimestamp(july.start, UTC).hour == 14  # CDT


def test_window_already_open_is_listed() -> None:
    w = window(
        description="PM", weekday="wednesday", start="08:00", duration_hours=4, timezone="UTC"
    )
    now = ts(2026, 11, 25, 10, tz=UTC)  # a Wednesday, mid-window
    (current,) = w.occurrences(now, now + 3600)
    assert current.start == ts(2026, 11, 25, 8, tz=UTC)


def test_one_off_window() -> None:
    w = window(
        description="power work",
        starts_at="2026-12-01T07:00:00-06:00",
        ends_at="2026-12-02T19:00:00-06:00",
    )
    assert w.occurrences(ts(2026, 11, 1), ts(2026, 11, 30)) == []
    (o,) = w.occurrences(ts(2026, 11, 30), ts(2026, 12, 3))
    assert o.end - o.start == 36 * 3600  # type: ignore[operator]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"weekday": "funday", "start": "09:00", "duration_hours": 1}, "weekday", "not a weekday"),
        ({"weekday": "monday", "start": "9am", "duration_hours": 1}, "start", "not a time"),
        ({"weekday": "monday", "start": "09:00", "duration_hours": 0}, "duration_hours", "range"),
        (
            {"weekday": "monday", "start": "09:00", "duration_hours": 1, "timezone": "Mars/Base"},
            "timezone",
            "unknown time zone",
        ),
        (
            {"weekday": "monday", "start": "09:00", "duration_hours": 1, "every_weeks": 2},
            "anchor",
            "missing",
        ),
        (
            {
                "weekday": "monday",
                "start": "09:00",
                "duration_hours": 1,
                "every_weeks": 2,
                "anchor": "2026-01-06",
            },
            "anchor",
            "is not a monday",
        ),
        (
            {"starts_at": "2026-12-01T07:00:00", "ends_at": "2026-12-01T09:00:00"},
            "starts_at",
            "UTC offset",
        ),
        (
            {"starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T07:00:00Z"},
            "ends_at",
            "after",
        ),
        (
            {"weekday": "monday", "start": "09:00", "duration_hours": 1, "length": 2},
            "length",
            "unknown field",
        ),
    ],
)
def test_invalid_windows(data: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        window(description="x", **data)
    assert info.value.field == f"maintenance[0].{field}"
    assert message in str(info.value)


def test_calendar_probe_down_inside_a_window_and_lists_upcoming() -> None:
    w = window(
        description="PM", weekday="wednesday", start="08:00", duration_hours=4, timezone="UTC"
    )
    now = [ts(2026, 11, 25, 6, tz=UTC)]
    probe = CalendarProbe("polaris", windows=[w], clock=lambda: now[0])
    before = probe.status()
    assert before.state is FacilityState.UP
    assert before.outages[0].start == ts(2026, 11, 25, 8, tz=UTC)
    now[0] = ts(2026, 11, 25, 9, tz=UTC)
    during = probe.status()  # ttl 0: asks again
    assert during.state is FacilityState.DOWN
    assert "in maintenance: PM" in during.detail
