"""Facility states, outages and one status answer: the vocabulary of status.

Kept apart from the probes so that descriptors (maintenance windows) and the
selector can use it without importing any probe.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deployments.errors import StatusUnavailable

__all__ = ["FacilityState", "FacilityStatus", "Outage", "parse_timestamp"]


class FacilityState(enum.Enum):
    """What a status source says about a facility.

    Attributes
    ----------
    UP
        Accepting and running work normally.
    DEGRADED
        Running, but slower or partly unavailable (the selector inflates its
        estimates).
    DOWN
        Not running work (offline endpoint, outage, maintenance): never chosen.
    UNKNOWN
        The source could not be read, answered nonsense, or is stale. Ranked
        after every facility whose state is known.
    """

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outage:
    """A planned or unplanned period when a facility does not run work.

    Times are POSIX timestamps (seconds, UTC); ``end`` is ``None`` when the
    source gives no end (the outage lasts until further notice).
    """

    start: float
    end: float | None
    planned: bool
    description: str = ""

    def overlaps(self, start: float, end: float) -> bool:
        """Whether the outage intersects the interval ``[start, end]``."""
        return self.start <= end and (self.end is None or self.end > start)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (ISO 8601 times)."""
        return {
            "start": _iso(self.start),
            "end": None if self.end is None else _iso(self.end),
            "planned": self.planned,
            "description": self.description,
        }


@dataclass(frozen=True)
class FacilityStatus:
    """One source's answer about one facility.

    ``idle_workers``, ``total_workers`` and ``outstanding_tasks`` come from a
    Globus Compute endpoint and are ``None`` for other sources.
    """

    facility: str
    source: str
    state: FacilityState
    observed_at: float
    detail: str = ""
    outages: tuple[Outage, ...] = ()
    idle_workers: int | None = None
    total_workers: int | None = None
    outstanding_tasks: int | None = None
    sources: tuple[str, ...] = field(default=())

    def age(self, now: float) -> float:
        """Seconds since the answer was observed."""
        return max(0.0, now - self.observed_at)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "facility": self.facility,
            "source": self.source,
            "state": self.state.value,
            "observed_at": _iso(self.observed_at),
            "detail": self.detail,
            "outages": [o.to_dict() for o in self.outages],
            "idle_workers": self.idle_workers,
            "total_workers": self.total_workers,
            "outstanding_tasks": self.outstanding_tasks,
            "sources": list(self.sources),
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def parse_timestamp(value: Any, *, source: str) -> float:
    """Parse an ISO 8601 string (``Z`` allowed; no zone means UTC) or epoch seconds.

    Raises
    ------
    StatusUnavailable
        When ``value`` is neither.
    """
    if isinstance(value, bool):
        raise StatusUnavailable(f"not a timestamp: {value!r}", source=source)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise StatusUnavailable(f"not a timestamp: {value!r}", source=source) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise StatusUnavailable(f"not a timestamp: {value!r}", source=source)
