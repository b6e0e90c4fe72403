"""The facility chooser: descriptors + live status + run history -> a decision.

This is what the launcher and the CLI use. It keeps its probes between
calls, so their TTL caches make repeated choices cheap, and asks them
concurrently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from globus_sdk.authorizers import GlobusAuthorizer

from deployments.errors import NoFacilityAvailable
from deployments.history import LearnedRates, RunHistory
from deployments.model import Deployment
from deployments.registry import DeploymentSet, load_deployments
from deployments.select import Decision, JobRequest, SelectionPolicy, rank_facilities
from deployments.state import FacilityStatus
from deployments.status.base import StatusProbe
from deployments.status.gather import build_probes, gather_statuses

__all__ = ["FacilityChooser"]


class FacilityChooser:
    """Chooses the facility for each run.

    Parameters
    ----------
    deployments
        The descriptors (default: :func:`load_deployments`, packaged plus the
        user's); invalid ones are listed in :attr:`problems` and never chosen.
    history
        The run history that teaches the rates (``None``: priors only).
    authorizer
        Authorizer for the Globus Compute status route.
    policy
        Selector knobs.
    clock
        POSIX time source (injectable).
    probes
        Ready probes per deployment name (default: built from the descriptors).
    """

    def __init__(
        self,
        deployments: DeploymentSet | Iterable[Deployment] | None = None,
        *,
        history: RunHistory | None = None,
        authorizer: GlobusAuthorizer | None = None,
        policy: SelectionPolicy | None = None,
        clock: Callable[[], float] = time.time,
        probes: Mapping[str, list[StatusProbe]] | None = None,
        config_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if deployments is None:
            deployments = load_deployments(config_dir)
        if isinstance(deployments, DeploymentSet):
            self.problems = dict(deployments.problems)
            self.deployments = {d.name: d for d in deployments}
        else:
            self.problems = {}
            self.deployments = {d.name: d for d in deployments}
        self.history = history
        self.policy = policy or SelectionPolicy()
        self.clock = clock
        self.probes: dict[str, list[StatusProbe]] = (
            {n: list(p) for n, p in probes.items()}
            if probes is not None
            else {
                n: build_probes(d, authorizer=authorizer, clock=clock)
                for n, d in self.deployments.items()
            }
        )

    def statuses(self) -> dict[str, FacilityStatus]:
        """The combined status of every deployment (probes asked concurrently)."""
        return gather_statuses(self.probes, clock=self.clock)

    def rates(self, *, backend: str = "numba") -> dict[str, LearnedRates]:
        """Learned rates of every deployment for a ``backend`` run (priors without a history)."""
        if self.history is None:
            return {
                n: LearnedRates.from_priors(d, backend=backend)
                for n, d in self.deployments.items()
            }
        history = self.history
        return {n: history.learned_rates(d, backend=backend) for n, d in self.deployments.items()}

    def decide(
        self,
        request: JobRequest,
        *,
        inflight: Mapping[str, int] | None = None,
        statuses: Mapping[str, FacilityStatus] | None = None,
    ) -> Decision:
        """Rank the facilities for ``request`` and require a choice.

        Raises
        ------
        NoFacilityAvailable
            When every facility is excluded (the table says why).
        """
        decision = self.rank(request, inflight=inflight, statuses=statuses)
        if decision.chosen is None:
            raise NoFacilityAvailable(
                f"no facility can run {request.dataset!r}", table=decision.table()
            )
        return decision

    def rank(
        self,
        request: JobRequest,
        *,
        inflight: Mapping[str, int] | None = None,
        statuses: Mapping[str, FacilityStatus] | None = None,
    ) -> Decision:
        """The ranked decision table, possibly with nothing eligible."""
        return rank_facilities(
            request,
            self.deployments.values(),
            self.statuses() if statuses is None else statuses,
            self.rates(backend=request.backend),
            now=self.clock(),
            policy=self.policy,
            inflight=inflight,
        )

    def overview(self, request: JobRequest) -> dict[str, Any]:
        """Everything ``xpcs-flows facilities`` shows, JSON-friendly."""
        statuses = self.statuses()
        decision = self.rank(request, statuses=statuses)
        return {
            "decision": decision.to_dict(),
            "statuses": {n: s.to_dict() for n, s in sorted(statuses.items())},
            "unconfigured": {n: e.to_dict() for n, e in sorted(self.problems.items())},
        }
