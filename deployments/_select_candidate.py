"""One row of the selector's table: a facility's estimate, exclusions and reasons.

:func:`candidate_for` estimates the phases of the run on one facility (queue
from the endpoint's workers and tasks, or from history), checks what excludes
it (state, capabilities, allowed paths, outages before the guarded
completion) and, when the policy allows, defers it past a planned window.
The model is described in :mod:`deployments.select`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from deployments.history import LearnedRates
from deployments.model import Deployment
from deployments.select_types import (
    Candidate,
    Estimate,
    JobRequest,
    SelectionPolicy,
    version_tuple,
)
from deployments.state import FacilityState, FacilityStatus, Outage

__all__ = ["candidate_for"]


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


def candidate_for(
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
    if req.live and not d.capabilities.reads_beamline_storage:
        excluded.append("live run: its Compute endpoint cannot read the beamline storage")
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
