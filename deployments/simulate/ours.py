"""``ours`` in :mod:`deployments.simulate.run`: simulated status, the real selector, real failover.

The simulated endpoint and facility status (what the probes would report),
the call into the real :func:`deployments.select.rank_facilities` with the
rates a real :class:`~deployments.history.RunHistory` learned from the
simulated runs, and failover through the real
:func:`deployments.failover.plan_failover`.
"""

from __future__ import annotations

from deployments.failover import (
    FailoverPolicy,
    classify_failure,
    failover_request,
    plan_failover,
    publication_key,
    record_failure,
)
from deployments.select import Decision, JobRequest, rank_facilities
from deployments.simulate.world import SimJob, SimWorld
from deployments.state import FacilityState, FacilityStatus, Outage

__all__ = ["decide", "fail_over", "simulated_status"]


def simulated_status(sim: SimWorld, site: str) -> FacilityStatus:
    """The simulated combined status of ``site`` (what the probes would report)."""
    s = sim.sites[site]
    lag = sim.sc.detection_lag_s
    detected = sim.down_at[site] + lag <= sim.now < sim.up_at[site] + lag
    outages = (
        () if s.maintenance is None else (Outage(*s.maintenance, True, "planned maintenance"),)
    )
    if detected:
        return FacilityStatus(
            site, "simulation", FacilityState.DOWN, sim.now, "endpoint offline", outages
        )
    busy = s.nodes if sim.is_down(site) else sim.running[site]
    queued = len(sim.queue[site])
    in_window = s.maintenance is not None and s.maintenance[0] <= sim.now < s.maintenance[1]
    return FacilityStatus(
        site,
        "simulation",
        FacilityState.DOWN if in_window else FacilityState.UP,
        sim.now,
        "planned maintenance" if in_window else "endpoint online",
        outages,
        idle_workers=s.nodes - busy,
        total_workers=s.nodes,
        outstanding_tasks=busy + queued,
    )


def decide(sim: SimWorld, job: SimJob) -> Decision:
    """The real selector's decision for ``job`` now."""
    request = JobRequest(
        dataset=f"job{job.index}",
        bytes_in=int(sim.sc.dataset_mb * 1e6),
        frames=sim.sc.frames,
        pixels=sim.sc.pixels,
        bytes_out=int(sim.sc.result_mb * 1e6),
        allow_local=False,
    )
    if job.tried:
        request = failover_request(request, job.tried)
    statuses = {n: simulated_status(sim, n) for n in sim.order}
    rates = {n: sim.history.learned_rates(d) for n, d in sim.deployments.items()}
    # ours in flight: staging in (not in the endpoint status yet) or held for a window
    inflight = {n: sim.staging[n] + sim.deferred[n] for n in sim.order}
    return rank_facilities(
        request,
        sim.deployments.values(),
        statuses,
        rates,
        now=sim.now,
        policy=sim.selection,
        inflight=inflight,
    )


def fail_over(sim: SimWorld, job: SimJob, site: str) -> None:
    """``site`` is reported offline: take ``job`` off it and relaunch it where the plan says."""
    if job.phase == "staging":
        sim.staging[site] -= 1
    elif job.phase == "queued":
        sim.queue[site].remove(job)
    job.token += 1
    failure = classify_failure({"code": "ActionUnableToRun", "description": "endpoint offline"})
    fresh = decide(sim, job)
    published = sim.history.publication(publication_key(f"job{job.index}"))
    plan = plan_failover(
        fresh,
        failure,
        tried=job.tried,
        attempt=job.attempt,
        published_by=None if published is None else published[0],
    )
    record_failure(sim.history, job.run_id, plan, at=sim.now)
    if plan.relaunch and plan.facility is not None:
        sim.failovers += 1
        job.decision = fresh
        sim.send(job, plan.facility)
    elif failure.retryable and job.attempt < FailoverPolicy().max_attempts:
        job.phase = "held"  # retried when capacity frees up
        sim.held.append(job)
    else:
        job.phase = "lost"
