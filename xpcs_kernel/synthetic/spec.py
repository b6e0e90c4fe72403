"""Options of a synthetic XPCS data set (see :mod:`xpcs_kernel.synthetic.frames`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xpcs_kernel.errors import UsageError

__all__ = ["BEAMSTOP_RADIUS", "SyntheticSpec"]

_DTYPES = ("uint8", "uint16", "uint32")
#: |E|^2 is exponential: P(|E|^2 > 50) = exp(-50), never reached in practice
_FIELD_BOUND = 50.0
#: radius (pixels) of the beam stop left out of the default q range
BEAMSTOP_RADIUS = 4.0


@dataclass(frozen=True)
class SyntheticSpec:
    """Options of a synthetic data set (validated; :class:`UsageError` names the field).

    Geometry defaults mimic APS 8-ID-I: 10 keV, 8 m, 75 um pixels, beam at the
    frame centre; the default q range spans full rings from a 4-pixel beam
    stop to the edge of the frame. ``tau_c_range`` is in frames, ``frame_time``
    in seconds. ``dtype`` is ``"uint8"``, ``"uint16"``, ``"uint32"`` or
    ``"auto"`` (the smallest that cannot saturate). ``intensity_exponent`` ``n``
    gives the static scattering a power law ``I(q) = mean_count (q / q_min)^-n``
    over the binned q range (``q_min`` its smallest q, q clipped to the range);
    the default 0 gives every pixel ``mean_count``.
    """

    n_frames: int = 1000
    shape: tuple[int, int] = (128, 128)
    beta: float = 0.2
    mean_count: float = 2.0
    n_dynamic_q: int = 6
    n_static_q: int = 24
    n_dynamic_phi: int = 1
    n_static_phi: int = 1
    tau_c_range: tuple[float, float] = (2.0, 100.0)
    frame_time: float = 1e-3
    seed: int = 0
    dtype: str = "uint16"
    energy: float = 10.0
    detector_distance: float = 8.0
    pixel_size: float = 75e-6
    beam_center: tuple[float, float] | None = None
    q_range: tuple[float, float] | None = None
    intensity_exponent: float = 0.0

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UsageError(f"must be a positive integer, got {value!r}", argument=name)

        for name in ("n_frames", "n_dynamic_q", "n_static_q", "n_dynamic_phi", "n_static_phi"):
            positive_int(name)
        if len(self.shape) != 2 or min(self.shape) < 8:
            raise UsageError(
                f"must be (H, W) with H, W >= 8, got {self.shape!r}", argument="shape"
            )
        if self.n_static_q % self.n_dynamic_q:
            raise UsageError("must be a multiple of n_dynamic_q", argument="n_static_q")
        if self.n_static_phi % self.n_dynamic_phi:
            raise UsageError("must be a multiple of n_dynamic_phi", argument="n_static_phi")
        if not 0.0 < self.beta <= 1.0:
            raise UsageError(f"must be in (0, 1], got {self.beta!r}", argument="beta")
        for name in ("mean_count", "frame_time", "energy", "detector_distance", "pixel_size"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise UsageError(f"must be a positive number, got {value!r}", argument=name)
        lo, hi = self.tau_c_range
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
            raise UsageError(
                f"must be (low, high) with 0 < low <= high, got {self.tau_c_range!r}",
                argument="tau_c_range",
            )
        for name in ("beam_center", "q_range"):
            pair = getattr(self, name)
            if pair is not None and (len(pair) != 2 or not np.all(np.isfinite(pair))):
                raise UsageError(
                    f"must be None or two finite numbers, got {pair!r}", argument=name
                )
        if self.q_range is not None and not 0 <= self.q_range[0] < self.q_range[1]:
            raise UsageError("must be (low, high), 0 <= low < high", argument="q_range")
        if not (np.isfinite(self.intensity_exponent) and self.intensity_exponent >= 0):
            raise UsageError("must be a finite number >= 0", argument="intensity_exponent")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise UsageError(f"must be a non-negative integer, got {self.seed!r}", argument="seed")
        if self.dtype not in (*_DTYPES, "auto"):
            raise UsageError(f"must be one of {_DTYPES} or 'auto'", argument="dtype")
        if self.dtype != "auto" and self.max_count() > np.iinfo(self.dtype).max:
            raise UsageError(
                f"{self.dtype} would saturate at mean_count={self.mean_count}; use 'auto'",
                argument="dtype",
            )

    @property
    def speckle_floor(self) -> float:
        """``c = 1 - sqrt(beta)``: the incoherent fraction of the intensity."""
        return 1.0 - float(np.sqrt(self.beta))

    def max_count(self) -> int:
        """An upper bound of any count (exceeded with probability ~exp(-50) per pixel)."""
        c = self.speckle_floor
        mu = self.mean_count * ((1.0 - c) * _FIELD_BOUND + c)
        return int(np.ceil(mu + 12.0 * np.sqrt(mu) + 12.0))

    def frame_dtype(self) -> np.dtype[Any]:
        """The dtype of the frames (``"auto"`` resolved)."""
        if self.dtype != "auto":
            return np.dtype(self.dtype)
        for name in _DTYPES:
            if self.max_count() <= np.iinfo(name).max:
                return np.dtype(name)
        raise UsageError("counts too large even for uint32", argument="mean_count")
