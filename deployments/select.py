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
from dataclasses import replace

from deployments._select_candidate import candidate_for
from deployments.errors import NoFacilityAvailable
from deployments.history import LearnedRates
from deployments.model import Deployment
from deployments.select_types import (
    Candidate,
    Decision,
    Estimate,
    JobRequest,
    SelectionPolicy,
    version_tuple,
)
from deployments.state import FacilityState, FacilityStatus

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
        candidate_for(
            d,
            request,
            statuses.get(d.name),
            rates.get(d.name) or LearnedRates.from_priors(d, backend=request.backend),
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
