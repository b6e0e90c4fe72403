"""Invoking an Action state's provider: input, timeout, cancellation, status document.

The provider runs in a worker thread; the driving thread waits at most the
state's ``WaitTime`` (then ``ActionTimeout``, and the provider's
``context.cancelled`` is set) and checks for a run cancellation a few times a
second. The provider's result becomes a Globus action status document stored
at ``ResultPath``; failures are routed through ``Catch`` by
:func:`~flows.local.states.action_outcome`.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flows.errors import ActionError
from flows.local.providers.base import ActionProvider
from flows.local.records import ActionContext, ActionResult, ActionStatus, utc_now
from flows.local.states import StepOutcome, action_outcome, log_entry, state_input
from xpcs_kernel.errors import XPCSFlowsError

__all__ = ["RunCanceled", "call_provider", "invoke_action"]

_POLL_S = 0.05
_CANCEL_CHECK_S = 0.25

Error = tuple[str, str]


class RunCanceled(XPCSFlowsError):
    """The run was canceled while one of its actions was in flight."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"flow run {run_id} was canceled")
        self.run_id = run_id


def invoke_action(
    name: str,
    spec: Mapping[str, Any],
    state: Any,
    names: Mapping[str, Any],
    *,
    context: ActionContext,
    providers: Mapping[str, ActionProvider],
    on_started: Callable[[dict[str, Any]], None],
    cancel_requested: Callable[[], bool],
) -> StepOutcome:
    """Run one Action state.

    Parameters
    ----------
    name, spec
        The state's name and definition.
    state, names
        The run state, and the names expressions see (the state plus ``_context``).
    context
        The action's context (its ``deadline`` is the state's ``WaitTime``).
    providers
        Action URL -> provider.
    on_started
        Called with the ``ActionStarted`` log entry before the provider runs
        (the engine persists it, so a crash shows the action in flight).
    cancel_requested
        Polled while waiting; ``True`` stops the action and raises
        :class:`RunCanceled`.
    """
    body = state_input(spec, state, names)
    on_started(
        log_entry(
            "ActionStarted",
            f"State {name} of type Action started",
            {
                "state_name": name,
                "state_type": "Action",
                "action_url": context.action_url,
                "action_id": context.action_id,
                "input": copy.deepcopy(body),
            },
        )
    )
    start = utc_now()
    provider = providers.get(context.action_url)
    if not isinstance(body, Mapping):
        error = f"the action input must be a JSON object, found {type(body).__name__}"
        return action_outcome(name, spec, state, None, ("ActionUnableToRun", error))
    if provider is None:
        known = ", ".join(sorted(providers)) or "none"
        error = f"no local action provider for {context.action_url} (local providers: {known})"
        return action_outcome(name, spec, state, None, ("ActionUnableToRun", error))
    result, failure = call_provider(provider, body, context, cancel_requested=cancel_requested)
    if result is None:
        assert failure is not None
        return action_outcome(name, spec, state, None, failure)
    doc = {
        "action_id": context.action_id,
        "status": result.status.value,
        "display_status": result.display_status or result.status.value,
        "details": dict(result.details),
        "label": None,
        "start_time": start,
        "completion_time": utc_now(),
        "state_name": name,
    }
    if result.status is ActionStatus.FAILED and spec.get("ExceptionOnActionFailure", True):
        cause = str(result.details.get("error") or "the action reported FAILED")
        return action_outcome(name, spec, state, doc, ("ActionFailedException", cause))
    return action_outcome(name, spec, state, doc, None)


def call_provider(
    provider: ActionProvider,
    body: Mapping[str, Any],
    context: ActionContext,
    *,
    cancel_requested: Callable[[], bool] = lambda: False,
) -> tuple[ActionResult | None, Error | None]:
    """Run the provider in a thread until it returns, the deadline passes or the run is canceled.

    Returns
    -------
    tuple
        ``(result, None)`` for a valid result, ``(None, (error_name, cause))``
        for ``ActionTimeout``, ``ActionUnableToRun`` or ``ActionFailedException``.

    Raises
    ------
    RunCanceled
        When ``cancel_requested()`` turned true while waiting.
    BaseException
        A non-``Exception`` raised by the provider (``KeyboardInterrupt``,
        ``SystemExit``) is re-raised: the process is going down.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = provider.run(body, context=context)
        except BaseException as exc:  # handed to the waiting thread below
            box["exc"] = exc

    thread = threading.Thread(
        target=target, name=f"action-{context.state_name}-{context.action_id}", daemon=True
    )
    thread.start()
    next_cancel_check = time.monotonic() + _CANCEL_CHECK_S
    while thread.is_alive():
        remaining = context.remaining()
        if remaining is not None and remaining <= 0:
            context.cancelled.set()
            return None, (
                "ActionTimeout",
                f"the action did not complete within WaitTime {context.wait_time or 0:g} s",
            )
        thread.join(_POLL_S if remaining is None else min(_POLL_S, remaining))
        if time.monotonic() >= next_cancel_check:
            next_cancel_check = time.monotonic() + _CANCEL_CHECK_S
            if cancel_requested():
                context.cancelled.set()
                raise RunCanceled(context.run_id)
    if "exc" in box:
        exc = box["exc"]
        if isinstance(exc, ActionError):
            return None, (exc.code, exc.cause)
        if not isinstance(exc, Exception):
            raise exc
        return None, ("ActionFailedException", f"{type(exc).__name__}: {exc}")
    result = box["result"]
    if not isinstance(result, ActionResult):
        return None, (
            "ActionFailedException",
            f"provider for {context.action_url} returned {type(result).__name__},"
            " not an ActionResult",
        )
    try:
        json.dumps(dict(result.details), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return None, ("ActionFailedException", f"action details are not JSON: {exc}")
    return result, None
