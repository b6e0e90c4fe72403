"""Choosing the facility for one run: a pure function of descriptors, statuses and rates.

For each candidate the selector estimates the time to result::

    stage-in  = transfer overhead + MB in / learned transfer rate   (0 when the data is local)
    queue     = from idle workers and outstanding tasks when the endpoint reports them,
                else the learned queue delay
    compute   = frames x pixels / learned throughput   (x degraded_factor when degraded)
    stage-out = stage-out overhead (learned; the transfer overhead before any
                run) + MB out / learned transfer rate

It excludes facilities that are down or offline, lack a capability, refuse
the path, were already tried, or have an outage (planned or not) starting
before the estimated completion (with a safety margin). Eligible facilities
are ranked by known state first (``unknown`` after every known one), then
estimated total, then data locality, then name. Every row carries its
reasons, so the decision explains itself.

Deferred submission (``SelectionPolicy.defer_planned``, off by default): a
facility whose only obstacle is a *planned* window with a known end is not
excluded but offered as a deferred candidate: the run is held client-side
(nothing is sent, not even the stage-in) until ``Candidate.start_after`` =
window end + ``outage_guard_s``, and its estimate adds that hold and counts
the runs already held for the same facility as queued ahead. It competes on
the same estimated total, so it wins only when waiting for the window beats
queueing elsewhere. A caller that enables it must honour ``start_after``
(re-deciding then); a run is never sent into a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deployments.errors import NoFacilityAvailable
from deployments.history import LearnedRates
from deployments.model import Deployment
from deployments.state import FacilityState, FacilityStatus, Outage
from xpcs_kernel.errors import UsageError

__all__ = [
    "Candidate",
    "Decision",
    "Estimate",
    "JobRequest",
    "SelectionPolicy",
    "rank_facilities",
    "select_facility",
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
    memory_gb: float = 0.0
    min_kernel_version: str | None = None
    allow_local: bool = True
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


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _queue(
    d: Deployment,
    status: FacilityStatus | None,
    rates: LearnedRates,
    compute_s: float,
    stage_in_s: float,
    inflight: int,
) -> tuple[float, str]:
    if status is None or status.total_workers is None:
        return rates.dispatch_latency_s + rates.queue_delay_s, "queue from history"
    idle = status.idle_workers or 0
    total = status.total_workers
    outstanding = status.outstanding_tasks or 0
    pending = max(0, outstanding - (total - idle)) + inflight
    why = f"{idle} idle worker(s), {outstanding} outstanding task(s)"
    if inflight:
        why += f", {inflight} of ours staging in"
    if idle > pending:
        return rates.dispatch_latency_s, why
    if total == 0:  # no block running: a batch job must start first
        backlog = rates.queue_delay_s + pending / d.capabilities.slots * compute_s
    else:
        backlog = (pending - idle + 1) / total * compute_s
        if total < d.capabilities.slots:  # the endpoint may add a block instead
            backlog = min(backlog, rates.queue_delay_s)
    # the backlog drains while our data stages in
    return rates.dispatch_latency_s + max(0.0, backlog - stage_in_s), why


def _estimate(
    d: Deployment,
    req: JobRequest,
    status: FacilityStatus | None,
    rates: LearnedRates,
    policy: SelectionPolicy,
    inflight: int,
    *,
    local: bool,
    degraded: bool,
    hold_s: float = 0.0,
) -> tuple[Estimate, list[str]]:
    reasons: list[str] = []
    mb_in = req.bytes_in / 1e6
    mb_out = (req.bytes_in * 0.01 if req.bytes_out is None else req.bytes_out) / 1e6
    rate = rates.transfer_rate_mb_s
    stage_in = 0.0 if local else rates.transfer_overhead_s + mb_in / rate
    streams = d.capabilities.transfer_streams
    if not local and streams is not None and inflight >= streams:
        # our runs already staging in hold every stream: wait for one to free
        stage_in += (inflight + 1 - streams) / streams * stage_in
        reasons.append(f"{inflight} transfers in flight on {streams} streams")
    compute = req.frames * req.pixels / 1e6 / rates.throughput_mpix_s
    queue, why_queue = _queue(d, status, rates, compute, stage_in, inflight)
    if degraded:
        compute *= policy.degraded_factor
        queue *= policy.degraded_factor
        reasons.append("degraded")
    estimate = Estimate(
        stage_in, queue, compute, rates.stage_out_overhead + mb_out / rate, hold_s=hold_s
    )
    if local:
        reasons.append("data local")
    reasons.append(why_queue)
    return estimate, reasons


def _after_window(status: FacilityStatus, at: float) -> FacilityStatus:
    """The status assumed once a planned window is over.

    Every worker is idle (what runs now ends before the window, nothing runs
    through it) and the tasks queued now are still waiting, ahead of ours.
    """
    if status.total_workers is None:
        return replace(status, state=FacilityState.UP, observed_at=at)
    return replace(
        status,
        state=FacilityState.UP,
        observed_at=at,
        idle_workers=status.total_workers,
        outstanding_tasks=max(
            0,
            (status.outstanding_tasks or 0) - status.total_workers + (status.idle_workers or 0),
        ),
    )


def _blocking_outage(
    status: FacilityStatus, start: float, estimate: Estimate, policy: SelectionPolicy
) -> Outage | None:
    """The first outage that intersects ``start`` .. the guarded estimated completion."""
    work = estimate.total_s - estimate.hold_s
    finish = start + work * policy.completion_margin + policy.outage_guard_s
    return next(
        (o for o in sorted(status.outages, key=lambda o: o.start) if o.overlaps(start, finish)),
        None,
    )


def _candidate(
    d: Deployment,
    req: JobRequest,
    status: FacilityStatus | None,
    rates: LearnedRates,
    now: float,
    policy: SelectionPolicy,
    inflight: int,
) -> Candidate:
    reasons: list[str] = []
    excluded: list[str] = []
    state = FacilityState.UNKNOWN if status is None else status.state
    if status is None:
        reasons.append("no status")
    elif status.age(now) > policy.max_status_age_s:
        state = FacilityState.UNKNOWN
        reasons.append(f"status stale ({status.age(now):.0f} s old)")
    if d.engine == "local":
        local = req.source_collection is None
    else:
        local = (
            req.source_collection is not None
            and d.staging is not None
            and d.staging.id == req.source_collection
        )
    degraded = state is FacilityState.DEGRADED
    notes = list(reasons)
    estimate, why = _estimate(
        d, req, status, rates, policy, inflight, local=local, degraded=degraded
    )
    reasons.extend(why)
    # down only because of a planned window with a known end: deferrable
    in_window = (
        status is not None
        and policy.defer_planned
        and any(o.planned and o.end is not None and o.start <= now < o.end for o in status.outages)
    )

    if d.name in req.exclude:
        excluded.append("already tried for this dataset")
    if d.engine == "local" and not req.allow_local:
        excluded.append("local runs not allowed")
    if state is FacilityState.DOWN and not in_window:
        excluded.append(f"down: {status.detail if status else ''}")
    if state is FacilityState.UNKNOWN and policy.exclude_unknown:
        excluded.append("status unknown")
    if req.needs_gpu and not d.capabilities.gpu:
        excluded.append("no GPU")
    if req.memory_gb > d.capabilities.memory_gb:
        excluded.append(f"needs {req.memory_gb:g} GB memory, has {d.capabilities.memory_gb:g}")
    if req.min_kernel_version is not None and version_tuple(
        d.capabilities.kernel_version
    ) < version_tuple(req.min_kernel_version):
        excluded.append(
            f"kernel {d.capabilities.kernel_version} older than {req.min_kernel_version}"
        )
    if req.source_path is not None and not d.allows_path(req.source_path):
        excluded.append(f"path {req.source_path} outside the allowed roots")
    start_after: float | None = None
    if status is not None:
        start = now
        for _ in range(len(status.outages) + 1):
            outage = _blocking_outage(status, start, estimate, policy)
            if outage is None:
                break
            kind = "planned" if outage.planned else "unplanned"
            end = "until further notice" if outage.end is None else f"to {_when(outage.end)}"
            what = f"{kind} outage {outage.description!r} from {_when(outage.start)} {end}"
            if policy.defer_planned and outage.planned and outage.end is not None:
                # hold the run client-side until the window is over, then send it
                start = max(start, outage.end + policy.outage_guard_s)
                degraded = False  # assumed back to normal after the window
                estimate, why = _estimate(
                    d,
                    req,
                    _after_window(status, start),
                    rates,
                    policy,
                    inflight,
                    local=local,
                    degraded=degraded,
                    hold_s=start - now,
                )
                start_after = start
                continue
            excluded.append(
                f"{what} overlaps the estimated completion {_when(start + estimate.total_s)}"
            )
            break
        if start_after is not None and not excluded:
            reasons = [
                *notes,
                f"held client-side until {_when(start_after)} (after a planned window), "
                f"then sent; {inflight} run(s) of ours already sent or held",
                *why,
            ]
    if state is FacilityState.UNKNOWN and not excluded:
        reasons.append("ranked after facilities with known status")
    return Candidate(
        facility=d.name,
        eligible=not excluded,
        state=state,
        estimate=estimate,
        data_local=local,
        reasons=tuple(excluded + reasons),
        start_after=None if excluded else start_after,
    )


def rank_facilities(
    request: JobRequest,
    deployments: Iterable[Deployment],
    statuses: Mapping[str, FacilityStatus],
    rates: Mapping[str, LearnedRates],
    *,
    now: float,
    policy: SelectionPolicy | None = None,
    inflight: Mapping[str, int] | None = None,
) -> Decision:
    """The ranked decision table (possibly with no eligible facility).

    Parameters
    ----------
    request
        What the run needs.
    deployments
        The candidate descriptors.
    statuses
        Combined status per deployment name (missing means unknown).
    rates
        Learned rates per deployment name (missing means the priors).
    now
        The current POSIX time (injected: the function reads no clock).
    policy
        Selector knobs.
    inflight
        Per deployment, runs this client has sent there that its endpoint
        status does not show yet (still staging in); counted as queued ahead.
    """
    pol = policy or SelectionPolicy()
    sent = inflight or {}
    rows = [
        _candidate(
            d,
            request,
            statuses.get(d.name),
            rates.get(d.name) or LearnedRates.from_priors(d),
            now,
            pol,
            sent.get(d.name, 0),
        )
        for d in deployments
    ]

    def key(c: Candidate) -> tuple[int, int, float, int, str]:
        return (
            0 if c.eligible else 1,
            1 if c.state is FacilityState.UNKNOWN else 0,
            round(c.estimate.total_s, 3),
            0 if c.data_local else 1,
            c.facility,
        )

    rows.sort(key=key)
    ranked = tuple(replace(c, rank=i + 1) if c.eligible else c for i, c in enumerate(rows))
    return Decision(candidates=ranked, decided_at=now, request=request, policy=pol)


def select_facility(
    request: JobRequest,
    deployments: Iterable[Deployment],
    statuses: Mapping[str, FacilityStatus],
    rates: Mapping[str, LearnedRates],
    *,
    now: float,
    policy: SelectionPolicy | None = None,
    inflight: Mapping[str, int] | None = None,
) -> Decision:
    """Like :func:`rank_facilities`, but there must be a facility to choose.

    Raises
    ------
    NoFacilityAvailable
        When every candidate is excluded; it carries the decision table.
    """
    decision = rank_facilities(
        request, deployments, statuses, rates, now=now, policy=policy, inflight=inflight
    )
    if decision.chosen is None:
        raise NoFacilityAvailable(
            f"no facility can run {request.dataset!r}", table=decision.table()
        )
    return decision
