"""Probes for a descriptor, asked concurrently, and their answers combined.

:func:`build_probes` makes one probe per status source of a descriptor plus
its maintenance calendar; :func:`gather_statuses` asks every probe of every
facility at once (threads) and :func:`combine` folds one facility's answers
into one :class:`FacilityStatus`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from globus_sdk.authorizers import GlobusAuthorizer

from deployments.model import Deployment
from deployments.status.base import FacilityState, FacilityStatus, StatusProbe
from deployments.status.calendar import CalendarProbe
from deployments.status.compute import ComputeEndpointProbe
from deployments.status.iri import IRIProbe
from deployments.status.nersc import NERSCProbe
from deployments.status.olcf import OLCFProbe

__all__ = ["build_probes", "combine", "gather_statuses"]

_HTTP_PROBES: dict[str, type[IRIProbe | NERSCProbe | OLCFProbe]] = {
    "iri": IRIProbe,
    "nersc": NERSCProbe,
    "olcf": OLCFProbe,
}
_SEVERITY = {
    FacilityState.UP: 0,
    FacilityState.DEGRADED: 1,
    FacilityState.DOWN: 2,
}


def build_probes(
    deployment: Deployment,
    *,
    authorizer: GlobusAuthorizer | None = None,
    clock: Callable[[], float] = time.time,
) -> list[StatusProbe]:
    """One probe per status source of ``deployment``, then its calendar probe.

    ``authorizer`` is used for the Globus Compute source (facility status
    APIs are public).
    """
    probes: list[StatusProbe] = []
    for src in deployment.status_sources:
        common: dict[str, Any] = {"timeout": src.timeout_s, "ttl": src.ttl_s, "clock": clock}
        if src.kind == "globus-compute":
            assert deployment.compute.endpoint_id is not None
            probes.append(
                ComputeEndpointProbe(
                    deployment.name,
                    endpoint_id=deployment.compute.endpoint_id,
                    base_url=src.base_url,
                    authorizer=authorizer,
                    **common,
                )
            )
        else:
            assert src.resource is not None
            cls: type[IRIProbe | NERSCProbe | OLCFProbe] = _HTTP_PROBES[src.kind]
            probes.append(
                cls(deployment.name, base_url=src.base_url, resource=src.resource, **common)
            )
    probes.append(CalendarProbe(deployment.name, windows=deployment.maintenance, clock=clock))
    return probes


def combine(facility: str, answers: Sequence[FacilityStatus], *, now: float) -> FacilityStatus:
    """Fold one facility's answers into one status.

    The state is the worst known state (down > degraded > up). It is
    ``unknown`` when no source gave a known state, or when the Globus
    Compute endpoint (the source that says whether the run can start) is
    unknown and no source says ``down``: an unreadable endpoint never
    counts as up. Facility status APIs that cannot be read are ignored. Outages from all
    sources are merged; worker counts come from the Compute source;
    ``observed_at`` is the oldest answer's, so staleness is never hidden.
    """
    known = [a for a in answers if a.state is not FacilityState.UNKNOWN]
    if known:
        state = max((a.state for a in known), key=_SEVERITY.__getitem__)
    else:
        state = FacilityState.UNKNOWN
    endpoint_unknown = any(
        a.source == ComputeEndpointProbe.kind and a.state is FacilityState.UNKNOWN for a in answers
    )
    if endpoint_unknown and state is not FacilityState.DOWN:
        state = FacilityState.UNKNOWN
    compute = next(
        (
            a
            for a in answers
            if a.idle_workers is not None
            or a.total_workers is not None
            or a.outstanding_tasks is not None
        ),
        None,
    )
    outages = tuple(sorted({o for a in answers for o in a.outages}, key=lambda o: o.start))
    return FacilityStatus(
        facility=facility,
        source="combined",
        state=state,
        observed_at=min((a.observed_at for a in answers), default=now),
        detail="; ".join(f"{a.source}: {a.state.value} ({a.detail})" for a in answers),
        outages=outages,
        idle_workers=compute.idle_workers if compute else None,
        total_workers=compute.total_workers if compute else None,
        outstanding_tasks=compute.outstanding_tasks if compute else None,
        sources=tuple(f"{a.source}={a.state.value}" for a in answers),
    )


def gather_statuses(
    probes: Mapping[str, Iterable[StatusProbe]],
    *,
    clock: Callable[[], float] = time.time,
    max_workers: int = 16,
) -> dict[str, FacilityStatus]:
    """Ask every probe concurrently; one combined status per facility.

    Each probe applies its own timeout, so the whole call takes about the
    slowest timeout, not their sum.
    """
    flat = [(name, p) for name, ps in probes.items() for p in ps]
    if not flat:
        return {}
    with ThreadPoolExecutor(max_workers=min(max_workers, len(flat))) as pool:
        answers = list(pool.map(lambda item: item[1].status(), flat))
    per: dict[str, list[FacilityStatus]] = {name: [] for name in probes}
    for (name, _), answer in zip(flat, answers, strict=True):
        per[name].append(answer)
    now = clock()
    return {name: combine(name, got, now=now) for name, got in per.items()}
