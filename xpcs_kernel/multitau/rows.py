"""Pair-sum loops of the dense multi-tau kernel: one level of one pixel tile.

A tile's frames of one level sit frame-major in a float32 buffer (``TILE``
pixels per row) behind the ``W = 2D`` rows carried from before. For each new
row ``j`` and lag ``k`` the loops add ``cur[j - k] * cur[j]`` to a float32
accumulator, vectorised over the tile's pixels; :func:`correlate_level` runs
them over at most ``FLUSH`` rows at a time and flushes the sums to float64
(so integer counts below 2^24 stay exact). ``D = 4`` has unrolled versions
(four rows per pass, all lags in registers); any other ``D`` takes the
generic loop. Used by :func:`xpcs_kernel.multitau.dense.dense_feed`.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["FLUSH", "TILE", "correlate_level"]

TILE = 256
"""Pixels per tile (a tile's buffers stay in the L2 cache)."""

FLUSH = 32
"""Frames summed in float32 before adding to the float64 accumulators."""

_FASTMATH = {"contract"}  # allow FMA only; no reassociation


@njit(cache=True, fastmath=_FASTMATH)
def _rows_d4_level0(cur: NDArray[np.float32], j: int, stop: int, acc: NDArray[np.float32]) -> int:
    """Rows ``j .. stop`` at level 0 with ``D = 4`` (lags 1..8), four rows per pass.

    ``acc`` is flat, lag ``k`` at ``k * TILE`` (row 0: plain sums): constant
    offsets let LLVM prove the rows independent and vectorise over pixels
    with every operand in registers.
    """
    t = TILE
    while j + 3 < stop:
        for p in range(t):
            x0 = cur[j, p]
            x1 = cur[j + 1, p]
            x2 = cur[j + 2, p]
            x3 = cur[j + 3, p]
            c7 = cur[j - 1, p]
            c6 = cur[j - 2, p]
            c5 = cur[j - 3, p]
            c4 = cur[j - 4, p]
            c3 = cur[j - 5, p]
            c2 = cur[j - 6, p]
            c1 = cur[j - 7, p]
            c0 = cur[j - 8, p]
            acc[p] += (x0 + x1) + (x2 + x3)
            acc[t + p] += c7 * x0 + x0 * x1 + x1 * x2 + x2 * x3
            acc[2 * t + p] += c6 * x0 + c7 * x1 + x0 * x2 + x1 * x3
            acc[3 * t + p] += c5 * x0 + c6 * x1 + c7 * x2 + x0 * x3
            acc[4 * t + p] += c4 * x0 + c5 * x1 + c6 * x2 + c7 * x3
            acc[5 * t + p] += c3 * x0 + c4 * x1 + c5 * x2 + c6 * x3
            acc[6 * t + p] += c2 * x0 + c3 * x1 + c4 * x2 + c5 * x3
            acc[7 * t + p] += c1 * x0 + c2 * x1 + c3 * x2 + c4 * x3
            acc[8 * t + p] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
        j += 4
    while j < stop:
        for p in range(t):
            x0 = cur[j, p]
            acc[p] += x0
            acc[t + p] += cur[j - 1, p] * x0
            acc[2 * t + p] += cur[j - 2, p] * x0
            acc[3 * t + p] += cur[j - 3, p] * x0
            acc[4 * t + p] += cur[j - 4, p] * x0
            acc[5 * t + p] += cur[j - 5, p] * x0
            acc[6 * t + p] += cur[j - 6, p] * x0
            acc[7 * t + p] += cur[j - 7, p] * x0
            acc[8 * t + p] += cur[j - 8, p] * x0
        j += 1
    return j


@njit(cache=True, fastmath=_FASTMATH)
def _rows_d4_upper(cur: NDArray[np.float32], j: int, stop: int, acc: NDArray[np.float32]) -> int:
    """Rows ``j .. stop`` at a level ``L >= 1`` with ``D = 4`` (lags 5..8)."""
    t = TILE
    while j + 3 < stop:
        for p in range(t):
            x0 = cur[j, p]
            x1 = cur[j + 1, p]
            x2 = cur[j + 2, p]
            x3 = cur[j + 3, p]
            c6 = cur[j - 2, p]
            c5 = cur[j - 3, p]
            c4 = cur[j - 4, p]
            c3 = cur[j - 5, p]
            c2 = cur[j - 6, p]
            c1 = cur[j - 7, p]
            c0 = cur[j - 8, p]
            acc[p] += (x0 + x1) + (x2 + x3)
            acc[5 * t + p] += c3 * x0 + c4 * x1 + c5 * x2 + c6 * x3
            acc[6 * t + p] += c2 * x0 + c3 * x1 + c4 * x2 + c5 * x3
            acc[7 * t + p] += c1 * x0 + c2 * x1 + c3 * x2 + c4 * x3
            acc[8 * t + p] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
        j += 4
    while j < stop:
        for p in range(t):
            x0 = cur[j, p]
            acc[p] += x0
            acc[5 * t + p] += cur[j - 5, p] * x0
            acc[6 * t + p] += cur[j - 6, p] * x0
            acc[7 * t + p] += cur[j - 7, p] * x0
            acc[8 * t + p] += cur[j - 8, p] * x0
        j += 1
    return j


@njit(cache=True, fastmath=_FASTMATH)
def _rows_generic(
    cur: NDArray[np.float32], j: int, stop: int, w: int, klo: int, acc: NDArray[np.float32]
) -> int:
    """Rows ``j .. stop`` for any ``D`` (lags ``klo .. 2D``), one row per pass."""
    t = TILE
    while j < stop:
        x0 = cur[j]
        for p in range(t):
            acc[p] += x0[p]
        for k in range(klo, w + 1):
            a0 = cur[j - k]
            o = k * t
            for p in range(t):
                acc[o + p] += a0[p] * x0[p]
        j += 1
    return j


@njit(cache=True, fastmath=_FASTMATH)
def correlate_level(
    cur: NDArray[np.float32],
    m: int,
    w: int,
    klo: int,
    acc: NDArray[np.float32],
    lacc_lo: NDArray[np.float64],
    lacc_hi: NDArray[np.float64],
    ltot: NDArray[np.float64],
) -> None:
    """Pair sums of the ``m`` new rows of ``cur`` (after ``w`` carried rows).

    Adds ``sum_j cur[j - k] cur[j]`` to ``lacc_lo[k - 1]`` for ``k <= w / 2``
    and to ``lacc_hi[k - w / 2 - 1]`` for larger ``k`` (``k = klo .. w``), and
    ``sum_j cur[j]`` to ``ltot``; sums run in float32 over at most
    ``FLUSH`` rows (``acc``, flat, lag ``k`` at ``k * TILE``, zero on entry
    and on return), then go to the float64 rows.
    """
    t = TILE
    j = w
    end = w + m
    while j < end:
        stop = min(end, j + FLUSH)
        if w == 8 and klo == 1:
            j = _rows_d4_level0(cur, j, stop, acc)
        elif w == 8 and klo == 5:
            j = _rows_d4_upper(cur, j, stop, acc)
        else:
            j = _rows_generic(cur, j, stop, w, klo, acc)
        # flush and clear (``acc`` is all zeros between calls); 1-D slices
        # vectorise far better here than flat indexing
        d = w // 2
        for k in range(klo, w + 1):
            dk = lacc_lo[k - 1] if k <= d else lacc_hi[k - d - 1]
            ak = acc[k * t : (k + 1) * t]
            for p in range(t):
                dk[p] += ak[p]
            ak[:] = 0.0
        a0 = acc[:t]
        for p in range(t):
            ltot[p] += a0[p]
        a0[:] = 0.0
