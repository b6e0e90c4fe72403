"""TransferIn: raw data and q-map from the beamline collection to the facility staging path.

The fragment starts with ``PlanPaths``, an ExpressionEval that derives every
path the later states use (``$.Paths``: the staged file names on the staging
collection, the same files as the Compute endpoint sees them, the results and
plots directories, and the Search subject of the dataset), then the Transfer
action (checksum verification on). Nothing is published or computed when the
transfer fails: its Catch goes to the failure path.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gladier import GladierBaseTool

from tools._states import HOUR, TRANSFER_URL, action_state, failed_state_name, failure_state

__all__ = [
    "BATCH_PLAN_PATHS",
    "PLAN_PATHS",
    "TRANSFER_WAIT_TIME",
    "BatchTransferIn",
    "TransferIn",
]

#: Transfers of large datasets over a busy WAN can take hours.
TRANSFER_WAIT_TIME = 12 * HOUR

_RAW_NAME = "pathsplit(input.raw.path)[1]"
_QMAP_NAME = "pathsplit(input.qmap_path)[1]"

#: ``$.Paths`` of the single-dataset flow (``.=`` expressions on the run state).
PLAN_PATHS: dict[str, str] = {
    "raw_name.=": _RAW_NAME,
    "qmap_name.=": _QMAP_NAME,
    "staged_raw.=": f"input.staging.path + '/' + {_RAW_NAME}",
    "staged_qmap.=": f"input.staging.path + '/' + {_QMAP_NAME}",
    "staged_results.=": "input.staging.path + '/results'",
    "compute_raw.=": f"input.staging_compute_path + '/' + {_RAW_NAME}",
    "compute_qmap.=": f"input.staging_compute_path + '/' + {_QMAP_NAME}",
    "compute_results.=": "input.staging_compute_path + '/results'",
    "compute_plots.=": "input.staging_compute_path + '/results/plots'",
    "subject.=": (
        "getattr(input.dataset, 'subject', 'globus://' + input.raw.id + input.raw.path)"
    ),
}

#: ``$.Paths`` of the batch flow (per-dataset paths are in ``$.input.plan``).
BATCH_PLAN_PATHS: dict[str, str] = {
    "staged_results.=": "input.staging.path + '/results'",
    "compute_results.=": "input.staging_compute_path + '/results'",
    "subject.=": (
        "getattr(input.batch, 'subject', 'globus://' + input.source.id + input.source.path"
        " + '#' + input.batch.name)"
    ),
}


def _plan_state(paths: dict[str, str]) -> dict[str, Any]:
    return {
        "Comment": "Derive the staged, compute-side and result paths and the Search subject",
        "Type": "ExpressionEval",
        "Parameters": dict(paths),
        "ResultPath": "$.Paths",
        "Next": "TransferIn",
    }


def _transfer_in_fragment(batch: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "destination_endpoint.$": "$.input.staging.id",
        "verify_checksum": True,
    }
    if batch:
        parameters["source_endpoint.$"] = "$.input.source.id"
        parameters["DATA.$"] = "$.input.plan.transfer_items"
        parameters["label.="] = "'XPCS batch in ' + input.batch.name"
    else:
        parameters["source_endpoint.$"] = "$.input.raw.id"
        parameters["DATA"] = [
            {"source_path.$": "$.input.raw.path", "destination_path.$": "$.Paths.staged_raw"},
            {"source_path.$": "$.input.qmap_path", "destination_path.$": "$.Paths.staged_qmap"},
        ]
        parameters["label.="] = "'XPCS in ' + input.dataset.name"
    return {
        "StartAt": "PlanPaths",
        "States": {
            "PlanPaths": _plan_state(BATCH_PLAN_PATHS if batch else PLAN_PATHS),
            "TransferIn": action_state(
                "TransferIn",
                action_url=TRANSFER_URL,
                parameters=parameters,
                wait_time=TRANSFER_WAIT_TIME,
                comment="Copy raw data and q-map to the staging path (checksums verified)",
            ),
            failed_state_name("TransferIn"): failure_state("TransferIn"),
        },
    }


class TransferIn(GladierBaseTool):  # type: ignore[misc]
    """Transfer the raw file and q-map of one dataset to the facility's staging path."""

    flow_definition: ClassVar[dict[str, Any]] = _transfer_in_fragment(batch=False)
    required_input: ClassVar[list[str]] = [
        "raw",
        "qmap_path",
        "staging",
        "staging_compute_path",
        "dataset",
    ]
    flow_input: ClassVar[dict[str, Any]] = {}


class BatchTransferIn(GladierBaseTool):  # type: ignore[misc]
    """Transfer every dataset of a batch (``$.input.plan.transfer_items``) in one task."""

    flow_definition: ClassVar[dict[str, Any]] = _transfer_in_fragment(batch=True)
    required_input: ClassVar[list[str]] = [
        "source",
        "staging",
        "staging_compute_path",
        "batch",
        "plan",
    ]
    flow_input: ClassVar[dict[str, Any]] = {}
