"""Correlate: the Globus Compute (action provider v3) state that runs ``xpcs_kernel``.

The compute function :func:`xpcs_correlate` is self-contained (it imports
inside its body and uses no module globals) so that it survives the
serialization to a Globus Compute endpoint. It takes exactly the keyword
arguments the flow passes (Compute v3 lets the flow choose them; it does not
receive the whole ``$.input`` as gladier's generated states do), raises on any
error (the action fails, the flow's Catch records it) and returns a small JSON
summary.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gladier import GladierBaseTool

from tools._states import (
    COMPUTE_V3_URL,
    HOUR,
    action_state,
    compute_output,
    failed_state_name,
    failure_state,
)

__all__ = [
    "CORRELATE_OUTPUT",
    "CORRELATE_WAIT_TIME",
    "BatchCorrelate",
    "Correlate",
    "xpcs_correlate",
]

#: A correlation may wait days in an HPC queue: 7 days.
CORRELATE_WAIT_TIME = 7 * 24 * HOUR


def xpcs_correlate(
    raw: str,
    qmap: str,
    output_dir: str,
    options: dict[str, object] | None = None,
    name: str | None = None,
) -> dict[str, object]:
    """Correlate one raw dataset with ``xpcs_kernel`` and write the APS result file.

    Parameters
    ----------
    raw, qmap
        Paths of the raw frames and the q-map on the compute endpoint.
    output_dir
        Directory of the result file ``<raw stem>_results.hdf`` (created).
    options
        :class:`xpcs_kernel.options.CorrelationOptions` fields; unknown keys raise.
    name
        The dataset name (echoed back; batch runs tell their tasks apart by it).

    Returns
    -------
    dict
        ``output`` (result path), ``name``, ``n_frames``, ``frame_shape``,
        ``n_dynamic``, ``n_static``, ``mode``, ``path``, ``frame_time``,
        ``timings``, ``fit`` (per q: ``bin``, ``q``, ``tau_c``, ``beta``,
        ``gamma``, ``gamma_err``, ``success``), ``diffusion`` and
        ``software_version``; non-finite numbers become ``None`` (JSON).

    Raises
    ------
    Exception
        Any error of the kernel (bad file, bad option ...): the action fails.
    """
    import math
    import pathlib

    from xpcs_kernel.options import CorrelationOptions
    from xpcs_kernel.pipeline import correlate_file

    def finite(value: object) -> object:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, dict):
            return {str(k): finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    raw_path = pathlib.Path(raw)
    out_dir = pathlib.Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{raw_path.stem}_results.hdf"
    opts = CorrelationOptions.from_dict(dict(options or {}))
    summary = correlate_file(raw_path, qmap, output, options=opts).to_dict()
    keep = ("bin", "q", "phi", "tau_c", "beta", "gamma", "gamma_err", "success")
    fit = [{k: row[k] for k in keep if k in row} for row in summary["fit"]]
    result = {
        "name": name or raw_path.stem,
        "output": str(output),
        "raw": str(raw_path),
        "qmap": str(qmap),
        "mode": summary["mode"],
        "n_frames": summary["n_frames"],
        "frame_shape": summary["frame_shape"],
        "n_dynamic": summary["n_dynamic"],
        "n_static": summary["n_static"],
        "n_pixels": summary["n_pixels"],
        "correlation_rate": summary["correlation_rate"],
        "overall_rate": summary["overall_rate"],
        "path": summary["path"],
        "frame_time": summary["frame_time"],
        "timings": summary["timings"],
        "fit": fit,
        "diffusion": summary["diffusion"],
        "options": opts.to_dict(),
        "software_version": summary["software_version"],
    }
    clean = finite(result)
    assert isinstance(clean, dict)
    return clean


def _correlate_fragment(batch: bool) -> dict[str, Any]:
    if batch:
        tasks: Any = "$.input.plan.correlate_tasks"
        comment = "Correlate every dataset of the batch: one Compute task per dataset"
    else:
        tasks = [
            {
                "function_id.$": "$.input.xpcs_correlate_function_id",
                "kwargs": {
                    "raw.$": "$.Paths.compute_raw",
                    "qmap.$": "$.Paths.compute_qmap",
                    "output_dir.$": "$.Paths.compute_results",
                    "options.$": "$.input.options",
                    "name.$": "$.input.dataset.name",
                },
            }
        ]
        comment = "Correlate the dataset with xpcs_kernel on the facility's Compute endpoint"
    parameters: dict[str, Any] = {
        "endpoint_id.$": "$.input.compute_endpoint",
        "user_endpoint_config.$": "$.input.user_endpoint_config",
    }
    if isinstance(tasks, str):
        parameters["tasks.$"] = tasks
    else:
        parameters["tasks"] = tasks
    return {
        "StartAt": "Correlate",
        "States": {
            "Correlate": action_state(
                "Correlate",
                action_url=COMPUTE_V3_URL,
                parameters=parameters,
                wait_time=CORRELATE_WAIT_TIME,
                comment=comment,
            ),
            failed_state_name("Correlate"): failure_state("Correlate"),
        },
    }


class Correlate(GladierBaseTool):  # type: ignore[misc]
    """Compute v3 state running :func:`xpcs_correlate` on ``$.input.compute_endpoint``.

    The per-run ``user_endpoint_config`` (queue, walltime, nodes, account)
    comes from the deployment through ``$.input.user_endpoint_config``. The
    summary is at ``$.Correlate.details.results[0].output``.
    """

    flow_definition: ClassVar[dict[str, Any]] = _correlate_fragment(batch=False)
    compute_functions: ClassVar[list[Any]] = [xpcs_correlate]
    required_input: ClassVar[list[str]] = [
        "compute_endpoint",
        "user_endpoint_config",
        "options",
        "dataset",
    ]
    flow_input: ClassVar[dict[str, Any]] = {"options": {}, "user_endpoint_config": {}}


class BatchCorrelate(GladierBaseTool):  # type: ignore[misc]
    """Compute v3 fan-out: one :func:`xpcs_correlate` task per dataset, in one action."""

    flow_definition: ClassVar[dict[str, Any]] = _correlate_fragment(batch=True)
    compute_functions: ClassVar[list[Any]] = [xpcs_correlate]
    required_input: ClassVar[list[str]] = ["compute_endpoint", "user_endpoint_config", "plan"]
    flow_input: ClassVar[dict[str, Any]] = {"user_endpoint_config": {}}


#: JSONPath of the single-dataset correlation summary.
CORRELATE_OUTPUT = compute_output("Correlate")
