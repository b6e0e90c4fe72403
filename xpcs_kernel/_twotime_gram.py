"""Numerics of one dynamic bin of the two-time correlator.

See :mod:`xpcs_kernel.twotime` for the formulas. The Gram matrix is built by
single-precision ``ssyrk`` over blocks of pixel columns (accumulated in
float64 when there is more than one block); ``ssyrk`` fills the upper triangle
of a Fortran-ordered matrix, whose C-ordered transpose is the lower triangle
used below (row ``t`` holds ``C(i, t)`` for ``i <= t``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel._twotime_store import SeriesStore

__all__ = ["bin_twotime", "diagonal_mean"]


def bin_twotime(
    store: SeriesStore,
    cols: NDArray[np.intp],
    scale: NDArray[np.float32],
    block: int,
    n_segments: int,
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
    """C, its diagonal average and segment averages of one bin (module docstring).

    ``cols`` are the bin's store columns to use, ``scale`` = 1 / M per
    column, ``block`` the number of columns per ssyrk call.
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

    gram64 = np.zeros((n, n), order="F") if len(blocks) > 1 else None
    gram = np.zeros((n, n), dtype=np.float32, order="F")
    frame_sum = np.zeros(n, dtype=np.float64)
    for idx in blocks:
        x = store.gather(idx)
        x *= scale[idx]
        frame_sum += x.sum(axis=1, dtype=np.float64)
        # x.T is Fortran-contiguous (pixels x frames): trans=1 gives x @ x.T
        gram = blas.ssyrk(1.0, x.T, beta=0.0, c=gram, trans=1, lower=0, overwrite_c=1)
        if gram64 is not None:
            gram64 += gram
    valid = frame_sum > 0
    weight = np.zeros(n, dtype=np.float64)
    weight[valid] = 1.0 / frame_sum[valid]
    if gram64 is not None:
        low64 = gram64.T
        low64 *= weight[:, None]
        low64 *= weight[None, :] * cols.size
        low = low64.astype(np.float32)
        del gram64, low64
    else:
        low = gram.T
        low *= weight.astype(np.float32)[:, None]
        low *= (weight * cols.size).astype(np.float32)[None, :]
    g2 = diagonal_mean(low, valid)
    g2_seg = np.empty((n_segments, seg_len), dtype=np.float64)
    for m in range(n_segments):
        s = slice(m * seg_len, (m + 1) * seg_len)
        g2_seg[m] = diagonal_mean(low[s, s], valid[s])
    c2 = low + low.T
    c2.flat[:: n + 1] *= 0.5
    if not valid.all():
        c2[~valid, :] = np.nan
        c2[:, ~valid] = np.nan
    return c2, g2, g2_seg


def diagonal_mean(low: NDArray[np.float32], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Mean of each diagonal of a symmetric matrix given by its lower triangle.

    ``out[tau] = sum_t low[t + tau, t] / count[tau]`` with ``count[tau]`` the
    number of pairs of valid frames at that delay; NaN where there is none.
    """
    n = low.shape[0]
    acc = np.zeros(n, dtype=np.float64)
    for t in range(n):
        acc[: t + 1] += low[t, t::-1]
    if valid.all():
        count = np.arange(n, 0, -1, dtype=np.float64)
    else:
        v = valid.astype(np.float64)
        count = np.correlate(v, v, mode="full")[n - 1 :]
    out = np.full(n, np.nan)
    np.divide(acc, count, out=out, where=count > 0)
    return out
