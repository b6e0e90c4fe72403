"""Running the batch XPCS flow on the local engine (many local datasets, one run).

Same machinery as :mod:`flows.xpcs.local`: the exported batch definition, the
local providers, the compute functions registered in the local registry; the
input's plan is derived by :func:`flows.xpcs.batch.with_plan` and validated
before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flows.local import (
    FunctionRegistry,
    LocalEngine,
    RunRecord,
    default_providers,
    default_state_db,
)
from flows.xpcs.batch import with_plan
from flows.xpcs.definition import xpcs_flow
from flows.xpcs.local import LocalFacility
from flows.xpcs.validate import validate_flow_input
from xpcs_kernel.options import CorrelationOptions

__all__ = ["run_local_batch_flow"]


def run_local_batch_flow(
    datasets: Sequence[tuple[str, Path, Path]],
    *,
    workdir: Path,
    options: CorrelationOptions | Mapping[str, Any],
    batch_name: str,
    db_path: Path | None = None,
    facility: LocalFacility | None = None,
    label: str | None = None,
    timeout: float | None = None,
) -> RunRecord:
    """Run the batch flow locally: ``datasets`` are ``(name, raw, qmap)`` local files.

    The raw and q-map files must share a directory above them (the source
    collection path). Returns the final run record (``$.Result`` holds the
    subject; ``$.Correlate.details.results`` one summary per dataset).
    """
    fac = facility or LocalFacility.in_directory(Path(workdir))
    for path in fac.collections.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    db = Path(db_path) if db_path is not None else default_state_db()
    spec = xpcs_flow(batch=True)
    registry = FunctionRegistry(db)
    function_ids = {key: registry.register(fn) for key, fn in spec.compute_functions.items()}
    beamline = fac.beamline_collection
    files = [Path(p).resolve() for _, raw, qmap in datasets for p in (raw, qmap)]
    base = Path(os.path.commonpath([str(p.parent) for p in files]))
    staging = f"{fac.staging_path}/{batch_name}"
    opts = options.to_dict() if isinstance(options, CorrelationOptions) else dict(options)
    body: dict[str, Any] = {
        "source": {"id": beamline, "path": fac.collection_path(beamline, base)},
        "batch": {"name": batch_name},
        "datasets": [
            {
                "name": name,
                "raw_path": fac.collection_path(beamline, Path(raw)),
                "qmap_path": fac.collection_path(beamline, Path(qmap)),
            }
            for name, raw, qmap in datasets
        ],
        "staging": {"id": fac.staging_collection, "path": staging},
        "staging_compute_path": str(fac.local_path(fac.staging_collection, staging)),
        "publication": {
            "id": fac.publication_collection,
            "path": f"{fac.publication_path}/{batch_name}",
        },
        "facility": fac.name,
        "options": opts,
        "compute_endpoint": fac.compute_endpoint,
        "user_endpoint_config": dict(fac.user_endpoint_config),
        "search_index": fac.search_index,
        "visible_to": ["public"],
        **function_ids,
    }
    flow_input = validate_flow_input(
        with_plan({"input": body}), allowed_roots=fac.allowed_roots, batch=True
    )
    engine = LocalEngine(db, default_providers(db, collections=dict(fac.collections)))
    run_id = engine.start_run(
        spec.definition, flow_input, label=label or f"XPCS batch {batch_name}"
    )
    return engine.run_until_done(run_id, timeout=timeout)
