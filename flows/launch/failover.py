"""Run a launch to its end, relaunching elsewhere after infrastructure failures.

:func:`run_with_failover` starts the first attempt on the chosen facility
and waits for it. When it FAILS, the failure is classified
(:func:`deployments.classify_failure`) and :func:`deployments.plan_failover`
decides: an infrastructure failure (``ActionUnableToRun``, an offline
endpoint, a timeout, a transfer fault) is relaunched on the next best
facility of the decision (of the same engine), up to
``FailoverPolicy.max_attempts`` attempts; a data or input error, an
unclassified failure, or a launch that already published is not. Every
attempt is recorded in the run history (start, outcome, the plan). All
attempts share one publication key, and the publish step claims it before
publishing (:mod:`flows.runs.publication` locally; on Globus the claim is
taken when the run is seen succeeding and checked before any relaunch), so
a dataset is never published twice. A run that failed in a publish state
is not relaunched (its results may be partly published). A relaunch on a
facility deferred past a planned window (``defer_planned``) is held until
then, as a first launch is (:mod:`flows.launch.hold`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from deployments import (
    FacilityChooser,
    FailoverPlan,
    FailoverPolicy,
    RunHistory,
    classify_failure,
    plan_failover,
    record_failure,
)
from flows.errors import RunWaitTimeout
from flows.launch.attempt import start_attempt
from flows.launch.hold import LaunchHold, choose_facility, hold_failover, too_late
from flows.launch.request import LaunchRequest
from flows.local import ActionProvider
from flows.runs.handle import Run
from flows.runs.publication import PUBLISH_STATES

__all__ = ["run_with_failover"]


def run_with_failover(
    request: LaunchRequest,
    *,
    policy: FailoverPolicy | None = None,
    timeout: float | None = None,
    progress: bool = True,
    chooser: FacilityChooser | None = None,
    providers_for: Callable[[str], Mapping[str, ActionProvider] | None] | None = None,
    flow_client: Any = None,
    hold: LaunchHold | None = None,
) -> Run:
    """Run ``request`` to its end, failing over after infrastructure failures.

    Parameters
    ----------
    request
        A checked launch (:func:`flows.launch.api.prepare_launch`).
    policy
        The attempt limit (default :class:`~deployments.FailoverPolicy`).
    timeout
        Seconds for all attempts together (``RunWaitTimeout`` past it; the
        attempt in progress goes on).
    progress
        Show a progress line while waiting.
    chooser
        The facility chooser (default: the deployments, statuses and history).
    providers_for
        Facility name -> local providers replacing the defaults (fault injection).
    flow_client
        The Globus client to start runs with (default: the logged-in user's).
    hold
        How a launch or relaunch is held while its facility is deferred past
        a planned window (only with a chooser whose policy has
        ``defer_planned=True``; see :mod:`flows.launch.hold`).

    Returns
    -------
    Run
        The last attempt (SUCCEEDED, or FAILED when no relaunch was possible);
        ``Run.attempts`` lists the earlier ones.

    Raises
    ------
    LaunchCancelled
        A hold before the first launch or a relaunch was cancelled: nothing
        more was sent (a failed attempt is in the history with its plan).
    """
    pol = policy or FailoverPolicy()
    how = hold or LaunchHold()
    deadline = None if timeout is None else time.monotonic() + timeout
    facility, decision = choose_facility(request, chooser=chooser, hold=how)
    other_engine = [n for n in request.deployments if n not in request.engine_deployments()]
    tried: list[str] = []
    earlier: list[str] = []
    attempt = 1
    previous: str | None = None
    while True:
        run = start_attempt(
            request,
            facility,
            decision=decision,
            attempt=attempt,
            failover_from=previous,
            providers=providers_for(facility) if providers_for is not None else None,
            flow_client=flow_client,
        )
        run.attempts = tuple(earlier)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            run.wait(progress=progress, timeout=left)
        except RunWaitTimeout:
            raise RunWaitTimeout(run.run_id, float(timeout or 0.0)) from None
        tried.append(facility)
        if run.status() == "SUCCEEDED":
            return run
        report = dict(run.failure or {})
        failure = classify_failure(report)
        failed_in = report.get("state") or report.get("state_name")
        with RunHistory(request.db_path) as history:
            owner = history.publication(request.publication_key)
            if decision is None:
                plan = FailoverPlan(
                    False, None, None, "facility named explicitly: no failover", failure
                )
            elif failed_in in PUBLISH_STATES:
                plan = FailoverPlan(
                    False,
                    None,
                    None,
                    f"failed while publishing ({failed_in}): results may be partly published;"
                    " not relaunched",
                    failure,
                )
            else:
                # a deferred facility free only beyond the hold limit is not a relaunch target
                late = too_late(decision, now=how.clock(), budget_s=how.max_hold_s)
                plan = plan_failover(
                    decision,
                    failure,
                    tried=[*tried, *other_engine, *late],
                    attempt=attempt,
                    published_by=None if owner is None else owner[0],
                    policy=pol,
                )
            record_failure(history, run.run_id, plan, at=time.time())
        if not plan.relaunch or plan.facility is None:
            return run
        if decision is not None:
            # nothing is sent to a facility before its planned window is over
            hold_failover(request, decision, plan.facility, how)
        earlier.append(run.run_id)
        previous = run.run_id
        facility = plan.facility
        attempt += 1
