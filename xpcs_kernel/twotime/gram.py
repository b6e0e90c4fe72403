"""Numerics of one dynamic bin of the two-time correlator.

See :mod:`xpcs_kernel.twotime.correlator` for the formulas. The bin's scaled time series
are gathered into a reused frames x pixels buffer, whose C order is the
Fortran-ordered pixels x frames matrix that single-precision ``ssyrk`` reads
without a copy. ``ssyrk`` fills the upper triangle of a Fortran-ordered
matrix, i.e. the lower triangle of the C-ordered output matrix (row ``t``
holds ``G(i, t)`` for ``i <= t``); :func:`~xpcs_kernel.twotime.diag.finish_gram`
then scales it into C in place, mirrors it and sums its diagonals in one pass.
With more than one block of pixels the Gram matrix is accumulated in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.twotime.diag import finish_gram
from xpcs_kernel.twotime.store import SeriesStore

__all__ = ["bin_twotime", "pair_counts"]


def pair_counts(valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Number of pairs of valid frames at each delay ``0 .. len(valid) - 1``."""
    n = valid.size
    if valid.all():
        return np.arange(n, 0, -1, dtype=np.float64)
    v = valid.astype(np.float64)
    return np.correlate(v, v, mode="full")[n - 1 :]


def _mean(total: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    count = pair_counts(valid)
    out = np.full(total.size, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def bin_twotime(
    store: SeriesStore,
    cols: NDArray[np.intp],
    scale: NDArray[np.float32],
    block: int,
    n_segments: int,
    work: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
    """C, its diagonal average and segment averages of one bin (module docstring).

    ``cols`` are the bin's store columns to use (ascending), ``scale`` = 1 / M
    per column, ``block`` the number of columns per ssyrk call and ``work`` a
    float32 buffer of at least ``n_frames * min(block, cols.size)`` elements.
    """
    n = store.n_frames
    seg_len = n // n_segments
    contiguous = cols.size > 0 and int(cols[-1]) - int(cols[0]) + 1 == cols.size
    blocks: list[slice | NDArray[np.intp]] = [
        slice(int(cols[i]), int(cols[min(i + block, cols.size) - 1]) + 1)
        if contiguous
        else cols[i : i + block]
        for i in range(0, cols.size, block)
    ]
    from scipy.linalg import blas  # imported on use: multi-tau-only runs skip scipy

    # C-ordered result; its transpose is the Fortran-ordered matrix ssyrk fills
    c2 = np.empty((n, n), dtype=np.float32)
    gram64 = np.zeros((n, n), order="F") if len(blocks) > 1 else None
    frame_sum = np.zeros(n, dtype=np.float64)
    gram: NDArray[np.float32] = c2.T
    for idx in blocks:
        x = store.gather_scaled(idx, scale, work)
        frame_sum += x.sum(axis=1, dtype=np.float64)
        # x.T is Fortran-contiguous (pixels x frames): trans=1 gives x @ x.T
        gram = blas.ssyrk(1.0, x.T, beta=0.0, c=c2.T, trans=1, lower=0, overwrite_c=1)
        if gram64 is not None:
            gram64 += gram
    valid = frame_sum > 0
    weight = np.zeros(n, dtype=np.float64)
    weight[valid] = 1.0 / frame_sum[valid]
    low: NDArray[np.floating] = gram.T if gram64 is None else gram64.T
    diag_sum, seg_sum = finish_gram(low, weight, cols.size, n_segments, c2)
    del gram64
    g2 = _mean(diag_sum, valid)
    g2_seg = np.empty((n_segments, seg_len), dtype=np.float64)
    for m in range(n_segments):
        g2_seg[m] = _mean(seg_sum[m], valid[m * seg_len : (m + 1) * seg_len])
    return c2, g2, g2_seg
