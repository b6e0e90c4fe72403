"""The JSON Schema of the correlation options in a flow's input.

It mirrors :class:`xpcs_kernel.options.CorrelationOptions` field by field
(types, ranges, defaults); a test keeps the two in step.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["correlation_options_schema"]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out["type"] = [schema["type"], "null"]
    return out


def correlation_options_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`~xpcs_kernel.options.CorrelationOptions` (``options``)."""
    positive_int = {"type": "integer", "minimum": 1}
    return {
        "type": "object",
        "title": "Correlation options",
        "description": "What the correlation computes (xpcs_kernel CorrelationOptions)",
        "additionalProperties": False,
        "properties": {
            "mode": {
                "type": "string",
                "enum": ["multitau", "twotime", "both"],
                "default": "multitau",
                "title": "Mode",
                "description": "Multi-tau g2, two-time C(t1, t2), or both",
            },
            "begin": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "title": "First frame",
                "description": "0-based first frame used",
            },
            "end": {
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
                "title": "End frame",
                "description": "Frames before this one are used (null: all); > begin",
            },
            "stride": {
                **positive_int,
                "default": 1,
                "title": "Stride",
                "description": "Use every stride-th frame",
            },
            "avg": {
                **positive_int,
                "default": 1,
                "title": "Average",
                "description": "Average consecutive groups of this many frames",
            },
            "frame_time": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "default": None,
                "title": "Frame time (s)",
                "description": "Seconds between frames (null: from the raw file)",
            },
            "normalize_frame": {
                "type": "boolean",
                "default": False,
                "title": "Normalize frames",
                "description": "Divide each frame by its mean intensity",
            },
            "dataset": {
                "type": ["string", "null"],
                "default": None,
                "title": "HDF5 dataset",
                "description": "Dataset of the frames (null: /entry/data/data)",
            },
            "twotime_bins": {
                "type": ["array", "null"],
                "items": {"type": "integer", "minimum": 0},
                "minItems": 1,
                "default": None,
                "title": "Two-time bins",
                "description": "0-based dynamic bins for two-time maps (null: all)",
            },
            "path": {
                "type": "string",
                "enum": ["auto", "dense", "sparse"],
                "default": "auto",
                "title": "Correlator path",
                "description": "Dense or sparse multi-tau (auto: by occupancy)",
            },
            "fit": {
                "type": "boolean",
                "default": True,
                "title": "Fit",
                "description": "Fit g2 per q-bin and the diffusion coefficient",
            },
            "allow_saturated": {
                "type": "boolean",
                "default": False,
                "title": "Allow saturated",
                "description": "Accept saturated detector values",
            },
            "chunk_frames": {
                "type": ["integer", "null"],
                "minimum": 1,
                "default": None,
                "title": "Chunk frames",
                "description": "Frames read per chunk (null: from a memory budget)",
            },
            "backend": {
                "type": "string",
                "enum": ["numba", "torch", "auto"],
                "default": "numba",
                "title": "Backend",
                "description": (
                    "Kernel backend: numba (CPU), torch (GPU, xpcs-flows[gpu]) or auto "
                    "(torch where the endpoint sees a GPU, else numba)"
                ),
            },
            "device": {
                "type": "string",
                "pattern": "^(auto|cpu|(cuda|xpu)(:[0-9]+)?)$",
                "default": "auto",
                "title": "Device",
                "description": "torch device: auto, cpu, cuda[:N] or xpu[:N]",
            },
        },
    }
