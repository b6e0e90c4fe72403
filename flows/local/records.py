"""Records of the local engine: run status, run record, action results.

They mirror the documents the Globus Flows service returns (``get_run``,
action status documents) so that code reading a run does not care which
engine ran it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ActionContext",
    "ActionResult",
    "ActionStatus",
    "RunRecord",
    "RunStatus",
    "utc_now",
]


def utc_now() -> str:
    """The current time as an ISO 8601 string in UTC (the format Globus uses)."""
    return datetime.now(UTC).isoformat()


class RunStatus(StrEnum):
    """Status of a flow run, as in Globus Flows."""

    ACTIVE = "ACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        """Whether the run has ended (SUCCEEDED or FAILED)."""
        return self is not RunStatus.ACTIVE


class ActionStatus(StrEnum):
    """Final status of an action, as in a Globus action status document."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ActionResult:
    """What a provider returns for one action.

    ``details`` is the provider-specific body (``results`` for Compute, the
    task summary for Transfer ...); a FAILED result should name the reason in
    ``details["error"]`` (and ``details["description"]`` for humans).
    """

    status: ActionStatus
    details: Mapping[str, Any] = field(default_factory=dict)
    display_status: str | None = None

    @classmethod
    def succeeded(cls, details: Mapping[str, Any]) -> ActionResult:
        """A SUCCEEDED result with ``details``."""
        return cls(ActionStatus.SUCCEEDED, dict(details))

    @classmethod
    def failed(cls, error: str, details: Mapping[str, Any] | None = None) -> ActionResult:
        """A FAILED result whose ``details["error"]`` is ``error``."""
        return cls(ActionStatus.FAILED, {**(details or {}), "error": error})


@dataclass(frozen=True)
class ActionContext:
    """What a provider may know about the action it runs.

    ``deadline`` is a :func:`time.monotonic` instant, ``wait_time`` seconds
    (the state's ``WaitTime``) after the action started;
    ``cancelled`` is set when the engine gives up on the action (timeout or
    run cancellation): long-running providers should poll it and stop.
    """

    run_id: str
    state_name: str
    action_id: str
    action_url: str
    username: str
    flow_id: str | None = None
    deadline: float | None = None
    wait_time: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)

    def remaining(self) -> float | None:
        """Seconds left before ``deadline`` (``None`` when there is none)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class RunRecord:
    """One flow run, as stored by the local engine.

    ``details`` mirrors the Globus run ``details`` (``code``, ``description``
    and ``output`` or the failure); ``state`` is the run state document as it
    stands (the output once SUCCEEDED); ``current_state`` is the state being
    or about to be executed; ``failed_state`` and ``error`` name the failure.
    """

    run_id: str
    status: RunStatus
    flow_id: str | None
    label: str | None
    tags: tuple[str, ...]
    start_time: str
    completion_time: str | None
    input: Mapping[str, Any]
    state: Any
    current_state: str | None
    details: Mapping[str, Any]
    failed_state: str | None = None
    error: Mapping[str, Any] | None = None
    definition: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def output(self) -> Any:
        """The final run state when SUCCEEDED, else ``None``."""
        return self.state if self.status is RunStatus.SUCCEEDED else None

    @property
    def display_status(self) -> str:
        """The status shown to people (as Globus ``display_status``)."""
        return self.status.value

    def to_dict(self) -> dict[str, Any]:
        """The run as a Globus ``get_run`` style JSON object."""
        return {
            "run_id": self.run_id,
            "action_id": self.run_id,
            "flow_id": self.flow_id,
            "status": self.status.value,
            "display_status": self.display_status,
            "label": self.label,
            "tags": list(self.tags),
            "start_time": self.start_time,
            "completion_time": self.completion_time,
            "details": dict(self.details),
            "current_state": self.current_state,
            "failed_state": self.failed_state,
            "error": None if self.error is None else dict(self.error),
        }
