"""Publish: metadata and manifest, transfer to the publication collection, Search ingest.

Three states, in this order so that a catalog entry never points at data that
is not there:

1. ``PublishMetadata`` (Compute v3): :func:`xpcs_publish_metadata` gathers
   dataset, experiment, facility, parameters, software versions, timings and
   fitted rates, lists every result file with its size and sha256, adds
   DataCite-style fields, writes ``metadata.json`` next to the results and
   returns the Search document;
2. ``PublishTransfer``: the results directory to the publication collection;
3. ``PublishIngest``: the document into the Globus Search index, with the
   dataset's stable subject (a re-run replaces the entry instead of adding one).
"""

from __future__ import annotations

from typing import Any, ClassVar

from gladier import GladierBaseTool

from tools._states import (
    COMPUTE_V3_URL,
    HOUR,
    SEARCH_INGEST_URL,
    TRANSFER_URL,
    action_state,
    compute_output,
    failed_state_name,
    failure_state,
)

__all__ = ["BatchPublish", "Publish", "xpcs_publish_metadata"]


def xpcs_publish_metadata(
    results_dir: str,
    subject: str,
    dataset: dict[str, object],
    correlation: dict[str, object] | list[object],
    plots: dict[str, object] | list[object] | None = None,
    facility: str | None = None,
    source: dict[str, object] | None = None,
    publication: dict[str, object] | None = None,
    options: dict[str, object] | None = None,
    run_id: str | None = None,
) -> dict[str, object]:
    """Build the Search document of a run and write it to ``results_dir/metadata.json``.

    Parameters
    ----------
    results_dir
        The directory holding the result file(s) and plots (compute-side path).
    subject
        The stable Search subject of the dataset (or batch).
    dataset
        The flow input's dataset (or batch) description: ``name`` and optional
        ``experiment``, ``beamline``, ``sample``, ``proposal``, ``creators``,
        ``description``.
    correlation
        The Correlate summary (one dataset), or the Compute ``results`` list of
        a batch (each with an ``output``).
    plots
        The Plots output (or the batch's results list).
    facility, source, publication, options, run_id
        Where it ran, the raw data's collection/path, the publication
        collection/path, the correlation options and the flow run id.

    Returns
    -------
    dict
        ``subject``, ``content`` (the Search document), ``n_files`` and
        ``total_bytes`` of the manifest.

    Raises
    ------
    Exception
        A missing results directory, an unreadable file or a correlation
        summary without a result: the action fails and nothing is published.
    """
    import datetime
    import hashlib
    import json
    import os
    import pathlib
    import platform

    def outputs(value: object) -> list[object]:
        if value is None:
            return []
        if isinstance(value, list):
            return [v["output"] if isinstance(v, dict) and "output" in v else v for v in value]
        return [value]

    def sha256(path: pathlib.Path) -> str:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    root = pathlib.Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    summaries: list[Any] = outputs(correlation)
    if not summaries or not all(isinstance(s, dict) and s.get("output") for s in summaries):
        raise ValueError("the correlation summary names no result file: nothing to publish")
    for summary in summaries:
        if not pathlib.Path(summary["output"]).is_file():
            raise FileNotFoundError(f"result file {summary['output']} does not exist")
    manifest: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts):
            continue
        if rel.as_posix() == "metadata.json":
            continue
        manifest.append(
            {"path": rel.as_posix(), "size": path.stat().st_size, "sha256": sha256(path)}
        )
    total = sum(item["size"] for item in manifest)

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for module in ("xpcs_kernel", "numpy", "scipy", "h5py", "numba", "matplotlib"):
        try:
            versions[module] = str(__import__(module).__version__)
        except (ImportError, AttributeError):
            versions[module] = None
    results: list[dict[str, Any]] = []
    rates: list[dict[str, Any]] = []
    for summary in summaries:
        results.append(
            {
                key: summary.get(key)
                for key in (
                    "name",
                    "mode",
                    "n_frames",
                    "frame_shape",
                    "n_dynamic",
                    "n_static",
                    "frame_time",
                    "timings",
                    "diffusion",
                    "software_version",
                )
            }
            | {"result_file": pathlib.Path(summary["output"]).name}
        )
        for row in summary.get("fit") or []:
            rates.append({"dataset": summary.get("name")} | dict(row))
    now = datetime.datetime.now(datetime.UTC)
    info: dict[str, Any] = dict(dataset)
    name = str(info.get("name", ""))
    creators: list[Any] = list(info.get("creators") or [])
    src: dict[str, Any] = dict(source or {})
    pub: dict[str, Any] = dict(publication or {})
    datacite = {
        "identifier": {"identifier": subject, "identifierType": "URL"},
        "titles": [{"title": f"XPCS correlation results: {name}"}],
        "creators": [{"creatorName": str(c)} for c in creators],
        "publisher": facility or "xpcs-flows",
        "publicationYear": str(now.year),
        "resourceType": {"resourceTypeGeneral": "Dataset", "resourceType": "XPCS results"},
        "subjects": [{"subject": s} for s in ("XPCS", "X-ray photon correlation spectroscopy")],
        "dates": [{"date": now.isoformat(timespec="seconds"), "dateType": "Created"}],
        "formats": sorted({pathlib.PurePosixPath(m["path"]).suffix.lstrip(".") for m in manifest}),
        "sizes": [f"{total} bytes", f"{len(manifest)} files"],
        "descriptions": [
            {
                "description": info.get("description")
                or f"Multi-tau/two-time correlation of {name} computed by xpcs-flows",
                "descriptionType": "Abstract",
            }
        ],
        "relatedIdentifiers": [
            {
                "relatedIdentifier": f"globus://{src.get('id')}{src.get('path')}",
                "relatedIdentifierType": "URL",
                "relationType": "IsDerivedFrom",
            }
        ]
        if src
        else [],
        "version": versions.get("xpcs_kernel"),
    }
    content = {
        "dataset": info,
        "experiment": info.get("experiment"),
        "facility": facility,
        "source": src,
        "publication": pub,
        "parameters": dict(options or {}),
        "software": versions,
        "results": results,
        "fitted_rates": rates,
        "manifest": manifest,
        "datacite": datacite,
        "run_id": run_id,
        "published": now.isoformat(timespec="seconds"),
    }
    target = root / "metadata.json"
    partial = root / ".metadata.json.partial"
    partial.write_text(json.dumps({"subject": subject, "content": content}, indent=2))
    os.replace(partial, target)
    return {"subject": subject, "content": content, "n_files": len(manifest), "total_bytes": total}


def _publish_fragment(batch: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "results_dir.$": "$.Paths.compute_results",
        "subject.$": "$.Paths.subject",
        "facility.$": "$.input.facility",
        "publication.$": "$.input.publication",
        "options.$": "$.input.options",
        "run_id.$": "$._context.run_id",
    }
    if batch:
        kwargs |= {
            "dataset.$": "$.input.batch",
            "correlation.$": "$.Correlate.details.results",
            "plots.$": "$.Plots.details.results",
            "source.$": "$.input.source",
        }
    else:
        kwargs |= {
            "dataset.$": "$.input.dataset",
            "correlation.$": compute_output("Correlate"),
            "plots.$": compute_output("Plots"),
            "source.$": "$.input.raw",
        }
    metadata = compute_output("PublishMetadata")
    return {
        "StartAt": "PublishMetadata",
        "States": {
            "PublishMetadata": action_state(
                "PublishMetadata",
                action_url=COMPUTE_V3_URL,
                parameters={
                    "endpoint_id.$": "$.input.compute_endpoint",
                    "user_endpoint_config.$": "$.input.user_endpoint_config",
                    "tasks": [
                        {
                            "function_id.$": "$.input.xpcs_publish_metadata_function_id",
                            "kwargs": kwargs,
                        }
                    ],
                },
                wait_time=24 * HOUR,
                comment="Gather metadata, a sha256 manifest and DataCite fields",
                next_state="PublishTransfer",
            ),
            failed_state_name("PublishMetadata"): failure_state("PublishMetadata"),
            "PublishTransfer": action_state(
                "PublishTransfer",
                action_url=TRANSFER_URL,
                parameters={
                    "source_endpoint.$": "$.input.staging.id",
                    "destination_endpoint.$": "$.input.publication.id",
                    "verify_checksum": True,
                    "label": "XPCS results publication",
                    "DATA": [
                        {
                            "source_path.$": "$.Paths.staged_results",
                            "destination_path.$": "$.input.publication.path",
                            "recursive": True,
                        }
                    ],
                },
                wait_time=12 * HOUR,
                comment="Copy the results to the publication collection",
                next_state="PublishIngest",
            ),
            failed_state_name("PublishTransfer"): failure_state("PublishTransfer"),
            "PublishIngest": action_state(
                "PublishIngest",
                action_url=SEARCH_INGEST_URL,
                parameters={
                    "search_index.$": "$.input.search_index",
                    "subject.$": f"{metadata}.subject",
                    "visible_to.$": "$.input.visible_to",
                    "content.$": f"{metadata}.content",
                },
                wait_time=HOUR,
                comment="Ingest the document into Globus Search (same subject: entry replaced)",
            ),
            failed_state_name("PublishIngest"): failure_state("PublishIngest"),
        },
    }


_REQUIRED = ["compute_endpoint", "search_index", "publication", "facility", "visible_to"]


class Publish(GladierBaseTool):  # type: ignore[misc]
    """Metadata + manifest (Compute), transfer to publication, Search ingest."""

    flow_definition: ClassVar[dict[str, Any]] = _publish_fragment(batch=False)
    compute_functions: ClassVar[list[Any]] = [xpcs_publish_metadata]
    required_input: ClassVar[list[str]] = [*_REQUIRED, "dataset"]
    flow_input: ClassVar[dict[str, Any]] = {"visible_to": ["public"]}


class BatchPublish(GladierBaseTool):  # type: ignore[misc]
    """:class:`Publish` for a batch: one document (one subject) for the whole batch."""

    flow_definition: ClassVar[dict[str, Any]] = _publish_fragment(batch=True)
    compute_functions: ClassVar[list[Any]] = [xpcs_publish_metadata]
    required_input: ClassVar[list[str]] = [*_REQUIRED, "batch"]
    flow_input: ClassVar[dict[str, Any]] = {"visible_to": ["public"]}
