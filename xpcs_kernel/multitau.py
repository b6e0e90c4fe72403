"""Multi-tau correlation of XPCS frames (APS 8-ID convention), streaming.

Delays (frames) with ``D = 4`` per level: level 0 has ``tau = 1..8``, level
``L >= 1`` has ``tau = k 2^L`` for ``k = 5..8``, where level ``L`` frames average
adjacent pairs of level ``L - 1`` frames. Per pixel and delay, over its ``M``
pairs, ``G2 = <I(t) I(t+k)>``, ``IP = <I(t)>``, ``IF = <I(t+k)>``; the q-binned
``g2 = <G2>_s / (<IP>_s <IF>_s)`` per static bin, averaged over the static bins
of each dynamic bin (see :func:`xpcs_kernel._multitau_reduce.reduce_g2`).

:class:`MultiTauCorrelator` takes frames chunk by chunk (dense arrays or
sparse event lists) and keeps a state whose size grows with ``log2 N`` only
(about 1.1 kB per correlated pixel for 10,000 frames); :func:`multitau` is the
eager wrapper.

Performance notes (``benchmarks/multitau_kernel.py``, 2-core AMD EPYC VM
shared with other jobs): the dense kernel runs at 1.6-1.8e9 pixel-frames/s per
core of CPU time on 256x256 x 2000 uint8 frames; 2 threads gave 1.45e9 wall
while another process held one core. Each call reads and writes the whole
state once, so feed large detectors in chunks of several hundred frames
(100-frame chunks of 1 Mpx frames run 3-4x slower than 1000-frame chunks).
Products are float32 (frames converted per tile), summed in float32 over at
most 32 frames and accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel._multitau_feed import FeedEngine
from xpcs_kernel._multitau_reduce import G2Result, PixelBins, reduce_g2
from xpcs_kernel._multitau_scheme import DelayScheme, delay_list
from xpcs_kernel._multitau_state import CorrelatorState
from xpcs_kernel.errors import UsageError

__all__ = [
    "SPARSE_CROSSOVER",
    "DelayScheme",
    "G2Result",
    "MultiTauCorrelator",
    "PixelBins",
    "choose_path",
    "delay_list",
    "multitau",
]

SPARSE_CROSSOVER = 0.0
"""Occupancy (fraction of pixel-frames with counts) below which converting
dense frames to events pays: never, as measured (see :func:`choose_path`)."""

_EAGER_CHUNK_BYTES = 1 << 26


class MultiTauCorrelator:
    """Streaming multi-tau correlator: feed frames in time order, read g2 any time.

    Parameters
    ----------
    n_pixels : int
        Columns of the frames (the flattened detector, ``H * W``).
    pixel_index : array of int, optional
        Flat detector indices of the pixels to correlate (for example where the
        q-map's static bin is non-zero); ``None`` correlates all pixels. The
        order of ``pixel_index`` is the order of ``PixelBins.static_index``.
    delays_per_level : int, optional
        ``D`` (default 4).
    threads : int, optional
        Worker threads (default: numba's thread count).
    normalize_frame : bool, optional
        Divide each frame by its mean over the correlated pixels (beam
        intensity drift correction). An all-zero frame stays zero.
    """

    def __init__(
        self,
        n_pixels: int,
        *,
        pixel_index: NDArray[np.intp] | None = None,
        delays_per_level: int = 4,
        threads: int | None = None,
        normalize_frame: bool = False,
    ) -> None:
        self._engine = FeedEngine(
            n_pixels,
            pixel_index=pixel_index,
            threads=threads,
            normalize_frame=normalize_frame,
        )
        delay_list(0, delays_per_level=delays_per_level)  # validates delays_per_level
        self._state = CorrelatorState(n_corr=self._engine.n_corr, dpl=int(delays_per_level))

    @property
    def n_pixels(self) -> int:
        """Columns of the frames."""
        return self._engine.n_pixels

    @property
    def pixel_index(self) -> NDArray[np.intp]:
        """Flat detector index of each correlated pixel."""
        return self._engine.pixel_index.copy()

    @property
    def n_frames(self) -> int:
        """Frames fed so far."""
        return self._state.n_frames

    def feed(self, frames: NDArray[Any]) -> None:
        """Correlate the next frames.

        Parameters
        ----------
        frames : array, shape (n, n_pixels) or (n, H, W) with ``H W = n_pixels``
            Any integer or float dtype (uint8/16/32, int, float32/64 avoid a copy).

        Raises
        ------
        UsageError
            If the shape or dtype is not acceptable (``argument="frames"``).
        """
        self._engine.feed_dense(self._state, frames)

    def feed_sparse(
        self,
        n_frames: int,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.integer[Any]],
        counts: NDArray[Any],
    ) -> None:
        """Correlate the next ``n_frames`` frames given as a CSR event list.

        The events of frame ``i`` are ``pixels[indptr[i]:indptr[i+1]]`` (flat
        detector indices) with ``counts`` (repeated pixels add up); the result is
        identical to feeding the dense frames.
        """
        self._engine.feed_sparse(self._state, n_frames, indptr, pixels, counts)

    def delay_scheme(self) -> DelayScheme:
        """The delays available for the frames fed so far."""
        return delay_list(self._state.n_frames, delays_per_level=self._state.dpl)

    def g2(self, bins: PixelBins) -> G2Result:
        """Binned g2 of the frames fed so far (the correlator can go on after).

        Raises
        ------
        CorrelationError
            If fewer than 2 frames were fed.
        UsageError
            If ``bins`` does not describe the correlated pixels.
        """
        if not isinstance(bins, PixelBins):
            raise UsageError(f"must be PixelBins, got {type(bins).__name__}", argument="bins")
        return reduce_g2(self._state, bins)

    def state(self) -> dict[str, NDArray[Any]]:
        """Everything needed to resume (a copy; ``np.savez(path, **state)`` works)."""
        out = self._state.to_dict()
        out.update(self._engine.to_dict())
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, NDArray[Any]]) -> MultiTauCorrelator:
        """Resume from :meth:`state` (or the ``np.load`` of its ``np.savez`` file)."""
        if not isinstance(state, Mapping) and not hasattr(state, "keys"):
            raise UsageError("must be a mapping of arrays", argument="state")
        engine = FeedEngine.from_dict(state)
        core = CorrelatorState.from_dict(state)
        if core.n_corr != engine.n_corr:
            raise UsageError("n_corr does not match pixel_index", argument="state")
        obj = cls.__new__(cls)
        obj._engine = engine
        obj._state = core
        return obj


def choose_path(occupancy: float) -> Literal["dense", "sparse"]:
    """Pick the correlation path for data with the given occupancy.

    Parameters
    ----------
    occupancy : float
        Fraction of pixel-frames with a non-zero count (photons per pixel per
        frame is an upper bound), in ``[0, 1]``.

    Returns
    -------
    {"dense", "sparse"}
        ``"sparse"`` below :data:`SPARSE_CROSSOVER` (0: always ``"dense"``).

    Notes
    -----
    :meth:`MultiTauCorrelator.feed_sparse` scatters the events into uint16
    blocks (threads over frames) and runs the dense kernel, so event data are
    never slower than densifying them chunk by chunk and give identical sums.
    Converting *dense* frames to events only adds work: on the 2-core
    development VM (``benchmarks/multitau_kernel.py --case sparse``, 256x256 x
    1000 frames, 2 threads) the event path ran at 0.6-1.2e9 pixel-frames/s at
    occupancies 0.001-0.2 against 1.3-1.5e9 for the dense uint8 frames. An
    event-pair algorithm (a prototype) was already slower than dense at 0.05
    photons/pixel/frame and its gain is bounded: level 0 is about 2/3 of the
    dense work and upper levels are dense after a few binnings. Hence a
    crossover of 0; raise :data:`SPARSE_CROSSOVER` only with a measurement.
    """
    occ = float(occupancy)
    if not 0.0 <= occ <= 1.0:
        raise UsageError(f"must lie in [0, 1], got {occupancy!r}", argument="occupancy")
    return "sparse" if occ < SPARSE_CROSSOVER else "dense"


def multitau(
    frames: NDArray[Any],
    bins: PixelBins,
    *,
    pixel_index: NDArray[np.intp] | None = None,
    normalize_frame: bool = False,
    path: Literal["auto", "dense", "sparse"] = "auto",
) -> G2Result:
    """Multi-tau g2 of a frame stack (eager wrapper over :class:`MultiTauCorrelator`).

    Parameters
    ----------
    frames : array, shape (N, n_pixels) or (N, H, W)
        The frames, any integer or float dtype.
    bins : PixelBins
        q-bins of the correlated pixels.
    pixel_index : array of int, optional
        Flat indices of the correlated pixels (default: all).
    normalize_frame : bool, optional
        Divide each frame by its mean over the correlated pixels.
    path : {"auto", "dense", "sparse"}
        ``"sparse"`` converts the frames to event lists and uses
        :meth:`MultiTauCorrelator.feed_sparse` (same result); ``"auto"`` asks
        :func:`choose_path` with the occupancy of the first frames.

    Returns
    -------
    G2Result
    """
    arr = np.asarray(frames)
    if arr.ndim not in (2, 3):
        raise UsageError(
            f"must have shape (N, n_pixels) or (N, H, W), got {arr.shape}", argument="frames"
        )
    if path not in ("auto", "dense", "sparse"):
        raise UsageError(f"must be 'auto', 'dense' or 'sparse', got {path!r}", argument="path")
    flat = arr.reshape(arr.shape[0], -1)
    corr = MultiTauCorrelator(
        flat.shape[1], pixel_index=pixel_index, normalize_frame=normalize_frame
    )
    if path == "auto":
        sample = flat[: min(16, flat.shape[0])]
        occ = float(np.count_nonzero(sample)) / max(sample.size, 1)
        path = choose_path(occ)
    if path == "dense":
        corr.feed(flat)  # one call: the kernel reads the array in place
    else:
        chunk = max(1, _EAGER_CHUNK_BYTES // max(1, flat.shape[1] * flat.itemsize))
        for f0 in range(0, flat.shape[0], chunk):
            block = flat[f0 : f0 + chunk]
            nz_frame, nz_pixel = np.nonzero(block)
            indptr = np.zeros(block.shape[0] + 1, dtype=np.int64)
            np.cumsum(np.bincount(nz_frame, minlength=block.shape[0]), out=indptr[1:])
            corr.feed_sparse(block.shape[0], indptr, nz_pixel, block[nz_frame, nz_pixel])
    return corr.g2(bins)
