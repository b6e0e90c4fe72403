"""Runs on Globus Flows: start, read, read the logs of, cancel, and find a run by tag.

Every call takes either a globus-sdk client or a :class:`~globus_sdk.GlobusApp`
to build one with. Globus API errors become our errors with clear messages:
404 on a run is :class:`~flows.errors.GlobusRunNotFound`, 401/403
:class:`~flows.errors.GlobusPermissionError`, anything else (5xx, network)
:class:`~flows.errors.GlobusServiceError`; each keeps the HTTP status, the
service's error code and request id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import globus_sdk

from flows.errors import (
    FlowNotFound,
    GlobusPermissionError,
    GlobusRunNotFound,
    GlobusServiceError,
    RunWaitTimeout,
)
from xpcs_kernel.errors import UsageError, XPCSFlowsError

__all__ = [
    "FINAL_STATUSES",
    "LABEL_MAX",
    "GlobusRun",
    "RunTagLookupError",
    "cancel_globus_run",
    "find_globus_run_by_tag",
    "get_globus_run",
    "get_globus_run_logs",
    "map_globus_error",
    "principal_urns",
    "run_body",
    "run_label",
    "start_globus_run",
    "wait_globus_run",
]

#: The Flows service refuses run labels longer than this.
LABEL_MAX = 64
#: Run statuses after which a run never changes again.
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "ENDED"})
_PRINCIPAL_PREFIXES = ("urn:globus:auth:identity:", "urn:globus:groups:id:")


def map_globus_error(
    exc: globus_sdk.GlobusError,
    *,
    operation: str,
    run_id: str | None = None,
    flow_id: str | None = None,
) -> XPCSFlowsError:
    """Our error for a globus-sdk error raised by ``operation``.

    Parameters
    ----------
    exc
        A :class:`~globus_sdk.GlobusAPIError` (the service answered) or another
        globus-sdk error (for example a network error: it did not).
    operation
        What was asked (``run_flow``, ``get_run``, ``update_flow`` ...).
    run_id, flow_id
        What the request was about, kept on the error.
    """
    if not isinstance(exc, globus_sdk.GlobusAPIError):
        return GlobusServiceError(
            f"Globus could not be reached or answered unreadably: {exc}",
            operation=operation,
            run_id=run_id,
            flow_id=flow_id,
        )
    status = exc.http_status
    code = None if exc.code in (None, "Error") else str(exc.code)
    request_id = getattr(exc, "request_id", None)
    detail = (exc.message or exc.text or "(no message)")[:500]
    if status == 404 and run_id is not None:
        return GlobusRunNotFound(run_id, request_id=request_id)
    kwargs: dict[str, Any] = {
        "operation": operation,
        "http_status": status,
        "code": code,
        "request_id": request_id,
        "run_id": run_id,
        "flow_id": flow_id,
    }
    if status == 404 and flow_id is not None:
        return FlowNotFound(
            f"no flow {flow_id} visible to you (deleted, or deployed by someone else): {detail}",
            **kwargs,
        )
    if status in (401, 403):
        return GlobusPermissionError(
            f"Globus refused ({status} {code or ''}): {detail}; log in again with "
            "`xpcs-flows login` (new consents may be needed), or ask the owner for access",
            **kwargs,
        )
    return GlobusServiceError(f"Globus answered {status} {code or ''}: {detail}", **kwargs)


def run_label(dataset: str, facility: str) -> str:
    """The run label ``<dataset> @ <facility>``, at most :data:`LABEL_MAX` characters.

    The dataset name is shortened (keeping its end, which usually tells
    datasets apart, after an ellipsis) so that the facility always shows.
    """
    suffix = f" @ {facility}"
    room = LABEL_MAX - len(suffix)
    if room < 8:
        return f"{dataset} @ {facility}"[:LABEL_MAX]
    if len(dataset) > room:
        dataset = "…" + dataset[-(room - 1) :]
    return dataset + suffix


def principal_urns(values: Sequence[str], *, argument: str) -> list[str]:
    """Check that each value is a Globus identity or group URN (as Flows requires).

    Raises
    ------
    UsageError
        A value is not such a URN; ``argument`` names the parameter.
    """
    out = []
    for value in values:
        if not isinstance(value, str) or not value.startswith(_PRINCIPAL_PREFIXES):
            raise UsageError(
                f"{value!r} is not a Globus principal URN (urn:globus:auth:identity:<id> or "
                "urn:globus:groups:id:<id>)",
                argument=argument,
            )
        out.append(value)
    return out


@dataclass(frozen=True)
class GlobusRun:
    """One run as the Flows service reports it (``get_run``, ``run_flow``).

    ``status`` is the Globus status (ACTIVE, INACTIVE, SUCCEEDED, FAILED, ENDED).
    """

    run_id: str
    flow_id: str | None
    status: str
    label: str | None
    tags: tuple[str, ...]
    start_time: str | None
    completion_time: str | None
    display_status: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> GlobusRun:
        """Build from a Flows run document."""
        return cls(
            run_id=str(doc.get("run_id") or doc["action_id"]),
            flow_id=doc.get("flow_id"),
            status=str(doc.get("status")),
            label=doc.get("label"),
            tags=tuple(doc.get("tags") or ()),
            start_time=doc.get("start_time"),
            completion_time=doc.get("completion_time"),
            display_status=doc.get("display_status"),
            details=dict(doc.get("details") or {}),
        )

    @property
    def is_final(self) -> bool:
        """Whether the run has ended."""
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, shaped like the local engine's run records."""
        return {
            "run_id": self.run_id,
            "flow_id": self.flow_id,
            "status": self.status,
            "display_status": self.display_status or self.status,
            "label": self.label,
            "tags": list(self.tags),
            "start_time": self.start_time,
            "completion_time": self.completion_time,
            "details": dict(self.details),
        }


def run_body(flow_input: Mapping[str, Any], *, function_ids: Mapping[str, str]) -> dict[str, Any]:
    """The ``run_flow`` body: ``{"input": flow_input}`` with the deployed function ids.

    ``function_ids`` (``DeployRecord.function_ids``) fill the keys the input
    lacks; an input that names another id for one of them is refused.
    """
    merged = dict(flow_input)
    for key, function_id in function_ids.items():
        if merged.setdefault(key, function_id) != function_id:
            raise UsageError(
                f"{merged[key]!r} is not the deployed function {function_id!r}", argument=key
            )
    return {"input": merged}


def start_globus_run(
    flow_id: str,
    body: Mapping[str, Any],
    *,
    label: str,
    tags: Sequence[str] = (),
    run_monitors: Sequence[str] = (),
    run_managers: Sequence[str] = (),
    app: globus_sdk.GlobusApp | None = None,
    client: globus_sdk.SpecificFlowClient | None = None,
) -> str:
    """Start a run of the deployed flow ``flow_id``; returns the run id.

    Parameters
    ----------
    flow_id
        The deployed flow.
    body
        The run input (``{"input": {...}}``), validated by the service
        against the flow's input schema.
    label
        The run label (see :func:`run_label`); at most 64 characters.
    tags
        Tags shown and searchable in the web app.
    run_monitors, run_managers
        Principal URNs (identities or groups) allowed to see / manage the run.
    app, client
        The GlobusApp to build a :class:`~globus_sdk.SpecificFlowClient`
        with, or the client itself.

    Raises
    ------
    UsageError
        Bad label, tag or principal (nothing was sent).
    GlobusServiceError
        The service refused the run (its subclasses for 401/403 and 404).
    """
    if not label or len(label) > LABEL_MAX:
        raise UsageError(
            f"must have 1 to {LABEL_MAX} characters, got {len(label)}", argument="label"
        )
    clean_tags = [str(t).strip() for t in tags]
    if any(not t for t in clean_tags):
        raise UsageError("tags must not be empty", argument="tags")
    monitors = principal_urns(run_monitors, argument="run_monitors")
    managers = principal_urns(run_managers, argument="run_managers")
    if client is None:
        if app is None:
            raise UsageError("give a GlobusApp or a SpecificFlowClient", argument="app")
        client = globus_sdk.SpecificFlowClient(flow_id, app=app)
    try:
        response = client.run_flow(
            dict(body),
            label=label,
            tags=clean_tags,
            run_monitors=monitors or globus_sdk.MISSING,
            run_managers=managers or globus_sdk.MISSING,
        )
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="run_flow", flow_id=flow_id) from exc
    return str(response["run_id"])


def _flows_client(
    app: globus_sdk.GlobusApp | None, client: globus_sdk.FlowsClient | None
) -> globus_sdk.FlowsClient:
    if client is not None:
        return client
    if app is None:
        raise UsageError("give a GlobusApp or a FlowsClient", argument="app")
    return globus_sdk.FlowsClient(app=app)


def get_globus_run(
    run_id: str,
    *,
    app: globus_sdk.GlobusApp | None = None,
    client: globus_sdk.FlowsClient | None = None,
) -> GlobusRun:
    """The run ``run_id`` as the Flows service reports it now.

    Raises
    ------
    GlobusRunNotFound
        No such run visible to this identity.
    GlobusServiceError
        Any other refusal or failure.
    """
    flows = _flows_client(app, client)
    try:
        response = flows.get_run(run_id)
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="get_run", run_id=run_id) from exc
    return GlobusRun.from_document(response.data)


def get_globus_run_logs(
    run_id: str,
    *,
    limit: int = 100,
    app: globus_sdk.GlobusApp | None = None,
    client: globus_sdk.FlowsClient | None = None,
) -> list[dict[str, Any]]:
    """The log entries of run ``run_id`` (oldest first), at most ``limit`` of them."""
    if limit < 1:
        raise UsageError("must be >= 1", argument="limit")
    flows = _flows_client(app, client)
    try:
        response = flows.get_run_logs(run_id, limit=limit)
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="get_run_logs", run_id=run_id) from exc
    return [dict(entry) for entry in response.get("entries", [])]


def cancel_globus_run(
    run_id: str,
    *,
    app: globus_sdk.GlobusApp | None = None,
    client: globus_sdk.FlowsClient | None = None,
) -> GlobusRun:
    """Ask the Flows service to cancel run ``run_id``; returns the run as it answers."""
    flows = _flows_client(app, client)
    try:
        response = flows.cancel_run(run_id)
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="cancel_run", run_id=run_id) from exc
    return GlobusRun.from_document(response.data)


def wait_globus_run(
    run_id: str,
    *,
    timeout: float,
    interval: float = 15.0,
    app: globus_sdk.GlobusApp | None = None,
    client: globus_sdk.FlowsClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> GlobusRun:
    """Poll run ``run_id`` every ``interval`` seconds until it ends; returns the final run.

    Raises
    ------
    RunWaitTimeout
        Still not ended after ``timeout`` seconds (the run goes on).
    """
    flows = _flows_client(app, client)
    deadline = clock() + timeout
    while True:
        run = get_globus_run(run_id, client=flows)
        if run.is_final:
            return run
        left = deadline - clock()
        if left <= 0:
            raise RunWaitTimeout(run_id, timeout)
        sleep(min(interval, left))


class RunTagLookupError(XPCSFlowsError, LookupError):
    """More than one run carries ``tag`` (``run_ids``), or too many runs to scan for it."""

    def __init__(self, message: str, *, tag: str, run_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.tag, self.run_ids = tag, tuple(run_ids)


def _utc(text: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def find_globus_run_by_tag(
    flow_id: str,
    tag: str,
    *,
    started_after: datetime,
    client: globus_sdk.FlowsClient | None = None,
    app: globus_sdk.GlobusApp | None = None,
    max_pages: int = 10,
) -> GlobusRun | None:
    """The run of flow ``flow_id`` tagged ``tag`` that this identity started, else ``None``.

    Reads the identity's runs of the flow (``filter_roles=run_owner``) newest
    first, up to the first one that started before ``started_after`` (naive:
    UTC), and at most ``max_pages`` pages.

    Raises
    ------
    RunTagLookupError
        More than one run carries the tag (their ids are named), or none does
        in ``max_pages`` pages that did not reach ``started_after``.
    GlobusServiceError
        The listing failed (:class:`~flows.errors.GlobusPermissionError` on 401/403).
    """
    bound = started_after if started_after.tzinfo else started_after.replace(tzinfo=UTC)
    flows = _flows_client(app, client)
    pages = flows.paginated.list_runs(
        filter_flow_id=flow_id,
        filter_roles="run_owner",
        query_params={"orderby": "start_time DESC"},
    ).pages()
    found: list[GlobusRun] = []
    complete = False  # reached a run older than the bound, or the last page
    try:
        for number, page in enumerate(pages, start=1):
            for doc in page.get("runs", []):
                start = _utc(doc.get("start_time"))
                if start is not None and start < bound:
                    complete = True
                    break
                if tag in (doc.get("tags") or ()):
                    found.append(GlobusRun.from_document(doc))
            complete = complete or not page.get("has_next_page")
            if complete or number >= max_pages:
                break
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="list_runs", flow_id=flow_id) from exc
    if len(found) > 1 or not (found or complete):
        ids = [run.run_id for run in found]
        raise RunTagLookupError(
            f"{len(ids)} runs carry the tag {tag!r}: {', '.join(ids)}"
            if ids
            else f"no run tagged {tag!r} in {max_pages} pages of runs, all started after"
            f" {bound.isoformat()}; older runs were not read",
            tag=tag,
            run_ids=ids,
        )
    return found[0] if found else None
