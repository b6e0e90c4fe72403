"""Numba kernels of the dense multi-tau correlator.

The correlated pixels are split into tiles of ``TILE`` pixels; each thread owns
one contiguous range of tiles and allocates its buffers once. For a tile, the
frames of a chunk are gathered into a frame-major float32 buffer behind the
last ``W = 2D`` frames of the level (the carry), so that every
pair ``(t, t + k)`` whose later frame is new is a product of two rows of the
buffer. The lag loop runs over rows and is vectorised over the tile's pixels
(:mod:`xpcs_kernel.multitau.rows`).
Level ``L + 1`` frames are averages of adjacent level ``L`` frames and are built
in a second buffer from the first one, so one call walks all levels.

Per pixel the state is (see :mod:`xpcs_kernel.multitau.state`):

* ``tail0[0:W]``: the last ``W`` frames of level 0 (right aligned, zeros
  before the first frame), and ``tail[L, 0:D+1]`` the oldest ``D + 1`` of
  those of level ``L >= 1``: the newer ``D - 1`` are means of frames still in
  the carry of level ``L - 1`` and are rebuilt from it (:func:`_load_carry`);
* ``total0``: sum of all level 0 frames (float64);
* ``headsum[row(L, k)]``: sum of the first ``k`` level ``L`` frames (float64);
* ``g2acc[row(L, k)]``: sum over pairs of ``I(t) I(t + k)`` (float64).

Products are summed in float32 over at most ``FLUSH`` frames and then added
to float64 tile accumulators, so the error stays at float32 rounding of a
short sum (and integer counts below 2^24 stay exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from xpcs_kernel.multitau.prefetch import prefetch_row
from xpcs_kernel.multitau.rows import FLUSH, TILE, correlate_level

__all__ = [
    "BLOCK",
    "DEFER",
    "DENSIFY_BAD_PIXEL",
    "DENSIFY_OK",
    "DENSIFY_OVERFLOW",
    "FLUSH",
    "TILE",
    "dense_feed",
    "densify_csr",
]

BLOCK = 256
"""Frames of level 0 processed per pass over a tile."""

DEFER = 16
"""An upper level waits until it has this many new frames (or the call ends)."""

_MAX_RUNS = 32
"""A tile whose pixels form at most this many runs of consecutive detector pixels
is copied run by run (vectorised); beyond it, pixel by pixel."""

PREFETCH = 32
"""Frames ahead whose tile columns are prefetched while a tile is converted."""

_FASTMATH = {"contract"}  # allow FMA only; no reassociation


@njit(cache=True, nogil=True)
def _copy_rows(dst: NDArray[np.float32], src: NDArray[np.float32]) -> None:
    """``dst[:] = src`` for ``(rows, TILE)`` float32 blocks, a vectorised loop per row.

    A 2-D slice assignment compiles to a generic strided loop, several times
    slower; per call and tile the kernel copies ~60 carried rows.
    """
    for r in range(src.shape[0]):
        a = src[r]
        b = dst[r]
        for p in range(TILE):
            b[p] = a[p]


@njit(cache=True, nogil=True)
def _prefetch_frame(
    frames: NDArray[Any], more: NDArray[Any], f: int, col: int, nbytes: int, step: int
) -> None:
    """Prefetch ``nbytes`` of new frame ``f`` (``frames``, then ``more``) from column ``col``."""
    n1 = frames.shape[0]
    if f < n1:
        for b in range(0, nbytes, 64):
            prefetch_row(frames, f, col + b // step)
    elif f - n1 < more.shape[0]:
        for b in range(0, nbytes, 64):
            prefetch_row(more, f - n1, col + b // step)


@njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _load_carry(
    buf: NDArray[np.float32],
    o: int,
    o_low: int,
    stored: NDArray[np.float32],
    dpl: int,
    n_low: int,
) -> None:
    """Rebuild the carry of a level ``L >= 1`` at ``buf[o : o + 2D]``.

    Rows ``0 .. D`` are stored; rows ``D+1 .. 2D-1`` are the means of pairs of
    the carry of level ``L - 1`` (at ``buf[o_low:]``, holding ``n_low`` frames
    so far), computed exactly as when the frames were made.
    """
    w = 2 * dpl
    _copy_rows(buf[o : o + dpl + 1], stored)
    par = n_low & 1
    for j in range(dpl + 1, w):
        r = o_low + 2 * j - w - par
        src0 = buf[r]
        src1 = buf[r + 1]
        dst = buf[o + j]
        for p in range(TILE):
            dst[p] = (src0[p] + src1[p]) * np.float32(0.5)


@njit(cache=True, fastmath=_FASTMATH, nogil=True)
def dense_feed(
    frames: NDArray[Any],
    more: NDArray[Any],
    pixel_index: NDArray[np.intp],
    scale: NDArray[np.float32],
    n_before: int,
    dpl: int,
    tile_start: int,
    tile_stop: int,
    n_lev: int,
    n_active: int,
    tail0: NDArray[np.float32],
    tail: NDArray[np.float32],
    total0: NDArray[np.float64],
    headsum: NDArray[np.float32],
    g2acc: NDArray[np.float64],
    headsum0: NDArray[np.float32],
    g2acc0: NDArray[np.float64],
) -> None:
    """Correlate ``frames`` and then ``more`` into the tile-major state, in place.

    The ``n`` new frames are the rows of ``frames`` followed by those of
    ``more`` (two arrays of one type, correlated as if concatenated but
    without a copy; ``more`` may have no rows). ``frame[i, pixel_index[p]] *
    scale[i]`` is the value of correlated pixel ``p`` in the ``i``-th of them;
    ``n_before`` frames were fed before. The
    state arrays are described in :mod:`xpcs_kernel.multitau.state`; levels
    below ``n_active`` accumulate pair and head sums, all ``n_lev`` levels keep
    their carry, and only level 0 keeps its total (``total0``; the others
    follow from it, see :meth:`CorrelatorState.level_total`).

    The call handles tiles ``tile_start .. tile_stop`` and releases the GIL,
    so threads can run disjoint tile ranges at once. Only the levels that
    receive a new frame in this call are read and written (``log2 n`` of them
    for ``n`` new frames, whatever ``n_lev``), so a small call costs about the
    state of those levels. For a tile, every such level has a buffer of ``w``
    carried rows followed by its pending new rows; level 0 is correlated every
    ``BLOCK`` frames, an upper level once it has ``DEFER`` pending rows, and
    every touched level at the end of the call.
    """
    n1 = frames.shape[0]
    n = n1 + more.shape[0]
    npix = pixel_index.shape[0]
    step = frames.itemsize  # bytes per pixel: prefetch one cache line (64 B) at a time
    w = 2 * dpl
    n_after = n_before + n
    n_touch = 0  # levels 0 .. n_touch - 1 receive at least one new frame
    for lev in range(n_lev):
        if (n_after >> lev) > (n_before >> lev):
            n_touch = lev + 1
    blk = min(BLOCK, n)  # level-0 rows per block
    offs = np.zeros(n_touch + 1, np.int64)
    for lev in range(n_touch):
        cap = blk if lev == 0 else 2 * DEFER + (blk >> lev) + 2
        offs[lev + 1] = offs[lev] + w + cap
    # every row is written before it is read (carries are loaded, new rows
    # gathered or averaged); zeroing it would cost a memset per call
    buf = np.empty((offs[n_touch], TILE), np.float32)
    acc = np.zeros((w + 1) * TILE, np.float32)
    junk = np.zeros(TILE, np.float64)  # upper-level totals are derived, not summed
    done = np.zeros(n_lev, np.int64)
    pend = np.zeros(n_lev, np.int64)
    # a masked tile is a few runs of consecutive detector pixels: copy run by run
    run_dst = np.zeros(TILE, np.int64)
    run_src = np.zeros(TILE, np.int64)
    run_len = np.zeros(TILE, np.int64)
    for ti in range(tile_start, tile_stop):
        p0 = ti * TILE
        pw = min(TILE, npix - p0)
        if pw < TILE:
            buf[:, :] = 0.0
        idx = pixel_index[p0 : p0 + pw]
        first = idx[0]
        n_runs = 0
        p = 0
        while p < pw:
            q = p + 1
            while q < pw and idx[q] == idx[p] + (q - p):
                q += 1
            run_dst[n_runs] = p
            run_src[n_runs] = idx[p]
            run_len[n_runs] = q - p
            n_runs += 1
            p = q
        contiguous = n_runs == 1
        runs = n_runs <= _MAX_RUNS
        span = idx[pw - 1] + 1 - first  # detector pixels from the first to the last
        _copy_rows(buf[offs[0] : offs[0] + w], tail0[ti])
        for lev in range(n_touch):
            done[lev] = n_before >> lev
            pend[lev] = 0
            if lev > 0:
                _load_carry(buf, offs[lev], offs[lev - 1], tail[lev, ti], dpl, done[lev - 1])
        for c0 in range(0, n, BLOCK):
            m = min(BLOCK, n - c0)
            last = c0 + m >= n
            o = offs[0] + w
            if contiguous:
                for i in range(m):
                    _prefetch_frame(frames, more, c0 + i + PREFETCH, first, pw * step, step)
                    f = c0 + i
                    src = frames[f] if f < n1 else more[f - n1]
                    src = src[first : first + pw]
                    s = scale[c0 + i]
                    dst = buf[o + i]
                    for p in range(pw):
                        dst[p] = np.float32(src[p]) * s
            elif runs:
                for i in range(m):
                    _prefetch_frame(frames, more, c0 + i + PREFETCH, first, span * step, step)
                    f = c0 + i
                    row = frames[f] if f < n1 else more[f - n1]
                    s = scale[c0 + i]
                    dst = buf[o + i]
                    for r in range(n_runs):
                        ln = run_len[r]
                        rs = row[run_src[r] : run_src[r] + ln]
                        rd = dst[run_dst[r] : run_dst[r] + ln]
                        for j in range(ln):
                            rd[j] = np.float32(rs[j]) * s
            else:
                for i in range(m):
                    f = c0 + i
                    row = frames[f] if f < n1 else more[f - n1]
                    s = scale[c0 + i]
                    dst = buf[o + i]
                    for p in range(pw):
                        dst[p] = np.float32(row[idx[p]]) * s
            pend[0] = m
            for lev in range(n_touch):
                m = pend[lev]
                if m == 0 and last:
                    continue
                # upper levels wait for DEFER rows (or the last block)
                if m == 0 or (lev > 0 and m < DEFER and not last):
                    break
                c_old = done[lev]
                cur = buf[offs[lev] : offs[lev] + w + m]
                if lev < n_active:
                    klo = 1 if lev == 0 else dpl + 1
                    lacc_hi = g2acc[lev, ti]
                    head_hi = headsum[lev, ti]
                    ltot = total0[ti] if lev == 0 else junk
                    correlate_level(cur, m, w, klo, acc, g2acc0[ti], lacc_hi, ltot)
                    # head sums: frames with global index g < k (first rows only)
                    for j in range(w, w + m):
                        g = c_old + j - w
                        if g >= w:
                            break
                        for k in range(max(klo, g + 1), w + 1):
                            hrow = headsum0[ti, k - 1] if k <= dpl else head_hi[k - dpl - 1]
                            for p in range(TILE):
                                hrow[p] += cur[j, p]
                # next level: averages of adjacent frames, appended to its pending rows
                q_old = c_old >> 1
                m_next = ((c_old + m) >> 1) - q_old
                if lev + 1 < n_touch:
                    o = offs[lev + 1] + w + pend[lev + 1]
                    for q in range(m_next):
                        r = w + 2 * (q_old + q) - c_old
                        src0 = cur[r]
                        src1 = cur[r + 1]
                        dst = buf[o + q]
                        for p in range(TILE):
                            dst[p] = (src0[p] + src1[p]) * np.float32(0.5)
                    pend[lev + 1] += m_next
                # carry: the last w rows move to the top
                for r in range(w):
                    src = cur[m + r]
                    dst = cur[r]
                    for p in range(TILE):
                        dst[p] = src[p]
                done[lev] = c_old + m
                pend[lev] = 0
        _copy_rows(tail0[ti], buf[offs[0] : offs[0] + w])
        for lev in range(1, n_touch):
            _copy_rows(tail[lev, ti], buf[offs[lev] : offs[lev] + dpl + 1])


DENSIFY_OK = 0
DENSIFY_OVERFLOW = 1
DENSIFY_BAD_PIXEL = 2


@njit(cache=True, nogil=True)
def densify_csr(
    indptr: NDArray[np.int64],
    pixels: NDArray[np.int64],
    counts: NDArray[Any],
    column: NDArray[np.int64],
    f0: int,
    out: NDArray[Any],
    top: int,
) -> int:
    """Scatter frames ``f0 .. f0 + len(out)`` of a CSR event list into ``out``.

    ``column[pixel]`` is the output column of a detector pixel (-1: not
    correlated). Repeated events of one pixel in a frame add up. For an
    integer ``out`` pass its largest value as ``top`` (else -1). Returns
    :data:`DENSIFY_OK`, or stops at the first event whose sum would exceed
    ``top`` (:data:`DENSIFY_OVERFLOW`) or whose pixel is outside
    ``[0, len(column))`` (:data:`DENSIFY_BAD_PIXEL`): the range check rides
    along the scatter instead of costing its own pass over the events.
    """
    n_col = column.shape[0]
    out[:] = 0
    for i in range(out.shape[0]):
        for e in range(indptr[f0 + i], indptr[f0 + i + 1]):
            px = pixels[e]
            if px < 0 or px >= n_col:
                return DENSIFY_BAD_PIXEL
            c = column[px]
            if c >= 0:
                if top >= 0 and np.int64(out[i, c]) + np.int64(counts[e]) > top:
                    return DENSIFY_OVERFLOW
                out[i, c] += counts[e]
    return DENSIFY_OK
