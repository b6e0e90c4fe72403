"""Numba kernel that turns one bin's Gram triangle into C and its diagonal sums.

Given the lower triangle of the Gram matrix :math:`G` (row ``i`` holds
``G[i, j]`` for ``j <= i``, as left by ``ssyrk``), the weights
:math:`w_t = 1 / s(t)` (0 for a frame whose bin sum is not positive) and the
pixel count :math:`|P|`, one parallel pass over square tiles of the triangle

* writes the full symmetric float32 matrix
  :math:`C(i, j) = C(j, i) = |P| G(i, j) w_i w_j` (NaN where either weight is
  0), possibly in place over the Gram matrix itself (only lower-triangle
  elements are read, each before its own tile writes it);
* adds each written value of the lower triangle, in float64, to the sum of
  its delay ``i - j`` and, when ``i`` and ``j`` lie in the same time segment,
  to that segment's sum of the same delay.

Tile rows are processed in pairs (``k`` and ``n_tiles - 1 - k``) so that every
parallel iteration handles about the same number of tiles; each iteration has
its own row of partial sums, added up at the end, so no two threads write the
same place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

__all__ = ["TILE", "finish_gram"]

TILE = 64
"""Rows and columns of one tile (a float32 tile and its transpose stay in L1/L2)."""


@njit(parallel=True, nogil=True, cache=True)
def _finish(
    low: Any,
    weight: Any,
    n_pix: float,
    seg_of: Any,
    out: Any,
    partial: Any,
    partial_seg: Any,
) -> None:  # pragma: no cover - compiled
    n = low.shape[0]
    n_tiles = (n + TILE - 1) // TILE
    n_pairs = partial.shape[0]
    nan = np.float32(np.nan)
    for k in prange(n_pairs):
        for r in range(2):
            bi = k if r == 0 else n_tiles - 1 - k
            if r == 1 and bi == k:
                continue
            i0 = bi * TILE
            i1 = min(i0 + TILE, n)
            for bj in range(bi + 1):
                j0 = bj * TILE
                for i in range(i0, i1):
                    wi = weight[i] * n_pix
                    si = seg_of[i]
                    j1 = min(j0 + TILE, i + 1)
                    for j in range(j0, j1):
                        wj = weight[j]
                        if wi > 0.0 and wj > 0.0:
                            c = np.float32(np.float64(low[i, j]) * wi * wj)
                            cd = np.float64(c)
                            partial[k, i - j] += cd
                            if si >= 0 and seg_of[j] == si:
                                partial_seg[k, si, i - j] += cd
                        else:
                            c = nan
                        out[i, j] = c
                        out[j, i] = c


def finish_gram(
    low: NDArray[Any],
    weight: NDArray[np.float64],
    n_pix: int,
    n_segments: int,
    out: NDArray[np.float32],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Write C into ``out``; return the diagonal sums of C and of each segment.

    Parameters
    ----------
    low : ndarray of float32 or float64, shape (N, N)
        Gram matrix; only its lower triangle (``j <= i``) is read. May be
        ``out`` itself.
    weight : ndarray of float64, shape (N,)
        :math:`1 / s(t)`, or 0 for a frame left out (its row and column of C
        become NaN and it adds nothing to the sums).
    n_pix : int
        :math:`|P|`, the bin's pixel count.
    n_segments : int
        Number of consecutive diagonal segments of length ``N // n_segments``.
    out : ndarray of float32, shape (N, N), C-contiguous
        Receives the full symmetric matrix C.

    Returns
    -------
    diag_sum : ndarray of float64, shape (N,)
        ``diag_sum[tau] = sum_t C(t + tau, t)`` over the valid pairs.
    seg_sum : ndarray of float64, shape (n_segments, N // n_segments)
        The same sums restricted to each segment's diagonal block.
    """
    n = low.shape[0]
    seg_len = n // n_segments
    seg_of = np.full(n, -1, dtype=np.int64)
    if seg_len:
        seg_of[: n_segments * seg_len] = np.arange(n_segments * seg_len) // seg_len
    n_pairs = ((n + TILE - 1) // TILE + 1) // 2
    partial = np.zeros((n_pairs, n), dtype=np.float64)
    partial_seg = np.zeros((n_pairs, n_segments, seg_len), dtype=np.float64)
    if n:
        _finish(low, weight, float(n_pix), seg_of, out, partial, partial_seg)
    return partial.sum(axis=0), partial_seg.sum(axis=0)
