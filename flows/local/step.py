"""One step of a local run: run the current state, then commit its outcome.

:func:`run_step` runs the state the run is in (an Action through its
provider, or Pass, ExpressionEval, Choice, Wait, Fail) and returns a
:class:`~flows.local.states.StepOutcome`; :func:`commit_step` persists it
with the move to the next state, or the run's end (``FlowSucceeded`` /
``FlowFailed``), in one store transition owned by the driving engine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flows.errors import ExpressionError, FlowDefinitionError, JSONPathError
from flows.local.actions import invoke_action
from flows.local.providers.base import ActionProvider
from flows.local.records import ActionContext, RunRecord, RunStatus, utc_now
from flows.local.states import (
    DEFAULT_WAIT_TIME,
    MAX_STATE_BYTES,
    StepOutcome,
    log_entry,
    run_choice,
    run_expression_eval,
    run_fail,
    run_pass,
    run_wait,
    state_size,
)
from flows.local.store import RunStore

__all__ = ["action_context", "commit_step", "finish_canceled", "flow_context", "run_step"]


def action_context(
    record: RunRecord, name: str, spec: Mapping[str, Any], *, username: str
) -> ActionContext:
    """The context a provider gets for Action state ``name`` (its deadline from ``WaitTime``)."""
    wait_time = float(spec.get("WaitTime", DEFAULT_WAIT_TIME))
    return ActionContext(
        run_id=record.run_id,
        state_name=name,
        action_id=str(uuid.uuid4()),
        action_url=str(spec["ActionUrl"]),
        username=username,
        flow_id=record.flow_id,
        deadline=time.monotonic() + wait_time,
        wait_time=wait_time,
    )


def flow_context(record: RunRecord, state_name: str | None, *, username: str) -> dict[str, Any]:
    """``$._context`` as the state sees it."""
    return {
        "run_id": record.run_id,
        "flow_id": record.flow_id,
        "username": username,
        "state_name": state_name,
    }


def run_step(
    record: RunRecord,
    *,
    store: RunStore,
    token: str,
    providers: Mapping[str, ActionProvider],
    username: str,
    sleep: Callable[[float], None],
) -> StepOutcome:
    """Run the current state of ``record``; its outcome (next state or failure), not committed.

    Errors of the definition or its data at run time become a ``States.Runtime``
    failure, as does a run state over :data:`MAX_STATE_BYTES`.
    """
    name = str(record.current_state)
    spec = record.definition["States"][name]
    kind = spec["Type"]
    state = record.state
    names = {
        **(state if isinstance(state, Mapping) else {}),
        "_context": flow_context(record, name, username=username),
    }
    try:
        if kind == "Action":
            outcome = invoke_action(
                name,
                spec,
                record.state,
                names,
                context=action_context(record, name, spec, username=username),
                providers=providers,
                on_started=lambda entry: store.transition(
                    record.run_id, updated_time=utc_now(), owner_token=token, logs=[entry]
                ),
                cancel_requested=lambda: store.cancel_requested(record.run_id),
            )
        elif kind == "Pass":
            outcome = run_pass(name, spec, state, names)
        elif kind == "ExpressionEval":
            outcome = run_expression_eval(name, spec, state, names)
        elif kind == "Choice":
            outcome = run_choice(name, spec, state, names)
        elif kind == "Wait":
            outcome = run_wait(
                name,
                spec,
                state,
                names,
                sleep=sleep,
                cancelled=lambda: store.cancel_requested(record.run_id),
            )
        elif kind == "Fail":
            outcome = run_fail(name, spec, state)
        else:  # validate_definition rejects unknown types; a stored definition could not
            raise FlowDefinitionError(f"unknown state Type {kind!r}", state=name)
    except (JSONPathError, ExpressionError, FlowDefinitionError) as exc:
        outcome = StepOutcome(
            state,
            None,
            [],
            failure={"error": "States.Runtime", "cause": str(exc)},
        )
    if outcome.failure is None:
        size = state_size(outcome.state)
        if size > MAX_STATE_BYTES:
            outcome = StepOutcome(
                state,
                None,
                outcome.logs,
                failure={
                    "error": "States.Runtime",
                    "cause": f"the run state would be {size} bytes after state {name};"
                    f" Globus Flows limits it to {MAX_STATE_BYTES} bytes",
                },
            )
    return outcome


def commit_step(
    store: RunStore, record: RunRecord, name: str, outcome: StepOutcome, token: str
) -> None:
    """Persist the outcome of state ``name``: the next state, or the run's success or failure."""
    now = utc_now()
    logs = list(outcome.logs)
    if outcome.failure is not None:
        failure = {"state_name": name, **outcome.failure}
        description = f"The Flow run failed in state {name}"
        details = {"code": "FlowFailed", "description": description, "details": failure}
        logs.append(log_entry("FlowFailed", description, failure))
        store.transition(
            record.run_id,
            updated_time=now,
            logs=logs,
            owner_token=token,
            status=RunStatus.FAILED,
            state=outcome.state,
            details=details,
            failed_state=name,
            error=dict(outcome.failure),
            completion_time=now,
        )
    elif outcome.next_state is None:
        description = "The Flow run reached a successful completion state"
        logs.append(log_entry("FlowSucceeded", description, {"output": outcome.state}))
        store.transition(
            record.run_id,
            updated_time=now,
            logs=logs,
            owner_token=token,
            status=RunStatus.SUCCEEDED,
            state=outcome.state,
            current_state=None,
            details={
                "code": "FlowSucceeded",
                "description": description,
                "output": outcome.state,
            },
            completion_time=now,
        )
    else:
        store.transition(
            record.run_id,
            updated_time=now,
            logs=logs,
            owner_token=token,
            state=outcome.state,
            current_state=outcome.next_state,
        )


def finish_canceled(store: RunStore, run_id: str, token: str) -> None:
    """End a run whose cancellation was asked for (``FlowCanceled``)."""
    now = utc_now()
    description = "The Flow Instance was canceled by the user"
    details = {"code": "FlowCanceled", "description": description, "details": {}}
    store.transition(
        run_id,
        updated_time=now,
        logs=[log_entry("FlowCanceled", description, {})],
        owner_token=token,
        status=RunStatus.FAILED,
        details=details,
        error={"error": "FlowCanceled", "cause": "canceled by the user"},
        completion_time=now,
    )
