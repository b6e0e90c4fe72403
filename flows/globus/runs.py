"""Runs on Globus Flows: start, read, read the logs of, cancel, and find a run by tag.

Every call takes either a globus-sdk client or a :class:`~globus_sdk.GlobusApp`
to build one with. Globus API errors become our errors with clear messages
(:func:`~flows.globus.error_map.map_globus_error`): 404 on a run is
:class:`~flows.errors.GlobusRunNotFound`, 401/403
:class:`~flows.errors.GlobusPermissionError`, anything else (5xx, network)
:class:`~flows.errors.GlobusServiceError`; each keeps the HTTP status, the
service's error code and request id.

The run record (:class:`GlobusRun`, in :mod:`flows.globus.run_record`) and the
checks of a run request (label, principals, body, in
:mod:`flows.globus.run_request`) are importable from here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import globus_sdk

from flows.errors import RunWaitTimeout
from flows.globus.error_map import map_globus_error
from flows.globus.run_record import FINAL_STATUSES, GlobusRun
from flows.globus.run_request import LABEL_MAX, principal_urns, run_body, run_label
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
    flow_id: str | Sequence[str],
    tag: str,
    *,
    started_after: datetime,
    client: globus_sdk.FlowsClient | None = None,
    app: globus_sdk.GlobusApp | None = None,
    max_pages: int = 10,
) -> GlobusRun | None:
    """The run of flow ``flow_id`` tagged ``tag`` that this identity started, else ``None``.

    ``flow_id`` may name several flows (a flow recreated under a new id: runs
    started before belong to the earlier one); they are listed together.
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
    ids = [flow_id] if isinstance(flow_id, str) else list(dict.fromkeys(flow_id))
    pages = flows.paginated.list_runs(
        filter_flow_id=ids[0] if len(ids) == 1 else ids,
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
        raise map_globus_error(exc, operation="list_runs", flow_id=",".join(ids)) from exc
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
