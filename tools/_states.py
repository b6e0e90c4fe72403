"""Building blocks shared by the tools' flow fragments.

Every Action state of the XPCS flows catches every error (``States.ALL``),
stores the error document at :data:`CAUGHT_PATH` and goes to its own
``<State>Failed`` Pass state, which records ``{"state", "error", "cause"}``
at :data:`FAILURE_PATH` and moves on to the flow's one Fail state
:data:`FLOW_FAILED`. Nothing after a failure publishes: the failure states
lead only to the Fail state.

The Fail state itself is added once by the flow (:mod:`flows.xpcs.definition`), not by a
tool, so that the tools can be chained by gladier without state-name
conflicts.
"""

from __future__ import annotations

from typing import Any

from tools.action_urls import COMPUTE_V3_URL, SEARCH_INGEST_URL, TRANSFER_URL

__all__ = [
    "CAUGHT_PATH",
    "COMPUTE_V3_URL",
    "FAILURE_PATH",
    "FLOW_FAILED",
    "HOUR",
    "SEARCH_INGEST_URL",
    "TRANSFER_URL",
    "action_state",
    "compute_output",
    "fail_state",
    "failed_state_name",
    "failure_state",
]

#: Where a Catch stores the error document of the failed action.
CAUGHT_PATH = "$.Caught"
#: Where the failure path records ``{"state", "error", "cause"}``.
FAILURE_PATH = "$.Failure"
#: The flow's single Fail state.
FLOW_FAILED = "FlowFailed"
#: One hour in seconds (WaitTime values).
HOUR = 3600


def failed_state_name(state: str) -> str:
    """Name of the failure-recording state of the Action state ``state``."""
    return f"{state}Failed"


def action_state(
    name: str,
    *,
    action_url: str,
    parameters: dict[str, Any],
    wait_time: int,
    comment: str,
    end: bool = True,
    next_state: str | None = None,
) -> dict[str, Any]:
    """An Action state whose failures raise and are caught into the failure path.

    Parameters
    ----------
    name
        The state's name (its result is stored at ``$.<name>``).
    action_url
        The action provider URL (one of :mod:`tools.action_urls`).
    parameters
        The request body template (``.$`` references, ``.=`` expressions).
    wait_time
        Seconds the action may take before ``ActionTimeout``.
    comment
        What the state does (shown in the Globus web app).
    end, next_state
        ``End: true`` (the default; gladier's ToolChain replaces it with
        ``Next`` when chaining), or the next state.
    """
    state: dict[str, Any] = {
        "Comment": comment,
        "Type": "Action",
        "ActionUrl": action_url,
        "Parameters": parameters,
        "ResultPath": f"$.{name}",
        "WaitTime": wait_time,
        "ExceptionOnActionFailure": True,
        "Catch": [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": CAUGHT_PATH,
                "Next": failed_state_name(name),
            }
        ],
    }
    if next_state is not None:
        state["Next"] = next_state
    elif end:
        state["End"] = True
    return state


def failure_state(name: str) -> dict[str, Any]:
    """The Pass state recording the failure of Action state ``name``."""
    return {
        "Comment": f"Record why {name} failed; nothing is published after a failure",
        "Type": "Pass",
        "Parameters": {
            "state": name,
            "error.$": f"{CAUGHT_PATH}.Error",
            "cause.$": f"{CAUGHT_PATH}.Cause",
        },
        "ResultPath": FAILURE_PATH,
        "Next": FLOW_FAILED,
    }


def fail_state() -> dict[str, Any]:
    """The flow's Fail state (the run ends FAILED; ``$.Failure`` says where and why)."""
    return {
        "Comment": "A step failed: see $.Failure (state, error, cause) in the run state",
        "Type": "Fail",
        "Error": "XPCSFlowFailed",
        "Cause": "A step of the XPCS flow failed; $.Failure names the state and the cause",
    }


def compute_output(state: str, index: int = 0) -> str:
    """JSONPath of the return value of task ``index`` of Compute state ``state``."""
    return f"$.{state}.details.results[{index}].output"
