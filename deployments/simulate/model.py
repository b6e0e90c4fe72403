"""Scenarios for :mod:`deployments.simulate.run`: sites measured in the Balsam experiments.

Per site (REFERENCE section 10, medians in seconds; APS as the source):

========  ========  =====  =========  ===================
site      stage-in  run    stage-out  transfer MB/s
========  ========  =====  =========  ===================
theta     25.6      102.0  10.2       196 +- 167 (ALCF)
summit    12.5      107.5  11.7       360 +- 276 (OLCF)
cori      20.8      50.8   11.4       311 +- 210 (NERSC)
========  ========  =====  =========  ===================

The scheduler delay was 1.4-2.6 % of the total: 2.5 s here. Jobs arrive in
batches of 16 every 8-16 s (uniform), 20 batches. The node counts are this
simulation's assumption: the figures we have give per-job times, not the
allocations (the paper's setup section could not be consulted). 64 nodes
per site is enough for each site to take its round-robin share of ~80
jobs/min without queueing, which matches the measured medians (the total
is about the sum of the phases, the scheduler delay small). Read the other
way, the measured per-site throughputs (15-18.5 jobs/min) would fit ~30
nodes per site if those sites had been saturated. Results depend strongly
on this: ``with_nodes`` (``xpcs-flows simulate --nodes N``) sets it, and
``deployments/README.md`` gives the results from 24 to 96 nodes.

Scenario ``outage``: cori, the fastest site, goes down unannounced at
120 s (mid-arrivals) and stays down; theta has an announced maintenance
window from 150 s to 750 s.

By default stage-in transfers to a site do not limit each other (each runs
at a rate drawn from the measured distribution, as measured under the
Balsam load); ``Scenario.transfer_streams`` caps how many run at once per
site (the others wait), which makes policies that concentrate jobs on one
site pay for it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from deployments.model import Capabilities, ComputeSpec, Deployment, Priors
from xpcs_kernel.errors import UsageError

__all__ = [
    "PAPER_SITES",
    "SCENARIOS",
    "Scenario",
    "SiteSpec",
    "scenario",
    "site_deployment",
    "with_nodes",
]


@dataclass(frozen=True)
class SiteSpec:
    """One simulated site.

    ``down_at`` is when it goes down unannounced, for ``down_for`` seconds;
    ``maintenance`` is an announced ``(start, end)`` window, seconds from the start.
    """

    name: str
    facility: str
    stage_in_s: float
    run_s: float
    stage_out_s: float
    rate_mb_s: float
    rate_std_mb_s: float
    nodes: int
    down_at: float | None = None
    down_for: float = float("inf")
    maintenance: tuple[float, float] | None = None


@dataclass(frozen=True)
class Scenario:
    """A simulated campaign: sites, arrivals, job size and status behaviour."""

    name: str
    sites: tuple[SiteSpec, ...]
    batches: int = 20
    batch_size: int = 16
    batch_interval_s: tuple[float, float] = (8.0, 16.0)
    dataset_mb: float = 2000.0
    result_mb: float = 100.0
    frames: int = 10_000
    pixels: int = 1_000_000
    scheduler_delay_s: float = 2.5
    backlog_cap: int = 32
    #: seconds between a site going down and its endpoint status saying so
    detection_lag_s: float = 0.0
    #: concurrent stage-in transfers per site (``None``: unlimited, each at the measured rate)
    transfer_streams: int | None = None
    #: ``ours`` may hold a job client-side until a planned window ends (deferred submission)
    defer_planned: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        d = dict(vars(self))
        d["sites"] = [dict(vars(s)) for s in self.sites]
        return d


PAPER_SITES = (
    SiteSpec("theta", "ALCF", 25.6, 102.0, 10.2, 196.0, 167.0, 64),
    SiteSpec("summit", "OLCF", 12.5, 107.5, 11.7, 360.0, 276.0, 64),
    SiteSpec("cori", "NERSC", 20.8, 50.8, 11.4, 311.0, 210.0, 64),
)


def _outage_sites() -> tuple[SiteSpec, ...]:
    theta, summit, cori = PAPER_SITES
    return (
        replace(theta, maintenance=(150.0, 750.0)),
        summit,
        replace(cori, down_at=120.0),
    )


SCENARIOS = {
    "paper": Scenario("paper", PAPER_SITES),
    "outage": Scenario("outage", _outage_sites()),
}


def scenario(name: str) -> Scenario:
    """The scenario called ``name``."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"unknown scenario {name!r} (choose from {', '.join(SCENARIOS)})", argument="scenario"
        ) from None


def with_nodes(sc: Scenario, nodes: int | None) -> Scenario:
    """``sc`` with ``nodes`` nodes at every site (``None``: unchanged)."""
    if nodes is None:
        return sc
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise UsageError(f"must be an integer >= 1, not {nodes!r}", argument="nodes")
    return replace(sc, sites=tuple(replace(s, nodes=nodes) for s in sc.sites))


def site_deployment(site: SiteSpec, sc: Scenario) -> Deployment:
    """The descriptor the selector sees for a simulated site (priors = measured medians)."""
    overhead = max(0.5, site.stage_in_s - sc.dataset_mb / site.rate_mb_s)
    return Deployment(
        name=site.name,
        facility=site.facility,
        description=f"simulated {site.name}",
        engine="globus",
        compute=ComputeSpec(str(uuid.uuid5(uuid.NAMESPACE_URL, site.name)), None, None, 60, 1),
        source=None,
        staging=None,
        publication=None,
        search_index=None,
        allowed_roots=("/",),
        capabilities=Capabilities(
            gpu=True,
            memory_gb=256,
            kernel_version="0.1.0",
            slots=site.nodes,
            transfer_streams=sc.transfer_streams,
        ),
        status_sources=(),
        maintenance=(),
        priors=Priors(
            transfer_rate_mb_s=site.rate_mb_s,
            transfer_overhead_s=overhead,
            queue_delay_s=sc.scheduler_delay_s,
            dispatch_latency_s=sc.scheduler_delay_s,
            throughput_mpix_s=sc.frames * sc.pixels / 1e6 / site.run_s,
        ),
        origin="<simulation>",
    )
