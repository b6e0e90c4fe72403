"""The input schemas of the XPCS flows (the Globus web app renders them as start forms).

:func:`input_schema` returns the JSON Schema (draft 7 keywords only, which
the Flows service accepts) of the single-dataset flow or of the batch flow.
Collection/path inputs are ``{"id", "path"}`` objects with ``format:
"globus-collection"`` (the web app shows a collection and path picker). The
correlation options mirror :class:`xpcs_kernel.options.CorrelationOptions`
field by field (types, ranges, defaults); a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any

from flows.xpcs.options_schema import correlation_options_schema

__all__ = ["FUNCTION_ID_KEYS", "correlation_options_schema", "input_schema"]

#: Flow-input keys holding the Globus Compute function ids (gladier's naming).
FUNCTION_ID_KEYS = (
    "xpcs_correlate_function_id",
    "xpcs_plots_function_id",
    "xpcs_publish_metadata_function_id",
)

# Absolute, no empty component, no trailing slash, no ".." component.
_PATH = r"^(?!.*/\.\.(/|$))(/[^/]+)+$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


def _uuid(title: str, description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "format": "uuid",
        "minLength": 1,
        "title": title,
        "description": description,
    }


def _path(title: str, description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": _PATH, "title": title, "description": description}


def _collection(title: str, description: str, path_description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "format": "globus-collection",
        "title": title,
        "description": description,
        "required": ["id", "path"],
        "additionalProperties": False,
        "properties": {
            "id": _uuid("Collection", "UUID of the Globus collection"),
            "path": _path("Path", path_description),
        },
    }


def _common_properties() -> dict[str, Any]:
    return {
        "staging": _collection(
            "Facility staging",
            "The facility collection and the directory where this run's data is staged",
            "Staging directory on the facility collection (created)",
        ),
        "staging_compute_path": _path(
            "Staging directory on the compute endpoint",
            "The staging directory as the Compute endpoint's file system sees it",
        ),
        "publication": _collection(
            "Publication",
            "Where the results are published",
            "Directory of the published results",
        ),
        "return_to": _collection(
            "Return results to",
            "Where results are copied back when transfer_back is true",
            "Directory on the beamline collection",
        ),
        "transfer_back": {
            "type": "boolean",
            "default": False,
            "title": "Transfer back",
            "description": "Copy the results back to return_to",
        },
        "facility": {
            "type": "string",
            "minLength": 1,
            "title": "Facility",
            "description": "Name of the facility that runs the correlation",
        },
        "options": correlation_options_schema(),
        "compute_endpoint": _uuid("Compute endpoint", "Globus Compute endpoint of the facility"),
        "user_endpoint_config": {
            "type": "object",
            "title": "Endpoint configuration",
            "description": "Per-run values of the endpoint's template (queue, walltime, nodes)",
            "properties": {
                "queue": {"type": "string", "title": "Queue", "description": "Batch queue"},
                "account": {
                    "type": "string",
                    "title": "Account",
                    "description": "Allocation charged",
                },
                "walltime": {
                    "type": "string",
                    "pattern": r"^\d+:\d{2}:\d{2}$",
                    "title": "Walltime",
                    "description": "HH:MM:SS",
                },
                "nodes": {
                    "type": "integer",
                    "minimum": 1,
                    "title": "Nodes",
                    "description": "Nodes per job",
                },
            },
            "additionalProperties": {"type": ["string", "integer", "number", "boolean"]},
        },
        "search_index": _uuid("Search index", "Globus Search index of the published results"),
        "visible_to": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 1,
            "default": ["public"],
            "title": "Visible to",
            "description": "Principals who may see the catalog entry ('public' or URNs)",
        },
        **{
            key: _uuid(f"{key} (set by deploy)", "Globus Compute function id (gladier naming)")
            for key in FUNCTION_ID_KEYS
        },
    }


_COMMON_REQUIRED = [
    "staging",
    "staging_compute_path",
    "publication",
    "facility",
    "options",
    "compute_endpoint",
    "user_endpoint_config",
    "search_index",
    "visible_to",
    *FUNCTION_ID_KEYS,
]

_DESCRIBE = {
    "experiment": {"type": "string", "title": "Experiment", "description": "Experiment id"},
    "beamline": {"type": "string", "title": "Beamline", "description": "e.g. 8-ID-I"},
    "sample": {"type": "string", "title": "Sample", "description": "Sample name"},
    "proposal": {"type": "string", "title": "Proposal", "description": "Proposal number"},
    "description": {"type": "string", "title": "Description", "description": "Free text"},
    "creators": {
        "type": "array",
        "items": {"type": "string"},
        "title": "Creators",
        "description": "People credited in the DataCite record",
    },
    "subject": {
        "type": "string",
        "minLength": 1,
        "title": "Search subject",
        "description": "Stable id of the catalog entry (default: globus://<raw>)",
    },
}


def _single() -> dict[str, Any]:
    props = {
        "raw": _collection(
            "Raw data", "The raw data file on the beamline collection", "Path of the raw file"
        ),
        "qmap_path": _path("Q-map", "Path of the q-map file on the raw data's collection"),
        "dataset": {
            "type": "object",
            "title": "Dataset",
            "description": "What was measured (recorded in the catalog entry)",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": _NAME,
                    "title": "Name",
                    "description": "Dataset name (letters, digits, _ . -)",
                },
                **_DESCRIBE,
            },
        },
        **_common_properties(),
    }
    return {"properties": props, "required": ["raw", "qmap_path", "dataset", *_COMMON_REQUIRED]}


def _batch() -> dict[str, Any]:
    item = {"type": "object", "additionalProperties": True}
    props = {
        "source": _collection(
            "Beamline collection", "The beamline collection holding the raw data", "Base path"
        ),
        "batch": {
            "type": "object",
            "title": "Batch",
            "description": "The batch as a whole (one catalog entry)",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": _NAME,
                    "title": "Name",
                    "description": "Batch name",
                },
                **_DESCRIBE,
            },
        },
        "datasets": {
            "type": "array",
            "title": "Datasets",
            "description": "The datasets of the batch",
            "minItems": 1,
            "maxItems": 32,
            "items": {
                "type": "object",
                "required": ["name", "raw_path", "qmap_path"],
                "additionalProperties": False,
                "properties": {
                    "name": {
                        "type": "string",
                        "pattern": _NAME,
                        "title": "Name",
                        "description": "Dataset name, unique in the batch",
                    },
                    "raw_path": _path("Raw file", "Path on the source collection"),
                    "qmap_path": _path("Q-map", "Path on the source collection"),
                },
            },
        },
        "plan": {
            "type": "object",
            "title": "Plan (derived)",
            "description": "Transfer items and Compute tasks derived from datasets by the client",
            "required": ["transfer_items", "correlate_tasks", "plots_tasks"],
            "additionalProperties": False,
            "properties": {
                key: {
                    "type": "array",
                    "items": item,
                    "minItems": 1,
                    "title": key,
                    "description": "Derived; do not edit",
                }
                for key in ("transfer_items", "correlate_tasks", "plots_tasks")
            },
        },
        **_common_properties(),
    }
    return {
        "properties": props,
        "required": ["source", "batch", "datasets", "plan", *_COMMON_REQUIRED],
    }


def input_schema(*, batch: bool = False, live: bool = False) -> dict[str, Any]:
    """The flow's input schema: ``{"input": {...}}`` with every field titled and described.

    Parameters
    ----------
    batch
        The batch flow's schema instead of the single-dataset one.
    live
        The live flow's schema: the single-dataset one with ``live``,
        ``beamline`` and ``follow`` (:func:`flows.xpcs.live_schema.add_live`).
    """
    body = _batch() if batch else _single()
    if live:
        from flows.xpcs.live_schema import add_live

        body = add_live(body)
    inner: dict[str, Any] = {
        "type": "object",
        "title": "XPCS batch" if batch else "XPCS dataset",
        "description": "What to correlate, where, and where to publish it",
        "additionalProperties": False,
        **body,
        "if": {"properties": {"transfer_back": {"const": True}}, "required": ["transfer_back"]},
        "then": {"required": ["return_to"]},
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "title": "XPCS batch flow input" if batch else "XPCS flow input",
        "required": ["input"],
        "additionalProperties": False,
        "properties": {"input": inner},
    }
