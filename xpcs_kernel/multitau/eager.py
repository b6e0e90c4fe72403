"""Eager dense multi-tau by groups of pixels: the state stays small and is reused.

A one-shot correlation of a frame stack in memory does not need the state of
every pixel at once: each group of whole pixel tiles can be fed every frame,
binned into per-chunk partial sums (:func:`~xpcs_kernel.multitau.bin.bin_partial`)
and its state reset for the next group. The state then takes about 2 MiB per
worker thread instead of ~0.6 kB per pixel (0.5 GB for a 1 Mpx detector): it
stays in the L2 cache and is faulted in once. Measured on the 2-core VM
(``benchmarks/multitau_kernel.py``): 1 Mpx x 500 frames 0.33 s -> 0.16 s and
256x256 x 2000 frames 0.057 s -> 0.031 s, reduction included. Each worker
thread takes whole groups (feed and binning in the thread, no nested
parallelism), and the partial sums are merged in group order, so the result
does not depend on the threads. The partial sums are those of the
whole-detector reduction with other chunk boundaries, so results agree to
float64 rounding (~1e-15 relative).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.multitau.bin import Partial, bin_partial
from xpcs_kernel.multitau.dense import TILE, dense_feed
from xpcs_kernel.multitau.feed import FeedEngine, shared_pool
from xpcs_kernel.multitau.reduce import G2Result, PixelBins, binned_result, check_bins, scheme_for
from xpcs_kernel.multitau.state import CorrelatorState

__all__ = ["correlate_by_groups"]


def _feed_group(
    state: CorrelatorState,
    frames: NDArray[Any],
    index: NDArray[np.intp],
    scale: NDArray[np.float32],
) -> None:
    """All frames into the (reset) state of one group, in the calling thread."""
    state.prepare(frames.shape[0])
    index = np.ascontiguousarray(index)
    n_lev, n_act = state.n_levels, state.n_active
    dense_feed(
        frames,
        frames[:0],  # no second array
        index,
        scale,
        0,
        state.dpl,
        0,
        state.n_tiles,
        n_lev,
        n_act,
        *state.kernel_arrays(),
    )
    state.n_frames = int(frames.shape[0])


def correlate_by_groups(
    engine: FeedEngine,
    frames: NDArray[Any],
    bins: PixelBins,
    *,
    delays_per_level: int,
    group_pixels: int,
) -> G2Result:
    """Multi-tau g2 of ``frames`` (kernel-ready, see :meth:`FeedEngine.kernel_ready`).

    Parameters
    ----------
    engine : FeedEngine
        Pixel selection, normalisation and threads.
    frames : ndarray, shape (N, n_pixels)
        The whole stack.
    bins : PixelBins
        q-bins of the engine's correlated pixels.
    delays_per_level : int
        ``D``.
    group_pixels : int
        Correlated pixels per group (rounded down to whole tiles, at least one).
    """
    check_bins(bins, engine.n_corr)
    n_frames = int(frames.shape[0])
    scheme = scheme_for(n_frames, delays_per_level)
    scale = engine.frame_scale(frames)  # over all correlated pixels, as one correlator
    step = max(1, group_pixels // TILE) * TILE
    starts = list(range(0, engine.n_corr, step))
    partials: list[Partial | None] = [None] * len(starts)
    groups = iter(enumerate(starts))
    lock = threading.Lock()

    def worker() -> None:
        state: CorrelatorState | None = None
        while True:
            with lock:
                item = next(groups, None)
            if item is None:
                return
            g, p0 = item
            p1 = min(engine.n_corr, p0 + step)
            if state is None or state.n_corr != p1 - p0:
                state = CorrelatorState(n_corr=p1 - p0, dpl=delays_per_level)
            else:
                state.reset()
            _feed_group(state, frames, engine.pixel_index[p0:p1], scale)
            static = bins.static_index[p0:p1]
            partials[g] = bin_partial(
                state, scheme, static, bins.dynamic_of_static, bins.n_dynamic, parallel=False
            )

    n_threads = max(1, min(engine.thread_count(), len(starts)))
    if n_threads == 1:
        worker()
    else:
        futures = [shared_pool(n_threads).submit(worker) for _ in range(n_threads)]
        for future in futures:
            future.result()
    done = [p for p in partials if p is not None]  # all: a failed worker raised above
    return binned_result(scheme, bins, done, n_frames)
