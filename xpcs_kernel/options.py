"""Options of one correlation run, validated up front."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from xpcs_kernel.device_spec import BACKENDS, parse_device
from xpcs_kernel.errors import UsageError

__all__ = ["BACKENDS", "MODES", "PATHS", "CorrelationOptions"]

Mode = Literal["multitau", "twotime", "both"]
Path = Literal["auto", "dense", "sparse"]
Backend = Literal["numba", "torch", "auto"]
MODES: tuple[Mode, ...] = ("multitau", "twotime", "both")
PATHS: tuple[Path, ...] = ("auto", "dense", "sparse")


@dataclass(frozen=True)
class CorrelationOptions:
    """Everything that decides what a correlation run computes.

    Parameters
    ----------
    mode
        ``"multitau"`` (g2 with the APS multi-tau delays), ``"twotime"``
        (C(t1, t2) per dynamic bin) or ``"both"``.
    begin, end, stride, avg
        Frame selection: frames ``range(begin, end, stride)`` are used, then
        averaged in consecutive groups of ``avg`` (a partial last group is
        dropped). ``end=None`` means up to the last frame.
    frame_time
        Seconds between frames. ``None`` takes it from the raw file's
        metadata; the delays in seconds are ``tau * frame_time * stride * avg``.
    normalize_frame
        Divide every frame by its mean over the correlated pixels (corrects
        beam-intensity drift) before correlating.
    dataset
        HDF5 dataset holding the frames (default ``/entry/data/data``).
    twotime_bins
        0-based dynamic bins for the two-time correlation (default all).
    path
        ``"auto"`` chooses the dense or sparse multi-tau path from the
        measured occupancy; ``"dense"``/``"sparse"`` force one.
    fit
        Fit g2 per q-bin and the diffusion coefficient.
    allow_saturated
        Accept frames with saturated unsigned values (otherwise an error).
    chunk_frames
        Frames read per chunk (``None``: chosen from a memory budget).
    backend
        ``"numba"`` (CPU, the default), ``"torch"`` (GPU or CPU torch, the
        ``xpcs-flows[gpu]`` extra; :mod:`xpcs_kernel.torch_backend`) or
        ``"auto"``: torch where the run finds torch and a GPU (a GPU endpoint's
        worker), numba elsewhere; the result records the backend that ran.
    device
        Where the torch backend runs: ``"auto"`` (a GPU when torch sees one,
        else the CPU), ``"cpu"``, ``"cuda[:N]"`` (NVIDIA, and AMD with a ROCm
        torch) or ``"xpu[:N]"`` (Intel). Only ``"auto"`` or ``"cpu"`` with
        the numba backend.
    """

    mode: Mode = "multitau"
    begin: int = 0
    end: int | None = None
    stride: int = 1
    avg: int = 1
    frame_time: float | None = None
    normalize_frame: bool = False
    dataset: str | None = None
    twotime_bins: tuple[int, ...] | None = None
    path: Path = "auto"
    fit: bool = True
    allow_saturated: bool = False
    chunk_frames: int | None = None
    backend: Backend = "numba"
    device: str = "auto"

    def __post_init__(self) -> None:
        self._check_types()
        if self.mode not in MODES:
            raise UsageError(
                f"must be one of {', '.join(MODES)}, not {self.mode!r}", argument="mode"
            )
        if self.path not in PATHS:
            raise UsageError(
                f"must be one of {', '.join(PATHS)}, not {self.path!r}", argument="path"
            )
        if self.begin < 0:
            raise UsageError(f"must be >= 0, not {self.begin}", argument="begin")
        if self.end is not None and self.end <= self.begin:
            raise UsageError(f"must be > begin ({self.begin}), not {self.end}", argument="end")
        for name in ("stride", "avg"):
            value = getattr(self, name)
            if value < 1:
                raise UsageError(f"must be >= 1, not {value}", argument=name)
        if self.frame_time is not None and not (
            math.isfinite(self.frame_time) and self.frame_time > 0
        ):
            raise UsageError(
                f"must be a positive number of seconds, not {self.frame_time}",
                argument="frame_time",
            )
        if self.chunk_frames is not None and self.chunk_frames < 1:
            raise UsageError(f"must be >= 1, not {self.chunk_frames}", argument="chunk_frames")
        if self.backend not in BACKENDS:
            raise UsageError(
                f"must be one of {', '.join(BACKENDS)}, not {self.backend!r}", argument="backend"
            )
        spec = parse_device(self.device)
        if self.backend == "numba" and spec.kind not in ("auto", "cpu"):
            raise UsageError(
                f"{self.device} needs backend='torch' (numba runs on the CPU)", argument="device"
            )
        if self.twotime_bins is not None:
            if len(self.twotime_bins) == 0:
                raise UsageError("must name at least one bin", argument="twotime_bins")
            if any(b < 0 for b in self.twotime_bins):
                raise UsageError("bins are 0-based and >= 0", argument="twotime_bins")

    def _check_types(self) -> None:
        """Name the option and the type expected (not a comparison error) for a wrong type."""

        def integer(value: object) -> bool:
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)

        for name in ("begin", "stride", "avg", "end", "chunk_frames"):
            value = getattr(self, name)
            if not (value is None and name in ("end", "chunk_frames")) and not integer(value):
                raise UsageError(f"must be an integer, not {value!r}", argument=name)
        ft = self.frame_time
        if ft is not None and (not isinstance(ft, numbers.Real) or isinstance(ft, bool)):
            raise UsageError(f"must be a number of seconds, not {ft!r}", argument="frame_time")
        for name in ("normalize_frame", "fit", "allow_saturated"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise UsageError(f"must be true or false, not {value!r}", argument=name)
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise UsageError(f"must be an HDF5 path, not {self.dataset!r}", argument="dataset")
        if self.twotime_bins is not None and not all(integer(b) for b in self.twotime_bins):
            raise UsageError(
                f"must be 0-based bin numbers, not {self.twotime_bins!r}", argument="twotime_bins"
            )

    @property
    def wants_multitau(self) -> bool:
        return self.mode in ("multitau", "both")

    @property
    def wants_twotime(self) -> bool:
        return self.mode in ("twotime", "both")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (stored as provenance in the result file)."""
        out = dataclasses.asdict(self)
        if self.twotime_bins is not None:
            out["twotime_bins"] = list(self.twotime_bins)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorrelationOptions:
        """Build from a mapping, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(
                f"unknown option(s) {unknown}; known: {sorted(known)}", argument="options"
            )
        values = dict(data)
        bins = values.get("twotime_bins")
        if bins is not None:
            if isinstance(bins, (str, bytes)) or not hasattr(bins, "__iter__"):
                raise UsageError(
                    f"must be a list of 0-based bin numbers, not {bins!r}", argument="twotime_bins"
                )
            values["twotime_bins"] = tuple(bins)
        return cls(**values)
