"""The selector's vocabulary: the request, its knobs, the estimates and the decision.

:class:`JobRequest` (what one run needs) and :class:`SelectionPolicy` go in;
a :class:`Decision` of :class:`Candidate` rows, each with its
:class:`Estimate`, comes out (see :mod:`deployments.select`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from deployments.state import FacilityState
from xpcs_kernel.errors import UsageError

__all__ = [
    "Candidate",
    "Decision",
    "Estimate",
    "JobRequest",
    "SelectionPolicy",
    "version_tuple",
]


def version_tuple(text: str) -> tuple[int, ...]:
    """``"0.10.2"`` -> ``(0, 10, 2)``; raises ``ValueError`` for other text."""
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class JobRequest:
    """What one run needs.

    ``bytes_out`` defaults to 1 % of ``bytes_in`` (results are small);
    ``source_collection``/``source_path`` say where the raw data are (for
    locality and allowed roots); ``exclude`` lists facilities already tried.

    Raises
    ------
    UsageError
        For negative sizes, no frames or pixels, or an unreadable version.
    """

    dataset: str
    bytes_in: int
    frames: int
    pixels: int
    bytes_out: int | None = None
    source_collection: str | None = None
    source_path: str | None = None
    needs_gpu: bool = False
    backend: str = "numba"  # the kernel backend: "torch" runs are GPU runs where there are GPUs
    memory_gb: float = 0.0
    min_kernel_version: str | None = None
    allow_local: bool = True
    live: bool = False  # follows the file while it is written: needs reads_beamline_storage
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name, low in (("bytes_in", 0), ("frames", 1), ("pixels", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UsageError(f"must be an integer >= {low}, not {value!r}", argument=name)
        if self.bytes_out is not None and self.bytes_out < 0:
            raise UsageError(f"must be >= 0, not {self.bytes_out!r}", argument="bytes_out")
        if self.memory_gb < 0:
            raise UsageError(f"must be >= 0, not {self.memory_gb!r}", argument="memory_gb")
        if self.min_kernel_version is not None:
            try:
                version_tuple(self.min_kernel_version)
            except ValueError:
                raise UsageError(
                    f"not a version like 0.3.1: {self.min_kernel_version!r}",
                    argument="min_kernel_version",
                ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        d = dict(vars(self))
        d["exclude"] = sorted(self.exclude)
        return d


@dataclass(frozen=True)
class SelectionPolicy:
    """Knobs of the selector.

    Attributes
    ----------
    max_status_age_s
        Status older than this is treated as ``unknown`` (stale).
    completion_margin
        The estimated completion is stretched by this factor before checking
        for outages ...
    outage_guard_s
        ... and pushed out by this many seconds.
    degraded_factor
        Queue and compute estimates are multiplied by this on a degraded facility.
    exclude_unknown
        Exclude facilities whose state is unknown instead of ranking them last.
    defer_planned
        Offer a facility in (or about to enter) a planned window with a known
        end as a deferred candidate, held client-side until the window ends
        plus ``outage_guard_s`` (see the module docstring). Off by default:
        only callers that honour ``Candidate.start_after`` may enable it.
    """

    max_status_age_s: float = 600.0
    completion_margin: float = 1.25
    outage_guard_s: float = 60.0
    degraded_factor: float = 1.5
    exclude_unknown: bool = False
    defer_planned: bool = False


@dataclass(frozen=True)
class Estimate:
    """Estimated seconds of each phase (``hold_s``: held client-side before sending)."""

    stage_in_s: float
    queue_s: float
    compute_s: float
    stage_out_s: float
    hold_s: float = 0.0

    @property
    def total_s(self) -> float:
        """Estimated time to result."""
        return self.hold_s + self.stage_in_s + self.queue_s + self.compute_s + self.stage_out_s

    def to_dict(self) -> dict[str, float]:
        """A JSON-friendly form (seconds, rounded to ms)."""
        return {
            "hold_s": round(self.hold_s, 3),
            "stage_in_s": round(self.stage_in_s, 3),
            "queue_s": round(self.queue_s, 3),
            "compute_s": round(self.compute_s, 3),
            "stage_out_s": round(self.stage_out_s, 3),
            "total_s": round(self.total_s, 3),
        }


@dataclass(frozen=True)
class Candidate:
    """One row of the decision table.

    ``start_after`` (POSIX time) is set on a deferred candidate: the run must
    be held client-side, and nothing sent to the facility, until then.
    """

    facility: str
    eligible: bool
    state: FacilityState
    estimate: Estimate
    data_local: bool
    reasons: tuple[str, ...]
    rank: int | None = None
    start_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "facility": self.facility,
            "rank": self.rank,
            "eligible": self.eligible,
            "state": self.state.value,
            "data_local": self.data_local,
            "estimate": self.estimate.to_dict(),
            "start_after": None
            if self.start_after is None
            else datetime.fromtimestamp(self.start_after, UTC).isoformat(timespec="seconds"),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Decision:
    """The ranked table: eligible candidates by rank, then the excluded ones."""

    candidates: tuple[Candidate, ...]
    decided_at: float
    request: JobRequest
    policy: SelectionPolicy = field(default_factory=SelectionPolicy)

    @property
    def ranked(self) -> tuple[Candidate, ...]:
        """The eligible candidates, best first."""
        return tuple(c for c in self.candidates if c.eligible)

    @property
    def chosen(self) -> str | None:
        """The best eligible facility, or ``None``."""
        return self.ranked[0].facility if self.ranked else None

    @property
    def start_after(self) -> float | None:
        """When the chosen run may be sent (``None``: now); see :attr:`Candidate.start_after`."""
        return self.ranked[0].start_after if self.ranked else None

    def next_after(self, tried: Iterable[str]) -> Candidate | None:
        """The best eligible candidate not in ``tried`` (for failover)."""
        done = set(tried)
        return next((c for c in self.ranked if c.facility not in done), None)

    def table(self) -> list[dict[str, Any]]:
        """The rows as JSON-friendly dicts."""
        return [c.to_dict() for c in self.candidates]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, stored with the run."""
        return {
            "chosen": self.chosen,
            "start_after": None
            if self.start_after is None
            else datetime.fromtimestamp(self.start_after, UTC).isoformat(timespec="seconds"),
            "decided_at": datetime.fromtimestamp(self.decided_at, UTC).isoformat(
                timespec="seconds"
            ),
            "request": self.request.to_dict(),
            "candidates": self.table(),
        }
