"""Semantics of each state type, apart from calling action providers.

Every function takes the state's name and definition and the run state and
returns a :class:`StepOutcome`: the new run state, the next state (``None``
when the flow ends), the log entries the step produced and, for a failure,
the error. The engine persists the outcome in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.errors import FlowDefinitionError
from flows.local.choice import choice_next
from flows.local.parameters import resolve_parameters
from flows.local.paths import get_path, set_path
from flows.local.records import utc_now

__all__ = [
    "DEFAULT_WAIT_TIME",
    "ERROR_ALL",
    "MAX_STATE_BYTES",
    "StepOutcome",
    "action_outcome",
    "log_entry",
    "next_of",
    "run_choice",
    "run_expression_eval",
    "run_fail",
    "run_pass",
    "run_wait",
    "state_input",
    "state_size",
]

#: Default ``WaitTime`` of an Action state (seconds).
DEFAULT_WAIT_TIME = 300.0
#: The Globus Flows limit on the size of the run state (bytes of JSON).
MAX_STATE_BYTES = 200 * 1024
#: The catch-all error name.
ERROR_ALL = "States.ALL"
_WAIT_SLICE = 0.5
_MAX_WAIT_CHECKS = 1000


@dataclass(frozen=True)
class StepOutcome:
    """What executing one state did."""

    state: Any
    next_state: str | None
    logs: list[dict[str, Any]] = field(default_factory=list)
    failure: Mapping[str, Any] | None = None


def log_entry(code: str, description: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """A Globus-style run log entry (``time``, ``code``, ``description``, ``details``)."""
    return {"time": utc_now(), "code": code, "description": description, "details": dict(details)}


def _started(name: str, kind: str, data: Any) -> dict[str, Any]:
    return log_entry(
        f"{kind}Started",
        f"State {name} of type {kind} started",
        {"state_name": name, "state_type": kind, "input": data},
    )


def _completed(name: str, kind: str, output: Any) -> dict[str, Any]:
    return log_entry(
        f"{kind}Completed",
        f"State {name} of type {kind} completed",
        {"state_name": name, "state_type": kind, "output": output},
    )


def next_of(spec: Mapping[str, Any]) -> str | None:
    """``Next`` of a state, ``None`` for an ``End`` state."""
    nxt = spec.get("Next")
    return None if nxt is None else str(nxt)


def state_input(spec: Mapping[str, Any], state: Any, names: Mapping[str, Any]) -> Any:
    """The effective input of a state: resolved ``Parameters``, ``InputPath`` or the state."""
    if "Parameters" in spec:
        return resolve_parameters(spec["Parameters"], names)
    path = spec.get("InputPath", "$")
    return state if path == "$" else get_path(names, path)


def _store(state: Any, spec: Mapping[str, Any], value: Any, name: str) -> Any:
    path = spec.get("ResultPath", "$")
    if str(path).startswith("$._context"):
        raise FlowDefinitionError("ResultPath may not write $._context", state=name)
    return set_path(state, path, value)


def run_pass(
    name: str, spec: Mapping[str, Any], state: Any, names: Mapping[str, Any]
) -> StepOutcome:
    """Pass: copy the (resolved) input to ``ResultPath``."""
    data = state_input(spec, state, names)
    new = _store(state, spec, data, name)
    return StepOutcome(
        new, next_of(spec), [_started(name, "Pass", data), _completed(name, "Pass", new)]
    )


def run_expression_eval(
    name: str, spec: Mapping[str, Any], state: Any, names: Mapping[str, Any]
) -> StepOutcome:
    """ExpressionEval: evaluate ``Parameters`` (``.=`` / ``.$``) into ``ResultPath``."""
    if "Parameters" not in spec:
        raise FlowDefinitionError("ExpressionEval needs Parameters", state=name)
    data = resolve_parameters(spec["Parameters"], names)
    new = _store(state, spec, data, name)
    return StepOutcome(
        new,
        next_of(spec),
        [
            _started(name, "ExpressionEval", spec["Parameters"]),
            _completed(name, "ExpressionEval", data),
        ],
    )


def run_choice(
    name: str, spec: Mapping[str, Any], state: Any, names: Mapping[str, Any]
) -> StepOutcome:
    """Choice: the first matching rule's ``Next``, else ``Default``; no match fails the run."""
    target = choice_next(spec, names, name=name)
    logs = [_started(name, "Choice", None)]
    if target is None:
        return StepOutcome(
            state,
            None,
            logs,
            failure={
                "error": "States.NoChoiceMatched",
                "cause": f"no choice of state {name} matched and it has no Default",
            },
        )
    logs.append(
        log_entry(
            "ChoiceCompleted",
            f"State {name} of type Choice completed",
            {"state_name": name, "state_type": "Choice", "next_state": target},
        )
    )
    return StepOutcome(state, target, logs)


def run_wait(
    name: str,
    spec: Mapping[str, Any],
    state: Any,
    names: Mapping[str, Any],
    *,
    sleep: Callable[[float], None],
    cancelled: Callable[[], bool],
) -> StepOutcome:
    """Wait: sleep ``Seconds`` (or the number at ``SecondsPath``), in slices that heed cancel."""
    seconds = spec["Seconds"] if "Seconds" in spec else get_path(names, spec["SecondsPath"])
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise FlowDefinitionError(
            f"wait time must be a number >= 0, found {seconds!r}", state=name, field="Seconds"
        )
    left = float(seconds)
    piece = max(_WAIT_SLICE, left / _MAX_WAIT_CHECKS)  # bounded number of cancel checks
    while left > 0 and not cancelled():
        step = min(left, piece)
        sleep(step)
        left -= step
    return StepOutcome(
        state,
        next_of(spec),
        [_started(name, "Wait", {"seconds": seconds}), _completed(name, "Wait", None)],
    )


def run_fail(name: str, spec: Mapping[str, Any], state: Any) -> StepOutcome:
    """Fail: end the run FAILED with the state's ``Error`` and ``Cause``."""
    failure = {
        "error": str(spec.get("Error", "States.Fail")),
        "cause": str(spec.get("Cause", f"the flow reached Fail state {name}")),
    }
    return StepOutcome(state, None, [_started(name, "Fail", failure)], failure=failure)


def action_outcome(
    name: str,
    spec: Mapping[str, Any],
    state: Any,
    status_doc: Mapping[str, Any] | None,
    error: tuple[str, str] | None,
) -> StepOutcome:
    """Apply an action's result (or error) to the run state: ResultPath, Catch, failure.

    Parameters
    ----------
    status_doc
        The action status document (``None`` when the action could not run).
    error
        ``(error_name, cause)`` when the action failed, timed out or could not
        run; ``None`` on success. A FAILED action with
        ``ExceptionOnActionFailure: false`` is passed here as a success.
    """
    if error is None:
        doc = dict(status_doc or {})
        new = _store(state, spec, doc, name)
        return StepOutcome(new, next_of(spec), [_completed(name, "Action", doc)])
    code, cause = error
    failed = log_entry(
        "ActionFailed",
        f"State {name} of type Action failed",
        {
            "state_name": name,
            "state_type": "Action",
            "error": code,
            "cause": cause,
            "output": None if status_doc is None else dict(status_doc),
        },
    )
    for catcher in spec.get("Catch") or []:
        names = catcher.get("ErrorEquals") or []
        if code in names or ERROR_ALL in names:
            value = {**(status_doc or {}), "Error": code, "Cause": cause}
            path = catcher.get("ResultPath", "$")
            new = set_path(state, path, value)
            failed["details"]["caught_by"] = str(catcher["Next"])
            return StepOutcome(new, str(catcher["Next"]), [failed])
    return StepOutcome(state, None, [failed], failure={"error": code, "cause": cause})


def state_size(state: Any) -> int:
    """Bytes of the run state as compact JSON."""
    return len(json.dumps(state, separators=(",", ":")).encode())
