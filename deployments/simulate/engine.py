"""The event loop of :mod:`deployments.simulate.run` (one policy, one scenario).

``ours`` sees the simulation through :mod:`deployments.simulate.ours` (status,
the real selector, failover); the ``oracle`` bound is :mod:`deployments.simulate.oracle`.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from deployments.failover import publication_key
from deployments.history import RunTimings
from deployments.select import Decision
from deployments.simulate.oracle import pick_oracle
from deployments.simulate.ours import decide, fail_over, simulated_status
from deployments.simulate.world import SimJob, SimWorld
from deployments.state import FacilityStatus

__all__ = ["POLICIES", "SimJob", "Simulator"]

#: ``oracle`` is a clairvoyant reference bound (:mod:`deployments.simulate.oracle`), not a policy
POLICIES = ("round-robin", "shortest-backlog", "ours", "oracle")


class Simulator(SimWorld):
    """Runs one policy through one scenario; :meth:`run` returns the jobs."""

    # -- events -----------------------------------------------------------------
    def push(self, t: float, kind: str, payload: Any) -> None:
        """Schedule an event."""
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, payload))

    def run(self) -> list[SimJob]:
        """Run every event; returns the jobs with their outcomes."""
        for job in self.jobs:
            self.push(job.arrival, "arrive", job)
        for s in self.sc.sites:
            if s.down_at is not None:
                self.push(s.down_at, "down", s.name)
                self.push(s.down_at + self.sc.detection_lag_s, "detect", s.name)
                if math.isfinite(s.down_for):
                    self.push(s.down_at + s.down_for, "up", s.name)
            if s.maintenance is not None:
                self.push(s.maintenance[1], "maintenance-end", s.name)
        while self.events:
            self.now, _, kind, payload = heapq.heappop(self.events)
            getattr(self, "on_" + kind.replace("-", "_"))(payload)
        self.history.close()
        return self.jobs

    def on_arrive(self, job: SimJob) -> None:
        """A dataset arrives: place it."""
        self.dispatch(job)

    def choose(self, job: SimJob) -> str | None:
        """The site the policy picks for ``job`` now, or ``None`` to hold it."""
        if self.policy == "round-robin":
            return self.pick_rr(job)
        if self.policy == "shortest-backlog":
            return self.pick_sb(job)
        if self.policy == "oracle":
            return pick_oracle(self, job)
        decision = self.decide(job)
        if decision.chosen is not None:
            job.decision = decision
        return decision.chosen

    def dispatch(self, job: SimJob) -> None:
        """Place ``job`` or hold it client-side."""
        site = self.choose(job)
        if site is None:
            job.phase = "held"
            self.held.append(job)
        else:
            self.send(job, site)

    def send(self, job: SimJob, site: str) -> None:
        """Launch ``job`` on ``site`` now, or defer it when the decision says so."""
        when = self.start_after(job, site)
        if when is not None and when > self.now:
            job.phase = "deferred"  # held client-side: nothing is sent yet
            self.deferred[site] += 1
            self.push(when, "release", (job, job.token, site))
        else:
            self.launch(job, site)

    def start_after(self, job: SimJob, site: str) -> float | None:
        """When the decision lets ``job`` be sent to ``site`` (``None``: now)."""
        if self.policy == "oracle":
            return job.hold[1] if job.hold is not None and job.hold[0] == site else None
        if job.decision is None:
            return None
        row = next((c for c in job.decision.ranked if c.facility == site), None)
        return None if row is None else row.start_after

    def on_release(self, item: tuple[SimJob, int, str]) -> None:
        """A deferred job's wait is over: decide again with fresh status and send it."""
        job, token, site = item
        if token != job.token or job.phase != "deferred":
            return
        self.deferred[site] -= 1
        self.dispatch(job)

    def launch(self, job: SimJob, site: str) -> None:
        """Start ``job`` on ``site``: stage-in begins."""
        if self.in_outage(site, self.now):
            self.started_in_outage += 1
        job.site = site
        job.attempt += 1
        job.tried.append(site)
        job.phase = "staging"
        job.token += 1
        job.started_site_at = self.now
        job.run_id = f"job{job.index}-a{job.attempt}"
        self.staging[site] += 1
        rate, _, _ = self.draws[(job.index, site, job.attempt - 1)]
        overhead = self.deployments[site].priors.transfer_overhead_s
        if self.policy == "ours":
            self.history.record_start(
                job.run_id,
                dataset=f"job{job.index}",
                facility=site,
                started_at=self.now,
                attempt=job.attempt,
                failover_from=f"job{job.index}-a{job.attempt - 1}" if job.attempt > 1 else None,
                decision=None if job.decision is None else job.decision.to_dict(),
                bytes_in=int(self.sc.dataset_mb * 1e6),
                frames=self.sc.frames,
                pixels=self.sc.pixels,
            )
        duration = overhead + self.sc.dataset_mb / rate
        streams = self.sc.transfer_streams
        if streams is not None and self.transferring[site] >= streams:
            self.transfer_queue[site].append((job, job.token, duration))
        else:
            self.transferring[site] += 1
            job.stage_end = self.now + duration
            self.push(job.stage_end, "staged", (job, job.token, site))

    def next_transfer(self, site: str) -> None:
        """A transfer slot at ``site`` freed: start the next waiting transfer."""
        self.transferring[site] -= 1
        while self.transfer_queue[site]:
            job, token, duration = self.transfer_queue[site].pop(0)
            if token == job.token and job.phase == "staging":
                self.transferring[site] += 1
                job.stage_end = self.now + duration
                self.push(job.stage_end, "staged", (job, token, site))
                return

    def on_staged(self, item: tuple[SimJob, int, str]) -> None:
        """Stage-in done: the transfer slot frees and the job queues for a node."""
        job, token, site = item
        self.next_transfer(site)
        if token != job.token or job.phase != "staging" or job.site is None:
            return
        self.staging[job.site] -= 1
        job.phase = "queued"
        job.staged_at = self.now
        self.queue[job.site].append(job)
        self.try_start(job.site)

    def try_start(self, site: str) -> None:
        """Start queued jobs on free nodes (not while down, not into a window)."""
        s = self.sites[site]
        while self.queue[site] and self.running[site] < s.nodes:
            if self.is_down(site):
                return
            job = self.queue[site][0]
            _, run_f, _ = self.draws[(job.index, site, job.attempt - 1)]
            run_s = s.run_s * run_f
            start = self.now + self.sc.scheduler_delay_s
            if (
                s.maintenance is not None
                and start + run_s > s.maintenance[0]
                and start < s.maintenance[1]
            ):
                return  # the scheduler holds jobs that would run into the window
            self.queue[site].pop(0)
            self.running[site] += 1
            job.phase = "running"
            job.run_started = start
            job.run_end = start + run_s
            self.push(job.run_end, "ran", (job, job.token))
        self.release_held()

    def on_ran(self, item: tuple[SimJob, int]) -> None:
        """Compute done: stage-out begins and the node frees."""
        job, token = item
        if token != job.token or job.phase != "running" or job.site is None:
            return
        self.running[job.site] -= 1
        job.phase = "staging-out"
        job.ran_at = self.now
        _, _, out_f = self.draws[(job.index, job.site, job.attempt - 1)]
        self.push(self.now + self.sites[job.site].stage_out_s * out_f, "done", (job, job.token))
        self.try_start(job.site)

    def on_done(self, item: tuple[SimJob, int]) -> None:
        """Result back: record the run and publish once."""
        job, token = item
        if token != job.token or job.phase != "staging-out" or job.site is None:
            return
        job.phase = "done"
        job.finished = self.now
        if self.policy == "ours":
            self.history.record_success(
                job.run_id,
                finished_at=self.now,
                timings=RunTimings(
                    stage_in_s=job.staged_at - job.started_site_at,
                    queue_s=job.run_started - job.staged_at,
                    compute_s=job.ran_at - job.run_started,
                    stage_out_s=self.now - job.ran_at,
                ),
                bytes_out=int(self.sc.result_mb * 1e6),
            )
        key = publication_key(f"job{job.index}")
        if self.history.claim_publication(key, run_id=job.run_id, facility=job.site, at=self.now):
            self.publications += 1

    def on_down(self, site: str) -> None:
        """The site goes down: running jobs die; staged and queued ones wait."""
        self.down_at[site] = self.now
        self.up_at[site] = self.now + self.sites[site].down_for
        for job in self.jobs:
            if job.site == site and job.phase == "running":
                self.running[site] -= 1
                job.phase = "killed"
                job.token += 1

    def on_up(self, site: str) -> None:
        """The site is back."""
        self.try_start(site)

    def on_detect(self, site: str) -> None:
        """The endpoint status says offline: our runs there fail over."""
        for job in self.jobs:
            if job.site != site or job.phase not in ("killed", "staging", "queued"):
                continue
            if self.policy != "ours":
                if job.phase == "killed":
                    job.phase = "lost"  # no failover: the run is gone
                continue
            fail_over(self, job, site)
        self.release_held()

    def on_maintenance_end(self, site: str) -> None:
        """The window closed: queued jobs may start."""
        self.try_start(site)

    # -- policies ---------------------------------------------------------------
    def pick_rr(self, job: SimJob) -> str | None:
        """Round-robin: the next site in turn."""
        site = self.order[self.rr % len(self.order)]
        self.rr += 1
        return site

    def waiting(self, site: str) -> int:
        """Jobs at ``site`` not yet running (staging in or queued)."""
        return self.staging[site] + len(self.queue[site])

    def pick_sb(self, job: SimJob) -> str | None:
        """Shortest backlog: fewest waiting jobs among sites below the cap."""
        open_sites = [n for n in self.order if self.waiting(n) < self.sc.backlog_cap]
        return min(open_sites, key=self.waiting) if open_sites else None

    def release_held(self) -> None:
        """Place held jobs while the policy finds a site for them."""
        while self.held:
            site = self.choose(self.held[0])
            if site is None:
                return
            job = self.held.pop(0)
            if job.attempt > 0:
                self.failovers += 1
            self.send(job, site)

    def status(self, site: str) -> FacilityStatus:
        """The simulated combined status of ``site`` (what the probes would report)."""
        return simulated_status(self, site)

    def decide(self, job: SimJob) -> Decision:
        """The real selector's decision for ``job`` now."""
        return decide(self, job)
