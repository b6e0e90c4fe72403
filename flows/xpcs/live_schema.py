"""The live flow's input: the single-dataset input plus what following a file needs.

``live`` (always ``true``: the input says which flow it is for), ``beamline``
(the raw file and the q-map as the Compute endpoint sees them on the
beamline storage it reads) and ``follow`` (the follower's timing), plus the
function id of the live Correlate function. The non-live schemas are not
changed by this module: :func:`flows.xpcs.schema.input_schema` adds these
only with ``live=True``.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["LIVE_FUNCTION_ID_KEY", "add_live"]

#: The flow-input key of the live Correlate function's id.
LIVE_FUNCTION_ID_KEY = "xpcs_correlate_live_function_id"

# as flows.xpcs.schema's paths: absolute, no empty component or trailing slash, no ".."
_PATH = r"^(?!.*/\.\.(/|$))(/[^/]+)+$"


def _seconds(title: str, description: str) -> dict[str, Any]:
    return {"type": "number", "minimum": 0, "title": title, "description": description}


def _beamline_path(title: str, description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": _PATH, "title": title, "description": description}


_LIVE_PROPERTIES: dict[str, Any] = {
    "live": {
        "type": "boolean",
        "const": True,
        "title": "Live",
        "description": "Follow the raw file while the detector writes it (the live flow)",
    },
    "beamline": {
        "type": "object",
        "title": "Beamline storage (as the Compute endpoint sees it)",
        "description": "The files the endpoint follows where the beamline writes them",
        "required": ["raw", "qmap"],
        "additionalProperties": False,
        "properties": {
            "raw": _beamline_path("Raw file", "The raw file being written"),
            "qmap": _beamline_path("Q-map", "The q-map file"),
        },
    },
    "follow": {
        "type": "object",
        "title": "Follow",
        "description": "When the follower writes the results so far and when it stops",
        "additionalProperties": False,
        "properties": {
            "idle": _seconds("Idle", "End after this many seconds without a new frame"),
            "update": _seconds("Update", "Replace the result with the results so far this often"),
            "checkpoint": _seconds("Checkpoint", "Save the state for a restart this often"),
            "done_marker": {
                "type": "string",
                "title": "Done marker",
                "description": "End once RAW + this suffix exists ('' for none)",
            },
        },
    },
    LIVE_FUNCTION_ID_KEY: {
        "type": "string",
        "format": "uuid",
        "minLength": 1,
        "title": f"{LIVE_FUNCTION_ID_KEY} (set by deploy)",
        "description": "Globus Compute function id (gladier naming)",
    },
}


def add_live(body: dict[str, Any]) -> dict[str, Any]:
    """The single-dataset schema body (``properties``, ``required``) made the live one."""
    out = copy.deepcopy(body)
    out["properties"].update(copy.deepcopy(_LIVE_PROPERTIES))
    out["required"] = [*out["required"], "live", "beamline", "follow", LIVE_FUNCTION_ID_KEY]
    return out
