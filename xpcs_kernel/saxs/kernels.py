"""Numba kernel of the SAXS accumulation: one parallel pass over a chunk.

For a chunk of ``n`` frames (``n x P`` pixels) it adds every pixel's counts
over the frames to ``pixel_sums`` and returns each frame's total over the
valid pixels, in float64 (exact for integer counts). Pixels are split in
blocks across threads; each block writes its own row of per-frame partial
totals, which are summed at the end, so no two threads write the same place.

The threads are the multi-tau correlator's worker pool running a ``nogil``
kernel over block ranges, not numba's ``parallel=True``: starting numba's
parallel runtime (threading layer, gufunc loading) cost 0.5 s on the first
chunk of every run (2-core VM, warm on-disk cache), a third of a whole
256x256 x 2000 ``correlate``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from xpcs_kernel.multitau.feed import shared_pool, worker_threads

__all__ = ["accumulate_chunk", "accumulate_events"]

_BLOCK = 4096
_PARALLEL_MIN = 1 << 20  # values per chunk below which one thread does it all


# Four frames per sweep of a block: the block's sums and weights are read and
# written once for four frame rows (per value 8 bytes of cache traffic instead
# of 26), and the four per-frame totals are independent accumulators.
# Reassociation lets LLVM vectorise the per-frame totals (float64 reductions);
# integer counts stay exact (every partial sum is an integer below 2^53).
@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _accumulate(
    flat: Any, valid: Any, pixel_sums: Any, partial: Any, b0: int, b1: int
) -> None:  # pragma: no cover - compiled
    n, npix = flat.shape
    for b in range(b0, b1):
        lo = b * _BLOCK
        hi = min(lo + _BLOCK, npix)
        sums = pixel_sums[lo:hi]
        weight = valid[lo:hi]
        t = 0
        while t + 4 <= n:
            r0 = flat[t, lo:hi]
            r1 = flat[t + 1, lo:hi]
            r2 = flat[t + 2, lo:hi]
            r3 = flat[t + 3, lo:hi]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for p in range(hi - lo):
                v0 = np.float64(r0[p])
                v1 = np.float64(r1[p])
                v2 = np.float64(r2[p])
                v3 = np.float64(r3[p])
                sums[p] += (v0 + v1) + (v2 + v3)
                w = weight[p]
                s0 += v0 * w
                s1 += v1 * w
                s2 += v2 * w
                s3 += v3 * w
            partial[b, t] = s0
            partial[b, t + 1] = s1
            partial[b, t + 2] = s2
            partial[b, t + 3] = s3
            t += 4
        for u in range(t, n):
            row = flat[u, lo:hi]
            s = 0.0
            for p in range(hi - lo):
                v = np.float64(row[p])
                sums[p] += v
                s += v * weight[p]
            partial[b, u] = s


def accumulate_chunk(
    flat: NDArray[Any], valid: NDArray[np.float64], pixel_sums: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Add ``flat.sum(axis=0)`` to ``pixel_sums``; return per-frame valid totals.

    Parameters
    ----------
    flat
        ``(n, P)`` C-contiguous frames of any numeric dtype.
    valid
        ``(P,)`` 1.0 for valid pixels, 0.0 for masked ones.
    pixel_sums
        ``(P,)`` float64 accumulator, updated in place.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64: :math:`T_t = \\sum_p v_p I_t(p)`.
    """
    n, npix = flat.shape
    nblocks = max(1, -(-npix // _BLOCK))
    partial = np.zeros((nblocks, n), dtype=np.float64)
    data = np.ascontiguousarray(flat)
    n_threads = min(worker_threads(), nblocks)
    if n_threads <= 1 or data.size < _PARALLEL_MIN:
        _accumulate(data, valid, pixel_sums, partial, 0, nblocks)
    else:
        cuts = [nblocks * i // n_threads for i in range(n_threads + 1)]
        pool = shared_pool(n_threads)
        futures = [
            pool.submit(_accumulate, data, valid, pixel_sums, partial, cuts[i], cuts[i + 1])
            for i in range(n_threads)
        ]
        for future in futures:
            future.result()
    totals: NDArray[np.float64] = partial.sum(axis=0)
    return totals


@njit(nogil=True, cache=True)
def _accumulate_events(
    indptr: Any, pixels: Any, counts: Any, valid: Any, pixel_sums: Any, totals: Any
) -> int:  # pragma: no cover - compiled
    n_pixels = pixel_sums.size
    for i in range(indptr.size - 1):
        s = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            p = pixels[e]
            if p < 0 or p >= n_pixels:
                return e
            v = np.float64(counts[e])
            pixel_sums[p] += v
            if valid[p]:
                s += v
        totals[i] = s
    return -1


def accumulate_events(
    indptr: NDArray[np.int64],
    pixels: NDArray[Any],
    counts: NDArray[Any],
    valid: NDArray[np.uint8],
    pixel_sums: NDArray[np.float64],
) -> tuple[NDArray[np.float64], int]:
    """Add the events of a CSR chunk to ``pixel_sums``; return per-frame valid totals.

    One pass over the events (no per-event temporaries): frame ``i`` adds
    ``counts[e]`` at ``pixels[e]`` for ``e`` in ``indptr[i]:indptr[i + 1]``.
    Returns ``(totals, bad)`` where ``bad`` is the index of the first event
    whose pixel is out of range (the pass stops there), else -1.
    """
    totals = np.zeros(indptr.size - 1, dtype=np.float64)
    bad = _accumulate_events(indptr, pixels, counts, valid, pixel_sums, totals)
    return totals, int(bad)
