"""The ``oracle`` of :mod:`deployments.simulate.run`: a clairvoyant reference bound, not a policy.

It answers "how well could any placement rule do here?", so that the real
selector (``ours``) can be judged against what was achievable rather than
against the baselines only. It cheats on purpose, in ways no real selector
can, and must never be used to place real runs (nothing outside the
simulation imports it):

* it knows every future outage: when each site goes down unannounced (and
  for how long) and every maintenance window;
* it knows the exact queue state of every site (jobs staging in, queued,
  running, and when each one will end) and the simulation's own random
  draws, i.e. each job's exact transfer, run and stage-out times.

The rule is greedy earliest completion: when a job arrives (and again when
a hold ends) it replays each site forward, with the engine's own rules
(FIFO queue, one job per node, scheduler delay, a scheduler that starts
nothing into a window, no start while down, transfer streams), and puts the
job where *it* completes first. A placement that would leave any job at a
site killed or stranded by a future outage is ruled out, so it never loses
a job. A site that is down or in its window now is never sent to: the job
may instead be held client-side until the outage ends, when the choice is
made again. Greedy is not optimal: it ignores the delay a job imposes on
later ones (and, when a faster stage-in overtakes a job still staging, on
earlier ones), so it is a reference point, not a strict lower bound.
"""

from __future__ import annotations

import heapq
import math

from deployments.simulate.world import SimJob, SimWorld

__all__ = ["pick_oracle"]

#: (ready time, tie order, run seconds, is the job being placed)
_Arrival = tuple[float, int, float, bool]


def _down_window(sim: SimWorld, site: str) -> tuple[float, float]:
    """The site's unannounced outage ``[start, end)`` (known to the oracle only)."""
    spec = sim.sites[site]
    if spec.down_at is None:
        return math.inf, math.inf
    return spec.down_at, spec.down_at + spec.down_for


def _outage_end(sim: SimWorld, site: str, t: float) -> float:
    """The first time at or after ``t`` when ``site`` is neither down nor in its window."""
    spec = sim.sites[site]
    down, up = _down_window(sim, site)
    for _ in range(3):
        if down <= t < up:
            t = up
        elif spec.maintenance is not None and spec.maintenance[0] <= t < spec.maintenance[1]:
            t = spec.maintenance[1]
        else:
            return t
    return t


def _arrivals(sim: SimWorld, site: str, new: tuple[float, float, float] | None) -> list[_Arrival]:
    """When each job at ``site`` not yet running reaches the node queue (FIFO order)."""
    now = sim.now
    order = 0
    out: list[_Arrival] = []
    spec = sim.sites[site]

    def run_s(job: SimJob) -> float:
        return spec.run_s * sim.draws[(job.index, site, job.attempt - 1)][1]

    for job in sim.queue[site]:
        out.append((job.staged_at, order, run_s(job), False))
        order += 1
    waiting = {id(j) for j, token, _ in sim.transfer_queue[site] if token == j.token}
    slots: list[float] = []
    for job in sim.jobs:
        if job.site == site and job.phase == "staging" and id(job) not in waiting:
            slots.append(job.stage_end)
            out.append((job.stage_end, order, run_s(job), False))
            order += 1
    streams = sim.sc.transfer_streams
    pending = [
        (now, d, run_s(j), False)
        for j, token, d in sim.transfer_queue[site]
        if token == j.token and j.phase == "staging"
    ]
    # jobs the oracle holds for this site: they stage in when the hold ends
    for job in sim.jobs:
        if job.phase == "deferred" and job.hold is not None and job.hold[0] == site:
            rate = sim.draws[(job.index, site, job.attempt)][0]
            stage = sim.deployments[site].priors.transfer_overhead_s + sim.sc.dataset_mb / rate
            run = spec.run_s * sim.draws[(job.index, site, job.attempt)][1]
            pending.append((job.hold[1], stage, run, False))
    if new is not None:
        pending.append((new[0], new[1], new[2], True))
    heapq.heapify(slots)
    for launch, duration, run, is_new in sorted(pending, key=lambda p: p[0]):
        start = launch
        if streams is not None:
            while len(slots) >= streams:
                start = max(start, heapq.heappop(slots))
        end = start + duration
        heapq.heappush(slots, end)
        out.append((end, order, run, is_new))
        order += 1
    out.sort(key=lambda a: (a[0], a[1]))
    return out


def _replay(sim: SimWorld, site: str, new: tuple[float, float, float] | None) -> tuple[int, float]:
    """Replay ``site`` forward: (jobs killed or stranded by an outage, the new job's run end).

    ``new`` is ``(launch time, stage-in seconds, run seconds)`` of the job
    being placed (``None``: the site as it is). The run end is ``inf`` when
    that job would be killed or stranded.
    """
    spec = sim.sites[site]
    delay = sim.sc.scheduler_delay_s
    down, up = _down_window(sim, site)
    window = spec.maintenance
    busy = [j.run_end for j in sim.jobs if j.site == site and j.phase == "running"]
    bad = sum(1 for end in busy if end >= down)
    arrivals = _arrivals(sim, site, new)
    queue: list[tuple[float, bool]] = []
    new_end = math.inf
    t = sim.now
    i = 0
    while True:
        while i < len(arrivals) and arrivals[i][0] <= t:
            queue.append((arrivals[i][2], arrivals[i][3]))
            i += 1
        busy = [end for end in busy if end > t]
        while queue and len(busy) < spec.nodes and not down <= t < up:
            run, is_new = queue[0]
            start = t + delay
            if window is not None and start + run > window[0] and start < window[1]:
                break  # the scheduler holds it until the window is over
            queue.pop(0)
            busy.append(start + run)
            killed = t < down <= start + run
            bad += killed
            if is_new and not killed:
                new_end = start + run
        if not queue and i == len(arrivals):
            return bad, new_end
        later = [e for e in busy if e > t]
        if i < len(arrivals):
            later.append(arrivals[i][0])
        for edge in (up, *(window or ())):
            if edge > t:
                later.append(edge)
        later = [e for e in later if math.isfinite(e)]
        if not later:  # stranded for good: the queue never starts
            return bad + len(queue) + len(arrivals) - i, new_end
        t = min(later)


def pick_oracle(sim: SimWorld, job: SimJob) -> str | None:
    """The site where ``job`` completes first, knowing the future; sets ``job.hold``.

    Returns ``None`` (hold the job until capacity frees) when no site can
    complete it; when the best site is down or in its window now, the job is
    held client-side until then (``job.hold``) and decided again.
    """
    job.hold = None  # decided afresh (a released hold included)
    best: tuple[float, int, str, float] | None = None
    for rank, site in enumerate(sim.order):
        launch = _outage_end(sim, site, sim.now)
        if not math.isfinite(launch):
            continue
        rate, _, out_f = sim.draws[(job.index, site, job.attempt)]
        spec = sim.sites[site]
        stage = sim.deployments[site].priors.transfer_overhead_s + sim.sc.dataset_mb / rate
        run = spec.run_s * sim.draws[(job.index, site, job.attempt)][1]
        before, _ = _replay(sim, site, None)
        after, run_end = _replay(sim, site, (launch, stage, run))
        if after > before or not math.isfinite(run_end):
            continue  # it would lose this job or another one there
        done = run_end + spec.stage_out_s * out_f
        if best is None or (done, rank) < best[:2]:
            best = (done, rank, site, launch)
    if best is None:
        return None
    _, _, site, launch = best
    job.hold = (site, launch) if launch > sim.now else None
    return site
