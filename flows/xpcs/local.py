"""Running the XPCS flow on the local engine: the embedded default.

:func:`run_local_flow` runs the exported definition (:func:`flows.xpcs.definition.xpcs_flow`,
never a hand-written path) on :class:`~flows.local.LocalEngine` with local
providers for the same action URLs. A :class:`LocalFacility` says where each
collection lives on this machine: the beamline collection is this machine's
file system (``/``), the facility staging and publication collections are
directories under a work directory. The compute functions are registered in
the local :class:`~flows.local.FunctionRegistry` (a serialization round trip,
then a fresh worker process per task, as on an endpoint).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.local import (
    ActionProvider,
    CatalogEntry,
    FunctionRegistry,
    LocalCatalog,
    LocalEngine,
    RunStatus,
    default_providers,
    default_state_db,
)
from flows.xpcs.definition import FlowSpec, xpcs_flow
from flows.xpcs.validate import validate_flow_input
from xpcs_kernel.options import CorrelationOptions

__all__ = [
    "LocalFacility",
    "LocalFlowResult",
    "build_local_input",
    "override_wait_times",
    "prepare_local_run",
    "run_local_flow",
]


def _local_id(kind: str, path: Path) -> str:
    """A stable id for a local collection, endpoint or index (derived, not configured)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xpcs-flows-local:{kind}:{path.resolve()}"))


@dataclass(frozen=True)
class LocalFacility:
    """Where the flow's collections, endpoint and search index live on this machine.

    Attributes
    ----------
    name
        The facility name recorded in the catalog.
    collections
        Collection id -> local root directory (the local Transfer provider's map).
    beamline_collection, staging_collection, publication_collection
        The collection ids of the beamline, the facility staging area and the
        publication area (keys of ``collections``).
    staging_path, publication_path
        Collection paths under which each dataset gets its own directory.
    compute_endpoint, search_index
        Ids passed in the flow input (the local providers accept any).
    user_endpoint_config
        Per-run endpoint values (unused locally, recorded in the input).
    allowed_roots
        Collection id -> roots the flow may use there (validated before a run).
    """

    name: str
    collections: Mapping[str, Path]
    beamline_collection: str
    staging_collection: str
    publication_collection: str
    staging_path: str
    publication_path: str
    compute_endpoint: str
    search_index: str
    user_endpoint_config: Mapping[str, Any] = field(default_factory=dict)
    allowed_roots: Mapping[str, Sequence[str]] | None = None

    @classmethod
    def in_directory(
        cls,
        root: Path,
        *,
        name: str = "local",
        beamline_root: Path = Path("/"),
        allowed_roots: Sequence[str] = ("/",),
        user_endpoint_config: Mapping[str, Any] | None = None,
    ) -> LocalFacility:
        """A facility whose staging and publication collections are under ``root``.

        ``root/facility`` is the staging collection, ``root/publication`` the
        publication collection; the beamline collection is ``beamline_root``
        (this machine's file system), where ``allowed_roots`` apply.
        """
        root = Path(root).resolve()
        dirs = {
            "beamline": Path(beamline_root).resolve(),
            "facility": root / "facility",
            "publication": root / "publication",
        }
        ids = {kind: _local_id(f"collection-{kind}", path) for kind, path in dirs.items()}
        return cls(
            name=name,
            collections={ids[kind]: path for kind, path in dirs.items()},
            beamline_collection=ids["beamline"],
            staging_collection=ids["facility"],
            publication_collection=ids["publication"],
            staging_path="/staging",
            publication_path="/published",
            # one endpoint and one catalog index per machine, whatever the work directory,
            # so that re-running a dataset elsewhere still updates its one catalog entry
            compute_endpoint=_local_id("endpoint", dirs["beamline"]),
            search_index=_local_id("search-index", dirs["beamline"]),
            user_endpoint_config=dict(user_endpoint_config or {}),
            allowed_roots={ids["beamline"]: list(allowed_roots)},
        )

    def local_path(self, collection: str, path: str) -> Path:
        """The local file of ``path`` on ``collection``."""
        return Path(self.collections[collection]).joinpath(path.lstrip("/"))

    def collection_path(self, collection: str, local: Path) -> str:
        """The collection path of local file ``local`` (which must be under the root)."""
        rel = Path(local).resolve().relative_to(Path(self.collections[collection]).resolve())
        return "/" + rel.as_posix() if rel.parts else "/"


@dataclass(frozen=True)
class LocalFlowResult:
    """What a local run of the XPCS flow produced.

    ``result_path`` and ``plot_paths`` are the files the compute functions
    wrote (in the facility staging directory), ``published_files`` their
    published copies (the catalog entry's manifest, under ``published_dir``).
    ``result_path``, ``plot_paths``, ``catalog_subject``, ``catalog_entry``,
    ``fitted_rates`` and ``summary`` are empty/``None`` when the run failed;
    ``failure`` then holds ``{"state", "error", "cause"}``.
    """

    run_id: str
    status: RunStatus
    facility: str
    flow_input: Mapping[str, Any]
    result_path: Path | None = None
    plot_paths: tuple[Path, ...] = ()
    published_dir: Path | None = None
    published_files: tuple[Path, ...] = ()
    catalog_subject: str | None = None
    catalog_entry: CatalogEntry | None = None
    fitted_rates: tuple[Mapping[str, Any], ...] = ()
    summary: Mapping[str, Any] | None = None
    failure: Mapping[str, Any] | None = None
    db_path: Path | None = None


def override_wait_times(
    definition: Mapping[str, Any], seconds: float, *, states: Iterable[str] | None = None
) -> dict[str, Any]:
    """A copy of ``definition`` whose Action states (or only ``states``) have ``WaitTime=seconds``.

    For tests of the timeout path; the deployed definition is never changed.
    """
    import copy

    out = copy.deepcopy(dict(definition))
    chosen = set(states) if states is not None else None
    for name, spec in out["States"].items():
        if spec.get("Type") == "Action" and (chosen is None or name in chosen):
            spec["WaitTime"] = seconds
    return out


def build_local_input(
    raw: Path,
    qmap: Path,
    *,
    facility: LocalFacility,
    function_ids: Mapping[str, str],
    options: CorrelationOptions | Mapping[str, Any],
    dataset_name: str | None = None,
    transfer_back: bool = False,
    follow: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The flow input of one local dataset (raw and q-map are local files); with
    ``follow`` (the follower's timing), the live flow's input."""
    name = dataset_name or Path(raw).stem
    opts = options.to_dict() if isinstance(options, CorrelationOptions) else dict(options)
    staging = f"{facility.staging_path}/{name}"
    body: dict[str, Any] = {
        "raw": {
            "id": facility.beamline_collection,
            "path": facility.collection_path(facility.beamline_collection, Path(raw)),
        },
        "qmap_path": facility.collection_path(facility.beamline_collection, Path(qmap)),
        "dataset": {"name": name},
        "staging": {"id": facility.staging_collection, "path": staging},
        "staging_compute_path": str(facility.local_path(facility.staging_collection, staging)),
        "publication": {
            "id": facility.publication_collection,
            "path": f"{facility.publication_path}/{name}",
        },
        "facility": facility.name,
        "options": opts,
        "compute_endpoint": facility.compute_endpoint,
        "user_endpoint_config": dict(facility.user_endpoint_config),
        "search_index": facility.search_index,
        "visible_to": ["public"],
        "transfer_back": transfer_back,
        **function_ids,
    }
    if follow is not None:  # the local endpoint reads the beamline files where they are
        body["live"] = True
        body["beamline"] = {"raw": str(Path(raw).resolve()), "qmap": str(Path(qmap).resolve())}
        body["follow"] = dict(follow)
    if transfer_back:
        body["return_to"] = {
            "id": facility.beamline_collection,
            "path": facility.collection_path(
                facility.beamline_collection, Path(raw).resolve().parent / f"{name}_results"
            ),
        }
    return {"input": body}


def prepare_local_run(
    raw: Path,
    qmap: Path,
    *,
    facility: LocalFacility,
    db_path: Path,
    options: CorrelationOptions | Mapping[str, Any],
    dataset_name: str | None = None,
    transfer_back: bool = False,
    follow: Mapping[str, Any] | None = None,
) -> tuple[FlowSpec, dict[str, Any]]:
    """Everything a local run needs before it starts, shared by every local launcher.

    Creates the facility's directories, registers the compute functions in the
    local registry (as ``deploy`` does on Globus), builds the flow input and
    validates it (so bad input fails before anything is transferred).

    Returns
    -------
    tuple
        The flow (:class:`~flows.xpcs.definition.FlowSpec`) and its validated input.
    """
    for path in facility.collections.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    spec = xpcs_flow(live=follow is not None)  # follow: the live flow
    registry = FunctionRegistry(db_path)
    function_ids = {key: registry.register(fn) for key, fn in spec.compute_functions.items()}
    flow_input = build_local_input(
        raw,
        qmap,
        facility=facility,
        function_ids=function_ids,
        options=options,
        dataset_name=dataset_name,
        transfer_back=transfer_back,
        follow=follow,
    )
    checked = validate_flow_input(
        flow_input, allowed_roots=facility.allowed_roots, live=follow is not None
    )
    return spec, checked


def run_local_flow(
    raw: Path,
    qmap: Path,
    *,
    workdir: Path,
    options: CorrelationOptions | Mapping[str, Any],
    label: str | None = None,
    db_path: Path | None = None,
    dataset_name: str | None = None,
    facility: LocalFacility | None = None,
    tags: Iterable[str] = (),
    transfer_back: bool = False,
    providers: Mapping[str, ActionProvider] | None = None,
    definition: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> LocalFlowResult:
    """Run the XPCS flow on the local engine, end to end, for one dataset.

    Parameters
    ----------
    raw, qmap
        The raw data and q-map files (on this machine: the beamline collection).
    workdir
        Holds the facility staging and publication directories.
    options
        Correlation options (:class:`~xpcs_kernel.options.CorrelationOptions`
        or its dict form).
    label, tags
        Recorded on the run.
    db_path
        The state database (runs, functions, catalog); default the per-user one.
    dataset_name
        Default: the raw file's stem.
    facility
        Default: :meth:`LocalFacility.in_directory` of ``workdir``.
    transfer_back
        Also copy the results back next to the raw file (``<name>_results/``).
    providers
        Action URL -> provider replacing the default local one (fault injection).
    definition
        Run this definition instead of the deployed one (tests only: e.g.
        :func:`override_wait_times`).
    timeout
        Seconds to wait for the run (``RunWaitTimeout`` past it).

    Raises
    ------
    FlowInputError
        Invalid input (before anything is transferred).
    """
    workdir = Path(workdir)
    fac = facility or LocalFacility.in_directory(workdir)
    db = Path(db_path) if db_path is not None else default_state_db()
    spec, flow_input = prepare_local_run(
        raw,
        qmap,
        facility=fac,
        db_path=db,
        options=options,
        dataset_name=dataset_name,
        transfer_back=transfer_back,
    )
    all_providers = default_providers(db, collections=dict(fac.collections))
    all_providers.update(providers or {})
    engine = LocalEngine(db, all_providers)
    run_id = engine.start_run(
        definition if definition is not None else spec.definition,
        flow_input,
        label=label or f"XPCS {flow_input['input']['dataset']['name']}",
        tags=tags,
    )
    record = engine.run_until_done(run_id, timeout=timeout)
    return _result(record.run_id, record.status, record.state, fac, flow_input, db)


def _result(
    run_id: str,
    status: RunStatus,
    state: Any,
    fac: LocalFacility,
    flow_input: Mapping[str, Any],
    db: Path,
) -> LocalFlowResult:
    base = LocalFlowResult(
        run_id=run_id, status=status, facility=fac.name, flow_input=flow_input, db_path=db
    )
    if status is not RunStatus.SUCCEEDED:
        failure = state.get("Failure") if isinstance(state, Mapping) else None
        return LocalFlowResult(**{**base.__dict__, "failure": failure})
    result = state["Result"]
    summary = state["Correlate"]["details"]["results"][0]["output"]
    publication = flow_input["input"]["publication"]
    entry = LocalCatalog(db).get(flow_input["input"]["search_index"], result["subject"])
    published_dir = fac.local_path(publication["id"], publication["path"])
    manifest = entry.content.get("manifest", []) if entry is not None else []
    return LocalFlowResult(
        **{
            **base.__dict__,
            "result_path": Path(result["result"]),
            "plot_paths": tuple(Path(p) for p in result["plots"]),
            "published_dir": published_dir,
            "published_files": tuple(published_dir / m["path"] for m in manifest),
            "catalog_subject": result["subject"],
            "catalog_entry": entry,
            "fitted_rates": tuple(summary.get("fit") or ()),
            "summary": summary,
        }
    )
