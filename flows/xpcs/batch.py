"""The batch flow's derived plan: transfer items and one Compute task per dataset.

The Flows definition language cannot map over a list (no loops, no
comprehensions), so the client derives, from ``input.datasets``, the
Transfer ``DATA`` list and the Compute v3 ``tasks`` lists that fan the
correlation and the plots out over the datasets in one action each, and puts
them at ``input.plan``. :func:`check_plan` verifies (before anything runs) that
a plan is exactly what :func:`plan_batch` derives, so a hand-edited plan
cannot point a task at another file.

Layout: dataset ``NAME`` is staged in ``<staging>/NAME/`` and its results are
written to ``<staging>/results/NAME/`` (plots in ``.../plots``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from flows.errors import FlowInputError

__all__ = ["check_plan", "plan_batch", "with_plan"]


def _join(base: str, *parts: str) -> str:
    return str(PurePosixPath(base, *parts))


def plan_batch(body: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The plan of a batch input's ``input`` object (``datasets``, staging, function ids).

    Returns
    -------
    dict
        ``transfer_items`` (raw file and q-map of every dataset, into its
        own staging directory), ``correlate_tasks`` and ``plots_tasks`` (one
        Compute v3 task ``{function_id, kwargs}`` per dataset).
    """
    staging = str(body["staging"]["path"])
    compute = str(body["staging_compute_path"])
    items: list[dict[str, Any]] = []
    correlate: list[dict[str, Any]] = []
    plots: list[dict[str, Any]] = []
    for ds in body["datasets"]:
        name = str(ds["name"])
        raw, qmap = PurePosixPath(ds["raw_path"]), PurePosixPath(ds["qmap_path"])
        items.append({"source_path": str(raw), "destination_path": _join(staging, name, raw.name)})
        items.append(
            {"source_path": str(qmap), "destination_path": _join(staging, name, qmap.name)}
        )
        out_dir = _join(compute, "results", name)
        correlate.append(
            {
                "function_id": body["xpcs_correlate_function_id"],
                "kwargs": {
                    "raw": _join(compute, name, raw.name),
                    "qmap": _join(compute, name, qmap.name),
                    "output_dir": out_dir,
                    "options": dict(body.get("options") or {}),
                    "name": name,
                },
            }
        )
        plots.append(
            {
                "function_id": body["xpcs_plots_function_id"],
                "kwargs": {
                    # the name xpcs_correlate gives its result file
                    "result": _join(out_dir, f"{raw.stem}_results.hdf"),
                    "output_dir": _join(out_dir, "plots"),
                },
            }
        )
    return {"transfer_items": items, "correlate_tasks": correlate, "plots_tasks": plots}


def with_plan(flow_input: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of batch run input ``{"input": {...}}`` with ``input.plan`` (re)derived."""
    body = dict(flow_input["input"])
    body["plan"] = plan_batch(body)
    return {**flow_input, "input": body}


def check_plan(body: Mapping[str, Any]) -> None:
    """Raise :class:`~flows.errors.FlowInputError` for a bad batch (names, paths, plan)."""
    seen: set[str] = set()
    base = PurePosixPath(body["source"]["path"])
    for i, ds in enumerate(body["datasets"]):
        if ds["name"] in seen:
            raise FlowInputError(
                "dataset names must be unique in a batch",
                pointer=f"/input/datasets/{i}/name",
                expected="a name not used by another dataset",
                found=repr(ds["name"]),
            )
        seen.add(ds["name"])
        for key in ("raw_path", "qmap_path"):
            path = PurePosixPath(ds[key])
            if base not in path.parents:
                raise FlowInputError(
                    "path is outside the source directory",
                    pointer=f"/input/datasets/{i}/{key}",
                    expected=f"a path under {base}",
                    found=repr(ds[key]),
                )
        if PurePosixPath(ds["raw_path"]).name == PurePosixPath(ds["qmap_path"]).name:
            raise FlowInputError(
                "the raw file and the q-map have the same name",
                pointer=f"/input/datasets/{i}/qmap_path",
                expected="a file name different from the raw file's",
                found=repr(ds["qmap_path"]),
            )
    expected = plan_batch(body)
    for key, value in expected.items():
        if body["plan"].get(key) != value:
            raise FlowInputError(
                "the plan does not match the datasets (derive it with flows.xpcs.batch.with_plan)",
                pointer=f"/input/plan/{key}",
                expected="the plan derived from input.datasets",
            )
