"""A deterministic discrete-event simulation of cross-facility XPCS runs.

Three sites with the stage-in, run and stage-out times and the transfer
rates measured in the Balsam experiments (arXiv 2105.06571, REFERENCE
section 10); jobs arrive as in those runs (batches of 16 every 8-16 s). Each
site has a number of nodes; a job stages in (all transfers run at once),
waits for a free node (plus the scheduler delay), runs, and stages out.

Policies:

``round-robin``
    Job ``i`` goes to site ``i mod 3``; no status.
``shortest-backlog``
    The site with the fewest waiting jobs (staging in or queued), if below
    a cap; otherwise the job is held client-side until one is. No status.
``oracle``
    Not a policy: a clairvoyant reference bound (:mod:`deployments.simulate.oracle`)
    that knows every future outage, the exact queue state and the
    simulation's own draws, and puts each job where it completes first
    (greedy earliest completion, never into an outage, never where a job
    would be lost). It shows what was achievable; the real selector never
    uses it.
``ours``
    The real :func:`deployments.select.select_facility`, fed simulated
    status (endpoint online/offline, idle workers, outstanding tasks, the
    planned window) and rates learned by a real :class:`RunHistory`; when a
    site goes down its unfinished jobs fail over through
    :func:`deployments.failover.plan_failover`, and each dataset is
    published once through :meth:`RunHistory.claim_publication`. With
    ``Scenario.defer_planned`` (default) the selector may answer "hold this
    job until the planned window ends" (:attr:`Candidate.start_after`): the
    job is then kept client-side, nothing sent, and decided again at that
    time; runs held for a site count as queued ahead of the next ones.

Scenario ``outage``: one site goes down unannounced mid-run and stays down
(running jobs there die; without failover, the jobs there are lost) and
another has an announced maintenance window (the scheduler starts no job
that would run into it; its status says ``down``, with the window, while in
it). The endpoint status says ``offline`` after
``Scenario.detection_lag_s`` (0 by default).

Metrics per policy: ``median_latency_s`` and ``p95_latency_s`` over all jobs,
a lost job counting as never finishing (``None`` when the quantile falls on
one); ``median_latency_completed_s`` over completed jobs only; throughput
(completed jobs per minute from the first arrival to the last completion);
jobs started in an outage (sent to a site while it was down or in its
window); jobs lost; failovers; publications (must equal completed jobs).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from deployments.simulate.engine import POLICIES, SimJob, Simulator
from deployments.simulate.model import Scenario, scenario, with_nodes
from xpcs_kernel.errors import UsageError

__all__ = ["POLICIES", "SimulationResult", "run_simulation", "simulate"]


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of one policy on one scenario."""

    policy: str
    jobs: int
    completed: int
    lost: int
    started_in_outage: int
    failovers: int
    publications: int
    median_latency_s: float | None
    p95_latency_s: float | None
    median_latency_completed_s: float | None
    throughput_jobs_per_min: float
    per_site: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return dict(vars(self))


def _summarize(sim: Simulator, jobs: list[SimJob]) -> SimulationResult:
    done = [j for j in jobs if j.finished is not None]
    finished = sorted(j.finished - j.arrival for j in done if j.finished is not None)
    # a lost job never yields a result: it counts as an infinite latency
    every = finished + [math.inf] * (len(jobs) - len(done))
    last = max((j.finished for j in done if j.finished is not None), default=0.0)
    span = last - jobs[0].arrival if done else 0.0
    return SimulationResult(
        policy=sim.policy,
        jobs=len(jobs),
        completed=len(done),
        lost=len(jobs) - len(done),
        started_in_outage=sim.started_in_outage,
        failovers=sim.failovers,
        publications=sim.publications,
        median_latency_s=_finite(statistics.median(every)) if every else None,
        p95_latency_s=_finite(_quantile(every, 0.95)),
        median_latency_completed_s=_finite(statistics.median(finished)) if finished else None,
        throughput_jobs_per_min=round(len(done) / span * 60, 2) if span > 0 else 0.0,
        per_site={n: sum(1 for j in done if j.site == n) for n in sim.order},
    )


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 2)


def run_simulation(sc: Scenario, policy: str, *, seed: int = 0) -> SimulationResult:
    """Simulate ``policy`` (one of :data:`POLICIES`) on scenario ``sc``."""
    if policy not in POLICIES:
        raise UsageError(f"unknown policy {policy!r}", argument="policy")
    sim = Simulator(sc, policy, seed)
    return _summarize(sim, sim.run())


def simulate(
    scenario_name: str,
    policies: list[str] | None = None,
    *,
    seed: int = 0,
    nodes: int | None = None,
) -> dict[str, Any]:
    """Run the named scenario (``paper`` or ``outage``) for each policy; JSON-friendly.

    ``nodes`` overrides the node count of every site (the scenario's
    assumption; see :mod:`deployments.simulate.model`). The ratios of ours to
    shortest backlog (``ours_vs_shortest_backlog_median``) and of the
    clairvoyant bound to it (``oracle_vs_shortest_backlog_median``) are given
    both ways: over all jobs (a lost job never finishes) and over completed
    jobs only (suffix ``_completed``).
    """
    sc = with_nodes(scenario(scenario_name), nodes)
    chosen = policies or list(POLICIES)
    results = {p: run_simulation(sc, p, seed=seed).to_dict() for p in chosen}
    out: dict[str, Any] = {"scenario": sc.to_dict(), "seed": seed, "policies": results}
    for name in ("ours", "oracle"):
        if name not in results or "shortest-backlog" not in results:
            continue
        for key, suffix in (
            ("median_latency_s", ""),
            ("median_latency_completed_s", "_completed"),
        ):
            value = results[name][key]
            sb = results["shortest-backlog"][key]
            out[f"{name}_vs_shortest_backlog_median{suffix}"] = (
                round(value / sb, 3) if value and sb else None
            )
    return out
