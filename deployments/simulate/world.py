"""What the simulated policies see: the jobs and the state of the simulated world.

:class:`SimWorld` holds the scenario's sites, the jobs with their random draws
(common random numbers: the same for every policy), queues, outages and the run
history; :class:`~deployments.simulate.engine.Simulator` adds the event loop.
Our policy (:mod:`deployments.simulate.ours`) and the oracle bound
(:mod:`deployments.simulate.oracle`) read this state and hand a job back with
:meth:`SimWorld.send`, so neither imports the engine that calls them.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from deployments.failover import FailoverPolicy
from deployments.history import RunHistory
from deployments.select import Decision, SelectionPolicy
from deployments.simulate.model import Scenario, site_deployment

__all__ = ["SimJob", "SimWorld"]


@dataclass
class SimJob:
    """One simulated dataset and where it stands."""

    index: int
    arrival: float
    site: str | None = None
    phase: str = "new"  # held | deferred | staging | queued | running | staging-out | done | lost
    attempt: int = 0
    tried: list[str] = field(default_factory=list)
    decision: Decision | None = None
    run_id: str = ""
    started_site_at: float = 0.0
    staged_at: float = 0.0
    run_started: float = 0.0
    ran_at: float = 0.0
    finished: float | None = None
    token: int = 0  # bumps on failover: stale events are ignored
    stage_end: float = 0.0  # when the stage-in under way ends
    run_end: float = 0.0  # when the run under way ends
    #: ``oracle`` only: (site, time) it is held client-side for
    hold: tuple[str, float] | None = None


def _lognormal(rng: random.Random, mean: float, std: float) -> float:
    sigma2 = math.log(1.0 + (std / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


class SimWorld(ABC):
    """The state of one simulation run (one policy, one scenario)."""

    def __init__(self, sc: Scenario, policy: str, seed: int) -> None:
        self.sc = sc
        self.policy = policy
        self.sites = {s.name: s for s in sc.sites}
        self.order = [s.name for s in sc.sites]
        self.deployments = {s.name: site_deployment(s, sc) for s in sc.sites}
        rng = random.Random(seed)
        self.jobs: list[SimJob] = []
        t = 0.0
        for _ in range(sc.batches):
            self.jobs.extend(SimJob(len(self.jobs), t) for _ in range(sc.batch_size))
            t += rng.uniform(*sc.batch_interval_s)
        # common random numbers: the same draws for every policy
        self.draws = {
            (j.index, s.name, k): (
                max(0.15 * s.rate_mb_s, _lognormal(rng, s.rate_mb_s, s.rate_std_mb_s)),
                rng.lognormvariate(0.0, 0.08),
                rng.lognormvariate(0.0, 0.15),
            )
            for j in self.jobs
            for k in range(FailoverPolicy().max_attempts)
            for s in sc.sites
        }
        self.events: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.now = 0.0
        self.running = dict.fromkeys(self.order, 0)
        self.queue: dict[str, list[SimJob]] = {n: [] for n in self.order}
        self.staging = dict.fromkeys(self.order, 0)
        self.transferring = dict.fromkeys(self.order, 0)
        self.transfer_queue: dict[str, list[tuple[SimJob, int, float]]] = {
            n: [] for n in self.order
        }
        self.down_at = dict.fromkeys(self.order, math.inf)
        self.up_at = dict.fromkeys(self.order, math.inf)
        self.held: list[SimJob] = []
        #: jobs held client-side until a planned window ends (deferred submission)
        self.deferred = dict.fromkeys(self.order, 0)
        self.selection = SelectionPolicy(defer_planned=sc.defer_planned)
        self.rr = 0
        self.started_in_outage = 0
        self.failovers = 0
        self.history = RunHistory(":memory:")
        self.publications = 0

    def in_outage(self, site: str, t: float) -> bool:
        """Whether ``site`` is down or in its maintenance window at ``t``."""
        s = self.sites[site]
        in_window = s.maintenance is not None and s.maintenance[0] <= t < s.maintenance[1]
        return self.down_at[site] <= t < self.up_at[site] or in_window

    def is_down(self, site: str) -> bool:
        """Whether ``site`` is down now (unannounced outage)."""
        return self.down_at[site] <= self.now < self.up_at[site]

    @abstractmethod
    def send(self, job: SimJob, site: str) -> None:
        """Send ``job`` to ``site`` now (stage in, then queue)."""
