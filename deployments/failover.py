"""Failover policy: classify a failure, decide whether and where to relaunch.

Pure code, no engine: the launcher (``flows``) calls :func:`classify_failure`
on what a failed run reports, then :func:`plan_failover`, and relaunches
where it says.

Rules
-----
* **Infrastructure** failures are relaunched on the next best facility of
  the ranked decision: ``ActionUnableToRun``, ``ActionTimeout``, an offline
  endpoint, lost managers/workers, network errors, 5xx answers, and transfer
  faults (connection failed, endpoint error or busy, collection not
  connected or paused, quota exceeded at the destination, checksum errors).
* **Data** failures (our input errors: unreadable frames, bad q-map, bad
  result file, a correlation or fit that cannot proceed, a missing source
  file) are never retried elsewhere: the data would fail everywhere.
* Anything else is **unknown** and, to be safe, not retried.
* At most ``FailoverPolicy.max_attempts`` attempts per dataset.
* **One publication per dataset**: every attempt for a dataset carries the
  same :func:`publication_key`; the publish step must win
  :meth:`RunHistory.claim_publication` before ingesting (an atomic insert,
  so two attempts can never both publish), and no relaunch is planned once
  the dataset has been published.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import globus_sdk

from deployments.history import RunHistory
from deployments.select import Decision, JobRequest
from xpcs_kernel.errors import (
    CorrelationError,
    FitError,
    InputDataError,
    UsageError,
)

__all__ = [
    "DATA_MARKERS",
    "INFRASTRUCTURE_MARKERS",
    "FailoverPlan",
    "FailoverPolicy",
    "FailureClass",
    "FailureKind",
    "classify_failure",
    "failover_request",
    "plan_failover",
    "publication_key",
    "record_failure",
]


class FailureKind(enum.Enum):
    """Why a run failed, as far as failover is concerned.

    Attributes
    ----------
    INFRASTRUCTURE
        The facility or the services failed: relaunch elsewhere.
    DATA
        The input is at fault: never relaunched.
    UNKNOWN
        Cannot tell: not relaunched (reported for a human to decide).
    """

    INFRASTRUCTURE = "infrastructure"
    DATA = "data"
    UNKNOWN = "unknown"


#: Codes, states and exception names that mean an infrastructure failure.
INFRASTRUCTURE_MARKERS = frozenset(
    {
        "ActionUnableToRun",
        "ActionTimeout",
        "States.Timeout",
        "EndpointOffline",
        "endpoint_offline",
        "offline",
        "ManagerLost",
        "WorkerLost",
        "ConnectionError",
        "TimeoutError",
        "NetworkError",
        "GlobusConnectionError",
        "GlobusTimeoutError",
        "CONNECT_FAILED",
        "CONNECTION_FAILED",
        "CONNECTION_RESET",
        "ENDPOINT_ERROR",
        "ENDPOINT_TOO_BUSY",
        "GC_NOT_CONNECTED",
        "GC_PAUSED",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "QUOTA_EXCEEDED",
        "VERIFY_CHECKSUM",
    }
)

#: Exception names and transfer codes that mean the data or input is at fault.
DATA_MARKERS = frozenset(
    {
        "InputDataError",
        "FrameFormatError",
        "QMapError",
        "ResultFileError",
        "CorrelationError",
        "FitError",
        "UsageError",
        "FILE_NOT_FOUND",
        "NOT_FOUND",
        "NoSuchFile",
        "FileNotFoundError",
    }
)

_CODE_KEYS = ("code", "Error", "error", "nice_status", "status", "exception_type", "type")
_TEXT_KEYS = ("Cause", "cause", "description", "exception", "message", "detail")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class FailureClass:
    """A classified failure: its kind, the marker that decided it, and a summary."""

    kind: FailureKind
    code: str
    reason: str

    @property
    def retryable(self) -> bool:
        """Whether failover may relaunch the run elsewhere."""
        return self.kind is FailureKind.INFRASTRUCTURE

    def to_dict(self) -> dict[str, str]:
        """A JSON-friendly form."""
        return {"kind": self.kind.value, "code": self.code, "reason": self.reason}


def _tokens(report: Any, codes: list[str], texts: list[str], depth: int = 0) -> None:
    if depth > 8:
        return
    if isinstance(report, Mapping):
        for key, value in report.items():
            if key in _CODE_KEYS and isinstance(value, str):
                codes.append(value)
            elif key in _TEXT_KEYS and isinstance(value, str):
                texts.append(value)
            if isinstance(value, Mapping | list):
                _tokens(value, codes, texts, depth + 1)
    elif isinstance(report, list):
        for item in report:
            _tokens(item, codes, texts, depth + 1)


def _classify_markers(codes: Sequence[str], texts: Sequence[str], summary: str) -> FailureClass:
    words = [w.rsplit(".", 1)[-1] for t in texts for w in _WORD.findall(t)]
    for found in (list(codes), words):
        for token in found:
            if token in DATA_MARKERS or token.rsplit(".", 1)[-1] in DATA_MARKERS:
                return FailureClass(FailureKind.DATA, token, summary)
    for found in (list(codes), words):
        for token in found:
            if token in INFRASTRUCTURE_MARKERS:
                return FailureClass(FailureKind.INFRASTRUCTURE, token, summary)
    return FailureClass(FailureKind.UNKNOWN, codes[0] if codes else "", summary)


def classify_failure(failure: BaseException | Mapping[str, Any] | str) -> FailureClass:
    """Classify what a failed run reported.

    Parameters
    ----------
    failure
        An exception raised by a step; or a failure report (a flow run's
        failure details, a ``Catch`` result, a run log entry, an action's
        status with transfer ``nice_status`` or compute exception text),
        searched for error codes and exception names; or a bare code.

    Notes
    -----
    Data markers win over infrastructure markers (an ``ActionFailedException``
    wrapping an ``InputDataError`` is a data failure).
    """
    if isinstance(failure, BaseException):
        summary = f"{type(failure).__name__}: {failure}"
        if isinstance(failure, InputDataError | CorrelationError | FitError | UsageError):
            return FailureClass(FailureKind.DATA, type(failure).__name__, summary)
        if isinstance(failure, FileNotFoundError):
            return FailureClass(FailureKind.DATA, "FileNotFoundError", summary)
        if isinstance(failure, globus_sdk.NetworkError | TimeoutError | ConnectionError):
            return FailureClass(FailureKind.INFRASTRUCTURE, type(failure).__name__, summary)
        if isinstance(failure, globus_sdk.GlobusAPIError):
            code = str(failure.code)
            if failure.http_status >= 500:
                return FailureClass(
                    FailureKind.INFRASTRUCTURE, f"HTTP {failure.http_status}", summary
                )
            return _classify_markers([code], [str(failure)], summary)
        names = [cls.__name__ for cls in type(failure).__mro__]
        return _classify_markers(names, [str(failure)], summary)
    if isinstance(failure, str):
        return _classify_markers([failure], [failure], failure)
    codes: list[str] = []
    texts: list[str] = []
    _tokens(failure, codes, texts)
    summary = json.dumps(failure, sort_keys=True, default=str)
    return _classify_markers(codes, texts, summary[:500])


@dataclass(frozen=True)
class FailoverPolicy:
    """Failover limits: ``max_attempts`` attempts per dataset in all (first one included)."""

    max_attempts: int = 3


@dataclass(frozen=True)
class FailoverPlan:
    """What to do after a failed attempt."""

    relaunch: bool
    facility: str | None
    next_attempt: int | None
    reason: str
    failure: FailureClass

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (stored in the history)."""
        return {
            "relaunch": self.relaunch,
            "facility": self.facility,
            "next_attempt": self.next_attempt,
            "reason": self.reason,
            "failure": self.failure.to_dict(),
        }


def plan_failover(
    decision: Decision,
    failure: FailureClass,
    *,
    tried: Iterable[str],
    attempt: int,
    published_by: str | None = None,
    policy: FailoverPolicy | None = None,
) -> FailoverPlan:
    """Decide whether to relaunch after attempt number ``attempt`` failed.

    Parameters
    ----------
    decision
        The ranked decision the failed attempt came from.
    failure
        The classified failure.
    tried
        Facilities already tried for this dataset (the failed one included).
    attempt
        The number of the attempt that failed (1 for the first).
    published_by
        The run that owns the dataset's publication, if any (from
        :meth:`RunHistory.publication`): then nothing is relaunched.
    policy
        The retry limit.
    """
    pol = policy or FailoverPolicy()

    def no(reason: str) -> FailoverPlan:
        return FailoverPlan(False, None, None, reason, failure)

    if published_by is not None:
        return no(f"already published by run {published_by}; not relaunched")
    if failure.kind is FailureKind.DATA:
        return no(f"data or input error ({failure.code}): not retried elsewhere")
    if failure.kind is FailureKind.UNKNOWN:
        return no(f"unclassified failure ({failure.code or 'no code'}): not retried")
    if attempt >= pol.max_attempts:
        return no(f"retry limit reached ({pol.max_attempts} attempts)")
    nxt = decision.next_after(tried)
    if nxt is None:
        return no("no other eligible facility in the decision")
    return FailoverPlan(
        True,
        nxt.facility,
        attempt + 1,
        f"infrastructure failure ({failure.code}): relaunch on {nxt.facility} (rank {nxt.rank})",
        failure,
    )


def failover_request(request: JobRequest, tried: Iterable[str]) -> JobRequest:
    """``request`` with ``tried`` facilities excluded, to re-rank with fresh status."""
    return replace(request, exclude=request.exclude | frozenset(tried))


def publication_key(dataset: str, *, options: Mapping[str, Any] | None = None) -> str:
    """The key that identifies one publication: the dataset and the analysis options.

    Every attempt of a dataset (relaunches included) uses the same key.
    """
    blob = json.dumps({"dataset": dataset, "options": options or {}}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def record_failure(history: RunHistory, run_id: str, plan: FailoverPlan, *, at: float) -> None:
    """Record a failed attempt, its class and the failover plan in the history."""
    history.record_failure(
        run_id,
        finished_at=at,
        kind=plan.failure.kind.value,
        detail=json.dumps(plan.to_dict(), sort_keys=True),
    )
