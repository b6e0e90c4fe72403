"""Numba kernel of the SAXS accumulation: one parallel pass over a chunk.

For a chunk of ``n`` frames (``n x P`` pixels) it adds every pixel's counts
over the frames to ``pixel_sums`` and returns each frame's total over the
valid pixels, in float64 (exact for integer counts). Pixels are split in
blocks across threads; each block writes its own row of per-frame partial
totals, which are summed at the end, so no two threads write the same place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

__all__ = ["accumulate_chunk"]

_BLOCK = 4096


# Reassociation lets LLVM vectorise the per-frame total (a float64 reduction);
# integer counts stay exact (every partial sum is an integer below 2^53).
@njit(parallel=True, nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _accumulate(
    flat: Any, valid: Any, pixel_sums: Any, partial: Any
) -> None:  # pragma: no cover - compiled
    n, npix = flat.shape
    nblocks = partial.shape[0]
    for b in prange(nblocks):
        lo = b * _BLOCK
        hi = min(lo + _BLOCK, npix)
        sums = pixel_sums[lo:hi]
        weight = valid[lo:hi]
        for t in range(n):
            row = flat[t, lo:hi]
            s = 0.0
            for p in range(hi - lo):
                v = np.float64(row[p])
                sums[p] += v
                s += v * weight[p]
            partial[b, t] = s


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
    _accumulate(np.ascontiguousarray(flat), valid, pixel_sums, partial)
    totals: NDArray[np.float64] = partial.sum(axis=0)
    return totals
