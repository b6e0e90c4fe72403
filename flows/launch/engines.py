"""Starting one attempt on an engine: the local engine (background thread) or Globus Flows.

Used by :func:`flows.launch.api.start_attempt`. Both build the flow input from
the deployment descriptor, validate it as the Flows service would, record
the run (``on_start``) and start it, returning a :class:`~flows.runs.handle.Run`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import globus_sdk
import h5py

from deployments import Deployment, RunHistory
from flows.launch.request import LaunchRequest
from flows.local import ActionProvider
from flows.runs.handle import Run
from flows.runs.index import RunIndexEntry
from flows.xpcs.local import LocalFacility, prepare_local_run
from flows.xpcs.validate import validate_flow_input
from xpcs_kernel.errors import ConfigurationError

__all__ = [
    "GLOBUS_FLOW_NAME",
    "GLOBUS_LIVE_FLOW_NAME",
    "build_globus_input",
    "globus_run_client",
    "local_facility",
    "standard_tags",
    "start_globus",
    "start_local",
]

#: The deploy-state name of the single-dataset flow (``xpcs-flows deploy``).
GLOBUS_FLOW_NAME = "xpcs"
#: The deploy-state name of the live flow (``xpcs-flows deploy --live``).
GLOBUS_LIVE_FLOW_NAME = "xpcs-live"


def standard_tags(
    raw: Path, *, facility: str, engine: str, extra: Sequence[str] = ()
) -> list[str]:
    """Run tags: ``beamline:``/``experiment:`` (from the raw file's NeXus fields, when
    present), ``facility:<name>``, ``engine:<name>`` and ``extra``, without duplicates."""
    tags: list[str] = []
    try:
        if h5py.is_hdf5(raw):
            with h5py.File(raw, "r") as f:
                for tag, key in (
                    ("beamline", "/entry/instrument/name"),
                    ("experiment", "/entry/experiment_identifier"),
                ):
                    if key in f and isinstance(f[key], h5py.Dataset) and f[key].shape == ():
                        value = f[key][()]
                        text = value.decode() if isinstance(value, bytes) else str(value)
                        if text.strip():
                            tags.append(f"{tag}:{text.strip()}")
    except OSError:
        pass  # an unreadable raw file is the flow's to report; tags stay generic
    tags += [f"facility:{facility}", f"engine:{engine}", *extra]
    return list(dict.fromkeys(tags))


def local_facility(request: LaunchRequest, deployment: Deployment) -> LocalFacility:
    """The local directories of a local-engine deployment: ``<workdir>/<name>/``."""
    return LocalFacility.in_directory(
        request.workdir / deployment.name,
        name=deployment.name,
        allowed_roots=tuple(deployment.allowed_roots) or ("/",),
        user_endpoint_config=deployment.compute.user_endpoint_config(),
    )


def start_local(
    request: LaunchRequest,
    deployment: Deployment,
    *,
    label: str,
    tags: Sequence[str],
    decision: Mapping[str, Any] | None,
    attempt: int,
    providers: Mapping[str, ActionProvider] | None,
    on_start: Callable[[RunIndexEntry], None],
    background: bool = True,
) -> Run:
    """Start the flow on the local engine, driven by a background thread (or, without
    ``background``, by whoever drives it next: :func:`flows.runs.driver.drive_local_run`)."""
    fac = local_facility(request, deployment)
    spec, flow_input = prepare_local_run(
        request.raw,
        request.qmap,
        facility=fac,
        db_path=request.db_path,
        options=request.options,
        dataset_name=request.dataset,
        follow=request.follow if request.live else None,
    )
    entry = RunIndexEntry(
        run_id=str(uuid.uuid4()),
        engine="local",
        flow_id=None,
        facility=deployment.name,
        dataset=request.dataset,
        label=label,
        launch_id=request.launch_id,
        attempt=attempt,
        publication_key=request.publication_key,
        started_at=time.time(),
        collections={k: str(v) for k, v in fac.collections.items()},
        decision=decision,
    )
    run = Run(entry, db_path=request.db_path, providers=providers)
    on_start(entry)
    try:
        run.local_engine.start_run(
            spec.definition,
            flow_input,
            label=label,
            tags=tags,
            run_id=entry.run_id,
            background=background,
        )
    except Exception as exc:
        with RunHistory(request.db_path) as history:
            history.record_failure(
                entry.run_id, finished_at=time.time(), kind="unknown", detail=repr(exc)
            )
        raise
    return run


def _collection_path(root: str, local: Path) -> str:
    """The path of local file ``local`` on a collection that exposes ``/`` at ``root``."""
    return str(PurePosixPath(root) / Path(local).resolve().relative_to("/").as_posix())


def build_globus_input(
    request: LaunchRequest, deployment: Deployment, *, function_ids: Mapping[str, str]
) -> dict[str, Any]:
    """The run input on Globus: the beamline files on the deployment's source collection.

    The source collection is taken to expose this machine's file system with
    ``/`` at its ``path``; the staging path is the same on the collection and
    on the facility file system (``staging_compute_path``).

    Raises
    ------
    ConfigurationError
        The deployment lacks a source, staging or publication collection,
        a compute endpoint or a search index.
    """
    missing = [
        name
        for name, value in (
            ("collections.source", deployment.source),
            ("collections.staging", deployment.staging),
            ("collections.publication", deployment.publication),
            ("compute.endpoint_id", deployment.compute.endpoint_id),
            ("search.index", deployment.search_index),
        )
        if value is None or getattr(value, "id", "") is None
    ]
    if missing:
        raise ConfigurationError(
            "cannot run on Globus without " + ", ".join(missing),
            source=deployment.origin,
            field=missing[0],
        )
    assert deployment.source is not None  # checked above (for mypy)
    assert deployment.staging is not None
    assert deployment.publication is not None
    staging = str(PurePosixPath(deployment.staging.path) / request.dataset)
    body: dict[str, Any] = {
        "raw": {
            "id": deployment.source.id,
            "path": _collection_path(deployment.source.path, request.raw),
        },
        "qmap_path": _collection_path(deployment.source.path, request.qmap),
        "dataset": {"name": request.dataset},
        "staging": {"id": deployment.staging.id, "path": staging},
        "staging_compute_path": staging,
        "publication": {
            "id": deployment.publication.id,
            "path": str(PurePosixPath(deployment.publication.path) / request.dataset),
        },
        "facility": deployment.name,
        "options": dict(request.options),
        "compute_endpoint": deployment.compute.endpoint_id,
        "user_endpoint_config": deployment.compute.user_endpoint_config(),
        "search_index": deployment.search_index,
        "visible_to": ["public"],
        "transfer_back": False,
        **function_ids,
    }
    if request.live:  # the endpoint reads the beamline storage at this machine's paths
        body["live"] = True
        body["beamline"] = {"raw": str(request.raw), "qmap": str(request.qmap)}
        body["follow"] = dict(request.follow)
    return {"input": body}


def globus_run_client(flow_id: str) -> globus_sdk.SpecificFlowClient:
    """The logged-in user's client for runs of ``flow_id`` (``xpcs-flows login``)."""
    from flows.globus.auth import XPCSLoginManager

    return XPCSLoginManager.from_environment().specific_flow_client(flow_id)


def start_globus(
    request: LaunchRequest,
    deployment: Deployment,
    *,
    label: str,
    tags: Sequence[str],
    decision: Mapping[str, Any] | None,
    attempt: int,
    flow_client: globus_sdk.SpecificFlowClient | None,
    on_start: Callable[[RunIndexEntry], None],
) -> Run:
    """Start the deployed flow on Globus Flows (run monitors/managers from the deployment).

    Raises
    ------
    ConfigurationError
        The flow was never deployed (``xpcs-flows deploy``) or the deployment is incomplete.
    GlobusServiceError
        The service refused the run.
    """
    from flows.globus.deploy import deployed_flow
    from flows.globus.runs import run_body, start_globus_run

    name = GLOBUS_LIVE_FLOW_NAME if request.live else GLOBUS_FLOW_NAME
    record = deployed_flow(name)
    if record is None:
        how = "xpcs-flows deploy --live" if request.live else "xpcs-flows deploy"
        raise ConfigurationError(
            f"the {name} flow is not deployed; run `{how}` first",
            field="flow",
            expected="a deployed flow named " + name,
        )
    flow_input = build_globus_input(request, deployment, function_ids=record.function_ids)
    assert deployment.source is not None
    flow_input = validate_flow_input(
        flow_input,
        allowed_roots={str(deployment.source.id): list(deployment.allowed_roots)},
        live=request.live,
    )
    body = run_body(flow_input["input"], function_ids=record.function_ids)
    client = flow_client if flow_client is not None else globus_run_client(record.flow_id)
    run_id = start_globus_run(
        record.flow_id,
        body,
        label=label,
        tags=tags,
        run_monitors=deployment.run_monitors,
        run_managers=deployment.run_managers,
        client=client,
    )
    entry = RunIndexEntry(
        run_id=run_id,
        engine="globus",
        flow_id=record.flow_id,
        facility=deployment.name,
        dataset=request.dataset,
        label=label,
        launch_id=request.launch_id,
        attempt=attempt,
        publication_key=request.publication_key,
        started_at=time.time(),
        decision=decision,
    )
    on_start(entry)
    return Run(entry, db_path=request.db_path)
