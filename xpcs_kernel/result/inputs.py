"""Inputs of the result writer: duck-typed protocols and :class:`ResultMetadata`.

The q-map, SAXS and multi-tau objects come from other modules
(:mod:`xpcs_kernel.qmap.model` and friends); the writer only relies on the
attributes named by the protocols here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = ["G2Like", "QMapLike", "ResultMetadata", "SaxsLike", "valid_name"]


class QMapLike(Protocol):
    """What the writer needs of a q-map (see :class:`xpcs_kernel.qmap.model.QMap`)."""

    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def n_static(self) -> int: ...
    @property
    def n_dynamic(self) -> int: ...
    def to_datasets(self) -> tuple[dict[str, NDArray[Any] | str | float], dict[str, str]]: ...


class SaxsLike(Protocol):
    """Time-averaged scattering: 2-D, 1-D, 1-D per segment, intensity vs time."""

    @property
    def saxs_2d(self) -> NDArray[np.float64]: ...
    @property
    def saxs_1d(self) -> NDArray[np.float64]: ...
    @property
    def saxs_1d_segments(self) -> NDArray[np.float64]: ...
    @property
    def intensity_vs_time(self) -> NDArray[np.float64]: ...


class G2Like(Protocol):
    """Multi-tau result: delays in frames, g2 per dynamic bin, static G2/IP/IF."""

    @property
    def delays(self) -> NDArray[np.int64]: ...
    @property
    def g2(self) -> NDArray[np.float64]: ...
    @property
    def g2_err(self) -> NDArray[np.float64]: ...
    @property
    def G2_static(self) -> NDArray[np.float64]: ...
    @property
    def IP_static(self) -> NDArray[np.float64]: ...
    @property
    def IF_static(self) -> NDArray[np.float64]: ...
    @property
    def pair_counts(self) -> NDArray[Any]: ...
    @property
    def n_frames(self) -> int: ...


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and name not in (".", "..")


@dataclass(frozen=True)
class ResultMetadata:
    """Acquisition facts and provenance stored with the results.

    Attributes
    ----------
    frame_time, count_time : float
        Seconds between frames and exposure per frame (of the raw frames).
    incident_energy_kev : float
        X-ray energy, keV.
    start_time : str
        Acquisition start, ISO 8601.
    begin, end, stride, avg : int
        Frames ``begin:end`` (0-based, end exclusive) were used, keeping every
        ``stride``-th and averaging groups of ``avg``.
    normalize_frame : bool
        Whether each frame was divided by its spatial mean.
    input_files : tuple of (path, sha256, size)
        Input files with their checksums and sizes in bytes.
    software_version : str
        Version of xpcs-flows.
    parameters : mapping
        All options of the run (stored as JSON).
    timings : mapping of str to float
        Seconds per stage.
    """

    frame_time: float
    count_time: float
    incident_energy_kev: float
    start_time: str
    begin: int
    end: int
    stride: int
    avg: int
    normalize_frame: bool
    input_files: tuple[tuple[str, str, int], ...]
    software_version: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("frame_time", "count_time", "incident_energy_kev"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise UsageError(f"must be a number, got {value!r}", argument=name)
            if not np.isfinite(value) or value <= 0:
                raise UsageError(f"must be finite and > 0, got {value!r}", argument=name)
        try:
            datetime.fromisoformat(self.start_time)
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"must be an ISO 8601 date-time, got {self.start_time!r}", argument="start_time"
            ) from exc
        for name, low in (("begin", 0), ("end", 1), ("stride", 1), ("avg", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise UsageError(f"must be an integer >= {low}, got {value!r}", argument=name)
        if self.end <= self.begin:
            raise UsageError(f"must exceed begin = {self.begin}, got {self.end}", argument="end")
        for entry in self.input_files:
            ok = (
                isinstance(entry, tuple)
                and len(entry) == 3
                and isinstance(entry[0], str)
                and isinstance(entry[1], str)
                and len(entry[1]) == 64
                and all(ch in "0123456789abcdef" for ch in entry[1].lower())
                and isinstance(entry[2], (int, np.integer))
                and entry[2] >= 0
            )
            if not ok:
                raise UsageError(
                    f"entries must be (path, sha256 hex digest, size >= 0), got {entry!r}",
                    argument="input_files",
                )
        try:
            json.dumps(dict(self.parameters), default=_json_default)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"not JSON serializable: {exc}", argument="parameters") from exc
        for stage, seconds in self.timings.items():
            if not valid_name(stage) or not isinstance(seconds, (int, float, np.number)):
                raise UsageError(
                    f"entries must be name (no '/') -> seconds, got {stage!r}: {seconds!r}",
                    argument="timings",
                )

    def parameters_json(self) -> str:
        """The parameters as a JSON string (sorted keys)."""
        return json.dumps(dict(self.parameters), default=_json_default, sort_keys=True)
