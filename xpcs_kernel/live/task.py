"""One live correlation as a flow task: follow a raw file, return a JSON summary.

:func:`follow_task` is what the live flow's Compute function
(:func:`tools.correlate_live.xpcs_correlate_live`) runs on an endpoint that
reads the beamline storage: it follows the raw file while the detector
writes it (:func:`~xpcs_kernel.live.follow.follow_file`), replacing
``<output_dir>/<raw stem>_results.hdf`` with the results so far every few
seconds, and returns, once the file is complete, the same summary as the
offline Correlate task (``output``, ``n_frames``, ``fit`` ...), so that the
flow's later states (Plots, Publish) read it unchanged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xpcs_kernel.errors import UsageError
from xpcs_kernel.live.follow import FollowConfig, follow_file
from xpcs_kernel.options import CorrelationOptions

__all__ = [
    "FOLLOW_KEYS",
    "check_live_options",
    "follow_config",
    "follow_task",
    "live_result_path",
]

#: The keys of the flow input's ``follow`` object (FollowConfig fields).
FOLLOW_KEYS = ("idle", "update", "done_marker", "checkpoint")

_FIT_KEYS = ("bin", "q", "phi", "tau_c", "beta", "gamma", "gamma_err", "success")


def live_result_path(raw: str | os.PathLike[str], output_dir: str | os.PathLike[str]) -> Path:
    """Where the follower of ``raw`` writes its (partial, then final) result."""
    return Path(output_dir) / f"{Path(raw).stem}_results.hdf"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def follow_config(follow: Mapping[str, Any] | None) -> FollowConfig:
    """The :class:`FollowConfig` of a flow input's ``follow`` object.

    Raises
    ------
    UsageError
        An unknown key, or a value ``FollowConfig`` refuses.
    """
    given = dict(follow or {})
    unknown = sorted(set(given) - set(FOLLOW_KEYS))
    if unknown:
        raise UsageError(
            f"unknown follow setting(s) {unknown}; known: {FOLLOW_KEYS}", argument="follow"
        )
    if given.get("done_marker") == "":
        given["done_marker"] = None
    return FollowConfig(**given)


def check_live_options(options: CorrelationOptions) -> None:
    """Refuse options a follower cannot honour (two-time, frame selection, normalization).

    Raises
    ------
    UsageError
        Naming the option, before anything starts.
    """
    from xpcs_kernel.live.follow import _check_options

    _check_options(options)


def follow_task(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    options: Mapping[str, Any] | None = None,
    name: str | None = None,
    follow: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Follow ``raw`` until it is complete; return the task's JSON summary.

    Parameters
    ----------
    raw, qmap
        The growing raw file and the q-map, as the endpoint sees them.
    output_dir
        Directory of the result file (created); see :func:`live_result_path`.
    options
        :class:`CorrelationOptions` fields (multi-tau, every frame).
    name
        The dataset name (echoed back).
    follow
        ``idle``, ``update``, ``done_marker``, ``checkpoint`` (:class:`FollowConfig`).

    Returns
    -------
    dict
        As the offline Correlate task: ``output``, ``name``, ``raw``, ``qmap``,
        ``mode``, ``n_frames``, ``frame_shape``, ..., ``fit`` and
        ``diffusion``, plus ``live: True``; non-finite numbers become ``None``.

    Raises
    ------
    UsageError, FrameFormatError, CorrelationError
        As :func:`~xpcs_kernel.live.follow.follow_file` (the action fails).
    """
    raw_path = Path(raw)
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = live_result_path(raw_path, out_dir)
    opts = CorrelationOptions.from_dict(dict(options or {}))
    summary = follow_file(raw_path, qmap, output, options=opts, config=follow_config(follow))
    data = summary.to_dict()
    result = {
        "name": name or raw_path.stem,
        "output": str(output),
        "raw": str(raw_path),
        "qmap": str(qmap),
        **{
            key: data[key]
            for key in (
                "mode",
                "n_frames",
                "frame_shape",
                "n_dynamic",
                "n_static",
                "n_pixels",
                "correlation_rate",
                "overall_rate",
                "path",
                "frame_time",
                "timings",
                "diffusion",
                "software_version",
            )
        },
        "fit": [{k: row[k] for k in _FIT_KEYS if k in row} for row in data["fit"]],
        "options": opts.to_dict(),
        "live": True,
    }
    clean: dict[str, Any] = _finite(result)
    return clean
