"""Multi-tau correlation of XPCS frames (APS 8-ID convention), streaming.

Delays (frames) with ``D = 4`` per level: level 0 has ``tau = 1..8``, level
``L >= 1`` has ``tau = k 2^L`` for ``k = 5..8``, where level ``L`` frames average
adjacent pairs of level ``L - 1`` frames. Per pixel and delay, over its ``M``
pairs, ``G2 = <I(t) I(t+k)>``, ``IP = <I(t)>``, ``IF = <I(t+k)>``; the q-binned
``g2 = <G2>_s / (<IP>_s <IF>_s)`` per static bin, averaged over the static bins
of each dynamic bin (see :func:`xpcs_kernel.multitau.reduce.reduce_g2`).

:class:`MultiTauCorrelator` takes frames chunk by chunk (dense arrays or
sparse event lists) and keeps a state whose size grows with ``log2 N`` only
(876 bytes per correlated pixel for 10,000 frames, :func:`state_nbytes`);
:func:`multitau` is the eager wrapper.

Performance notes (2-core AMD EPYC VM, quiet; ``benchmarks/``): the eager
:func:`multitau` feeds pixel groups with an L2-sized state
(:mod:`xpcs_kernel.multitau.eager`): 256x256 x 2000 uint8 frames with a real
q-map (50,644 correlated pixels) in 0.034 s, 3.8e9 detector pixel-frames/s,
reduction included; 1 Mpx x 500 frames in 0.165 s, 3.2e9. The streaming
correlator reads and writes the state of the levels that receive frames (about
0.9 kB per pixel for 32-128 frames), so small chunks cost more per frame (1 Mpx
in 58-128 frame chunks: 1.1-1.7e9; :meth:`MultiTauCorrelator.feed` takes two
arrays per call for that); :func:`stream_memory_budget` sizes the
pipeline's chunks from the state, and ``correlate_file`` on 1 Mpx x 10,000
uint8 LZ4 frames peaked at 1.38 GB RSS. Products are float32 (frames converted
per tile), summed in float32 over at most 32 frames and accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau.dense import TILE
from xpcs_kernel.multitau.eager import correlate_by_groups
from xpcs_kernel.multitau.feed import FeedEngine
from xpcs_kernel.multitau.reduce import G2Result, PixelBins, reduce_g2
from xpcs_kernel.multitau.scheme import DelayScheme, active_levels, delay_list
from xpcs_kernel.multitau.state import CorrelatorState

__all__ = [
    "EVENTS_CROSSOVER",
    "SPARSE_CROSSOVER",
    "DelayScheme",
    "G2Result",
    "MultiTauCorrelator",
    "PixelBins",
    "choose_path",
    "delay_list",
    "multitau",
    "state_nbytes",
    "stream_memory_budget",
]

SPARSE_CROSSOVER = 0.0
"""Occupancy (fraction of pixel-frames with counts) below which converting
dense frames to events pays: never, as measured (see :func:`choose_path`)."""

EVENTS_CROSSOVER = 0.1
"""Occupancy below which event data (sparse IMM, Rigaku) stay events rather
than being densified in the reader, as measured (see :func:`choose_path`)."""

_EAGER_CHUNK_BYTES = 1 << 26
_EAGER_GROUP_BYTES = 2 << 20  # correlator state per pixel group of the eager dense path (L2-sized)
_MIB = 1 << 20
_RSS_TARGET = 1376 * _MIB  # 1.34 GiB (1.44 GB): a whole run, state and frames in flight
_RSS_BASE = 384 * _MIB  # interpreter, numba, h5py, q-map, SAXS, result of a 1 Mpx run


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
        """Frames fed so far (event frames still staged included)."""
        return self._state.n_frames + self._engine.pending

    def feed(self, frames: NDArray[Any], following: NDArray[Any] | None = None) -> None:
        """Correlate the next frames.

        Parameters
        ----------
        frames : array, shape (n, n_pixels) or (n, H, W) with ``H W = n_pixels``
            Any integer or float dtype (uint8/16/32, int, float32/64 avoid a copy).
        following : array, optional
            Frames that come right after ``frames`` (same layout). Two arrays of
            one dtype are correlated in one pass, as if concatenated but without
            a copy: every pass reads and writes the correlator's state, so two
            short chunks cost less together than one after the other.

        Raises
        ------
        UsageError
            If the shape or dtype is not acceptable (``argument="frames"``);
            then nothing of either array was fed.
        """
        self._engine.feed_dense(self._state, frames, following)

    def prefault(self, n_frames: int) -> None:
        """Touch the state that ``n_frames`` frames will use, before the first feed.

        Optional: it moves the cost of first writes to fresh memory out of the
        first :meth:`feed`. Call it before feeding, from any thread, and
        finish it before the first feed (it writes zeros into the state).
        """
        self._state.prefault(n_frames)

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
        return delay_list(self.n_frames, delays_per_level=self._state.dpl)

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
        self._engine.flush(self._state)
        return reduce_g2(self._state, bins)

    def state(self) -> dict[str, NDArray[Any]]:
        """Everything needed to resume (a copy; ``np.savez(path, **state)`` works)."""
        self._engine.flush(self._state)
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


def choose_path(occupancy: float, *, events: bool = False) -> Literal["dense", "sparse"]:
    """Pick the correlation path for data with the given occupancy.

    Parameters
    ----------
    occupancy : float
        Fraction of pixel-frames with a non-zero count (photons per pixel per
        frame is an upper bound), in ``[0, 1]``.
    events : bool, optional
        Whether the data already are event lists (sparse IMM, Rigaku); else
        dense frames.

    Returns
    -------
    {"dense", "sparse"}
        Dense frames: ``"sparse"`` below :data:`SPARSE_CROSSOVER` (0: always
        ``"dense"``). Event lists: ``"sparse"`` below :data:`EVENTS_CROSSOVER`.

    Notes
    -----
    :meth:`MultiTauCorrelator.feed_sparse` scatters the events into uint16
    blocks (threads over frames) and runs the dense kernel, so both paths give
    identical sums. Converting *dense* frames to events only adds work: on the
    2-core development VM (``benchmarks/multitau_kernel.py --case sparse``,
    256x256 x 1000 frames, 2 threads) the event path ran at 0.6-1.2e9
    pixel-frames/s at occupancies 0.001-0.2 against 1.3-1.5e9 for the dense
    uint8 frames. An event-pair algorithm (a prototype) was already slower
    than dense at 0.05 photons/pixel/frame and its gain is bounded: level 0 is
    about 2/3 of the dense work and upper levels are dense after a few
    binnings. Hence a crossover of 0 for dense frames.

    For event files the question is whether to keep the events (the reader
    hands CSR chunks to the SAXS pass and the correlator) or to densify whole
    frames in the reader. The whole ``xpcs-flows correlate`` command on a
    512x1024 x 2000 Rigaku file (``benchmarks/kernel.py --workload sparse``)
    took 1.0-1.3 s against 1.8-1.9 s at 0.001 photons/pixel/frame, 1.2 s
    against 1.8-2.1 s at 0.01 and 2.5-3.2 s against 2.9 s at 0.1, hence
    :data:`EVENTS_CROSSOVER` = 0.1.
    """
    occ = float(occupancy)
    if not 0.0 <= occ <= 1.0:
        raise UsageError(f"must lie in [0, 1], got {occupancy!r}", argument="occupancy")
    return "sparse" if occ < (EVENTS_CROSSOVER if events else SPARSE_CROSSOVER) else "dense"


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
        engine = corr._engine
        checked = engine.check_dense(flat)
        if engine.kernel_ready(checked):  # the kernel reads the array in place
            group = _eager_group_pixels(checked.shape[0])
            return correlate_by_groups(
                engine, checked, bins, delays_per_level=4, group_pixels=group
            )
        corr.feed(checked)
    else:
        chunk = max(1, _EAGER_CHUNK_BYTES // max(1, flat.shape[1] * flat.itemsize))
        for f0 in range(0, flat.shape[0], chunk):
            block = flat[f0 : f0 + chunk]
            nz_frame, nz_pixel = np.nonzero(block)
            indptr = np.zeros(block.shape[0] + 1, dtype=np.int64)
            np.cumsum(np.bincount(nz_frame, minlength=block.shape[0]), out=indptr[1:])
            corr.feed_sparse(block.shape[0], indptr, nz_pixel, block[nz_frame, nz_pixel])
    return corr.g2(bins)


def _eager_group_pixels(n_frames: int) -> int:
    """Pixels per group of :func:`multitau` (state of about ``_EAGER_GROUP_BYTES``)."""
    per_tile = state_nbytes(TILE, max(int(n_frames), 1))
    return max(1, _EAGER_GROUP_BYTES // per_tile) * TILE


def state_nbytes(n_corr: int, n_frames: int, *, delays_per_level: int = 4) -> int:
    """Bytes of correlator state for ``n_frames`` frames of ``n_corr`` pixels.

    Per pixel (padded to whole tiles of 256), with ``D`` delays per level,
    ``n_lev = floor(log2 N) + 1`` levels and ``n_act`` active ones: the level-0
    carry ``8 D`` bytes, ``4 (D + 1)`` per further level, the level-0 total 8,
    and ``12 D`` per active level plus ``12 D`` for level 0's short lags.
    For ``D = 4`` and 10,000 frames: 876 bytes (it grows with ``log2 N`` only).
    """
    d = int(delays_per_level)
    n = int(n_frames)
    n_lev = n.bit_length()
    n_act = active_levels(n, d) if n > 0 else 0
    per_pixel = 8 * d + 4 * (d + 1) * max(n_lev - 1, 0) + 8 + 12 * d * (n_act + 1)
    return -(-int(n_corr) // TILE) * TILE * per_pixel


def stream_memory_budget(
    n_corr: int, n_frames: int, *, low: int = 64 * _MIB, high: int = 512 * _MIB
) -> int:
    """``memory_budget`` for :func:`xpcs_kernel.io.iter_chunks` feeding a correlator.

    Every call reads and writes the state of the levels that receive frames
    (about 0.9 kB per pixel for 32-128 frames, 10-15 ms per Mpx of a shared
    2-core VM's memory bandwidth), so longer chunks correlate faster; but the
    current and the read-ahead chunks add to the state. ``iter_chunks`` holds
    about half its budget in frames, so the budget is twice what remains of a
    1.34 GiB run after a 384 MiB base (interpreter, numba, q-map, SAXS; measured
    on a 1 Mpx run) and :func:`state_nbytes`, and at most twice the state (frames
    in flight about the size of the state: a small detector then reads several
    chunks, so reading overlaps correlating), within ``[low, high]``. 1 Mpx x
    10,000 frames get 232 MiB (58 uint8 frames per chunk), 1 Mpx x 1,000 frames
    512 MiB (128 frames), 256x256 x 2,000 frames 90 MiB (360 frames).

    The pipeline reads two chunks ahead (:data:`xpcs_kernel.pipeline.run.READ_AHEAD`),
    one chunk more than this model counts; its 384 MiB base is generous, and
    the measured peak of a 1 Mpx x 1,000 uint16 run is 1129 MiB (2026-12-08).
    """
    state = state_nbytes(n_corr, n_frames)
    spare = _RSS_TARGET - _RSS_BASE - state
    return int(min(high, max(low, 2 * min(spare, state))))
