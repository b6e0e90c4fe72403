"""Starting one attempt of a launch on one facility, with its records.

:func:`start_attempt` is shared by the first launch (:func:`flows.launch.api.launch`)
and every failover attempt (:mod:`flows.launch.failover`): it records the start
in the run index and the run history and starts the flow on the request's
engine (:mod:`flows.launch.engines`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deployments import Decision, RunHistory, run_kind
from flows.globus.runs import LABEL_MAX, run_label
from flows.launch.engines import standard_tags, start_globus, start_local
from flows.launch.request import LaunchRequest
from flows.runs.handle import Run
from flows.runs.index import RunIndex, RunIndexEntry

__all__ = ["start_attempt"]


def start_attempt(
    request: LaunchRequest,
    facility: str,
    *,
    decision: Decision | None,
    attempt: int = 1,
    failover_from: str | None = None,
    providers: Mapping[str, Any] | None = None,
    flow_client: Any = None,
    background: bool = True,
) -> Run:
    """Start one attempt of ``request`` on ``facility``; returns its :class:`Run`.

    Records the start in the run index and the run history first. Local
    attempts are driven in a background thread (with ``background=False`` they
    wait for a driver: :func:`flows.runs.driver.drive_local_run`); ``providers`` (action URL ->
    provider) replace local ones (fault injection). ``flow_client`` is the
    Globus :class:`~globus_sdk.SpecificFlowClient` to use (default: the
    logged-in user's).
    """
    deployment = request.deployments[facility]
    label = (request.label or run_label(request.dataset, facility))[:LABEL_MAX]
    tags = standard_tags(request.raw, facility=facility, engine=request.engine, extra=request.tags)
    decision_dict = None if decision is None else decision.to_dict()
    if request.engine == "local":
        run = start_local(
            request,
            deployment,
            label=label,
            tags=tags,
            decision=decision_dict,
            attempt=attempt,
            providers=providers,
            background=background,
            on_start=lambda entry: _record_start(request, entry, failover_from),
        )
    else:
        run = start_globus(
            request,
            deployment,
            label=label,
            tags=tags,
            decision=decision_dict,
            attempt=attempt,
            flow_client=flow_client,
            on_start=lambda entry: _record_start(request, entry, failover_from),
        )
    return run


def _record_start(request: LaunchRequest, entry: RunIndexEntry, failover_from: str | None) -> None:
    RunIndex(request.db_path).add(entry)
    with RunHistory(request.db_path) as history:
        history.record_start(
            entry.run_id,
            dataset=request.dataset,
            facility=entry.facility,
            started_at=entry.started_at,
            attempt=entry.attempt,
            failover_from=failover_from,
            decision=entry.decision,
            bytes_in=request.job.bytes_in,
            frames=request.job.frames,
            pixels=request.job.pixels,
            run_kind=run_kind(
                request.job.backend, request.deployments[entry.facility].capabilities.gpus
            ),
        )
