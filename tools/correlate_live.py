"""CorrelateLive: the live flow's first steps, following the raw file while it is written.

A live run cannot copy its raw file first (a growing file fails the
transfer's checksum check), so the live flow has no TransferIn: its
``PlanPaths`` derives the same ``$.Paths`` as the normal flow's, except that
the Compute endpoint reads the raw file and the q-map where the beamline
writes them (``$.input.beamline``; only facilities whose descriptor says
``capabilities.reads_beamline_storage = true`` are given live runs). Its
``Correlate`` state runs :func:`xpcs_correlate_live`, which follows the file
until the writer's done marker appears (or no frame came for ``idle``
seconds), replacing the result in the facility staging area with the
results so far, and returns the offline Correlate summary; Plots, Publish
and TransferBack then run as in the normal flow, once, on the complete
result. Its Catch goes to the failure path: a failed follow never publishes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gladier import GladierBaseTool

from tools._states import (
    COMPUTE_V3_URL,
    action_state,
    failed_state_name,
    failure_state,
)
from tools.correlate import CORRELATE_WAIT_TIME
from tools.transfer_in import PLAN_PATHS

__all__ = ["LIVE_PLAN_PATHS", "CorrelateLive", "xpcs_correlate_live"]

#: ``$.Paths`` of the live flow: the compute side reads the beamline's own files.
LIVE_PLAN_PATHS: dict[str, str] = {
    **PLAN_PATHS,
    "compute_raw.=": "input.beamline.raw",
    "compute_qmap.=": "input.beamline.qmap",
}


def xpcs_correlate_live(
    raw: str,
    qmap: str,
    output_dir: str,
    options: dict[str, object] | None = None,
    name: str | None = None,
    follow: dict[str, object] | None = None,
) -> dict[str, object]:
    """Follow the growing raw file ``raw`` with ``xpcs_kernel`` until it is complete.

    Parameters
    ----------
    raw, qmap
        The raw file being written and the q-map, as the endpoint sees them.
    output_dir
        Directory of ``<raw stem>_results.hdf``, replaced with the results so
        far every ``follow["update"]`` seconds, then with the final result.
    options
        :class:`xpcs_kernel.options.CorrelationOptions` fields (multi-tau).
    name
        The dataset name (echoed back).
    follow
        ``idle``, ``update``, ``done_marker``, ``checkpoint`` (seconds, suffix).

    Returns
    -------
    dict
        The offline Correlate summary (``output``, ``n_frames``, ``fit`` ...)
        with ``live: True`` (:func:`xpcs_kernel.live.task.follow_task`).

    Raises
    ------
    Exception
        Any error of the follower (no frame arrived, bad file, bad option):
        the action fails and nothing is published.
    """
    from xpcs_kernel.live.task import follow_task

    return follow_task(raw, qmap, output_dir, options=options, name=name, follow=follow)


def _correlate_live_fragment() -> dict[str, Any]:
    task = {
        "function_id.$": "$.input.xpcs_correlate_live_function_id",
        "kwargs": {
            "raw.$": "$.Paths.compute_raw",
            "qmap.$": "$.Paths.compute_qmap",
            "output_dir.$": "$.Paths.compute_results",
            "options.$": "$.input.options",
            "name.$": "$.input.dataset.name",
            "follow.$": "$.input.follow",
        },
    }
    return {
        "StartAt": "PlanPaths",
        "States": {
            "PlanPaths": {
                "Comment": "Derive the beamline-side, result paths and the Search subject",
                "Type": "ExpressionEval",
                "Parameters": dict(LIVE_PLAN_PATHS),
                "ResultPath": "$.Paths",
                "Next": "Correlate",
            },
            "Correlate": action_state(
                "Correlate",
                action_url=COMPUTE_V3_URL,
                parameters={
                    "endpoint_id.$": "$.input.compute_endpoint",
                    "user_endpoint_config.$": "$.input.user_endpoint_config",
                    "tasks": [task],
                },
                wait_time=CORRELATE_WAIT_TIME,
                comment="Follow the raw file while the detector writes it; end when complete",
            ),
            failed_state_name("Correlate"): failure_state("Correlate"),
        },
    }


class CorrelateLive(GladierBaseTool):  # type: ignore[misc]
    """PlanPaths and a Compute v3 state running :func:`xpcs_correlate_live` on the
    endpoint that reads the beamline storage (``$.input.compute_endpoint``).

    The summary is at ``$.Correlate.details.results[0].output``, as in the
    normal flow, so the later tools are shared.
    """

    flow_definition: ClassVar[dict[str, Any]] = _correlate_live_fragment()
    compute_functions: ClassVar[list[Any]] = [xpcs_correlate_live]
    required_input: ClassVar[list[str]] = [
        "live",
        "beamline",
        "staging_compute_path",
        "compute_endpoint",
        "user_endpoint_config",
        "options",
        "dataset",
    ]
    flow_input: ClassVar[dict[str, Any]] = {
        "options": {},
        "user_endpoint_config": {},
        "follow": {},
    }
