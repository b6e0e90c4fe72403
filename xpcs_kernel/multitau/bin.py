"""Numba kernel of the g2 reduction: every delay in one pass over the correlator state.

For a delay of lag ``k`` at level ``L`` with ``M`` pairs, per pixel ``p``:

* ``A_p``: the sum over pairs of ``I(t) I(t + k)``, so ``G2_p = A_p / M``;
* ``P_p = T_p - L_p`` with ``T_p`` the level total and ``L_p`` the sum of its
  last ``k`` frames (the newest ``k`` rows of the carry), so ``IP_p = P_p / M``;
* ``F_p = T_p - H_p`` with ``H_p`` the sum of its first ``k`` frames, so
  ``IF_p = F_p / M``.

Per static bin ``s`` with ``n_s`` pixels: ``<G2>_s = sum_{p in s} A_p / M / n_s``
(likewise ``<IP>_s``, ``<IF>_s``; NaN if ``n_s = 0``) and ``g2_s = <G2>_s /
(<IP>_s <IF>_s)`` (NaN if the denominator is 0). Per dynamic bin ``d``:
``g2_d`` is the mean of the finite ``g2_s`` of its static bins and, over the
``n_d`` pixels with ``IP_p IF_p > 0`` (i.e. ``P_p F_p > 0``), with the ratio
``r_p = G2_p / (IP_p IF_p) = M A_p / (P_p F_p)``::

    mean_d = sum r_p / n_d,  var_d = sum (r_p - mean_d)^2 / n_d,
    err_d = sqrt(var_d) / sqrt(n_d)

(NaN if ``n_d = 0``; exactly 0 for a single pair, where every ``r_p`` is 1 up
to the float32 rounding of ``A_p``).

The variance is computed in one pass with shifted sums, which is numerically
sound (Chan, Golub & LeVeque 1983): each chunk of pixels takes as shift ``K``
the first ratio of the bin it meets and sums ``x = r_p - K`` and ``x^2``; then
``mean_c = K + S1 / n_c`` and ``M2_c = S2 - S1^2 / n_c`` (no cancellation
while ``K`` is a sample of the bin: ``|mean_c - K|`` is of the order of the
spread), and the chunks are merged in order with the pairwise update
``M2 = M2_a + M2_b + (mean_b - mean_a)^2 n_a n_b / n``.

The pixels are split into chunks of whole tiles (``TILE`` pixels) fixed by the
pixel and bin counts only, so the result does not depend on the threads. For
each tile the kernel copies the level-0 carry and total into small buffers,
bins every delay of the level, then derives the next level in place exactly
as :meth:`xpcs_kernel.multitau.state.CorrelatorState.carry` does (same
float32 operations), so the state is read once and not modified, and no
array of the pixel count is allocated. ``L_p`` is summed newest row first, one
row more per lag of the level; the sums differ from the former numpy
reduction (per-delay ``np.bincount``, two-pass variance) by float64 rounding
only (~1e-15 relative on 256x256 and 1 Mpx). Pixels whose run of equal static
bins continues are added in registers (:func:`_scatter`). The ratio is
computed for every pixel vectorised (``error_model="numpy"``: a division by 0
gives inf or NaN there, never counted since ``P_p F_p > 0`` is required).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from xpcs_kernel.multitau.dense import TILE
from xpcs_kernel.multitau.scheme import DelayScheme
from xpcs_kernel.multitau.state import CorrelatorState

__all__ = ["Partial", "bin_partial", "merge_partials"]

Partial = tuple[NDArray[np.float64], NDArray[np.float64]]
"""Per-chunk sums ``(ssum, dsum)`` of a set of pixels (see :func:`bin_partial`)."""

_MAX_CHUNKS = 32
_MIN_PIXELS_PER_BIN = 32  # a chunk has at least this many pixels per static bin


def bin_partial(
    state: CorrelatorState,
    scheme: DelayScheme,
    static_index: NDArray[np.intp],
    dynamic_of_static: NDArray[np.intp],
    n_dynamic: int,
    *,
    parallel: bool = True,
) -> Partial:
    """Per-chunk bin sums ``(ssum, dsum)`` of the pixels of ``state``.

    ``static_index`` gives the static bin of each of the state's pixels; with
    ``parallel=False`` the pass runs in the calling thread only.
    Partial sums of disjoint pixel sets (in a fixed order) are combined by
    :func:`merge_partials`; see :func:`_pixel_pass` for their layout.
    """
    n_corr = state.n_corr
    n_static = int(dynamic_of_static.size)
    n_tau = int(scheme.delays.size)
    n_tiles = -(-n_corr // TILE)
    n_chunks = max(1, min(_MAX_CHUNKS, n_tiles, n_corr // (_MIN_PIXELS_PER_BIN * n_static)))
    bounds = (np.arange(n_chunks + 1, dtype=np.intp) * n_tiles) // n_chunks
    static = np.ascontiguousarray(static_index, dtype=np.intp)
    dyn_of_static = np.ascontiguousarray(dynamic_of_static, dtype=np.intp)
    ssum = np.zeros((n_chunks, n_tau, n_static, 3))
    dsum = np.zeros((n_chunks, n_tau, n_dynamic, 4))
    _pixel_pass(
        state.tail0,
        state.total0,
        state.tail,
        state.g2acc0,
        state.headsum0,
        state.g2acc,
        state.headsum,
        state.n_frames,
        state.dpl,
        np.ascontiguousarray(scheme.levels, dtype=np.int64),
        np.ascontiguousarray(scheme.lags, dtype=np.int64),
        np.ascontiguousarray(scheme.pair_counts, dtype=np.int64),
        static,
        dyn_of_static,
        bounds,
        ssum,
        dsum,
        parallel,
    )
    return ssum, dsum


def merge_partials(
    scheme: DelayScheme,
    static_index: NDArray[np.intp],
    dynamic_of_static: NDArray[np.intp],
    partials: list[Partial],
) -> tuple[NDArray[np.float64], ...]:
    """``(g2, g2_err, G2_static, IP_static, IF_static)`` from :func:`bin_partial` sums.

    ``static_index`` covers every pixel of every partial (it gives the pixel
    count of each static bin); the chunks are merged in the order given.
    """
    n_static = int(dynamic_of_static.size)
    n_dynamic = int(partials[0][1].shape[2])
    n_tau = int(scheme.delays.size)
    dyn_of_static = np.ascontiguousarray(dynamic_of_static, dtype=np.intp)
    pix_per_static = np.bincount(static_index, minlength=n_static).astype(np.float64)
    ssum = np.concatenate([p[0] for p in partials]) if len(partials) > 1 else partials[0][0]
    dsum = np.concatenate([p[1] for p in partials]) if len(partials) > 1 else partials[0][1]
    out = tuple(np.empty((n_tau, n)) for n in (n_dynamic, n_dynamic, n_static, n_static, n_static))
    _merge(scheme.pair_counts.astype(np.float64), pix_per_static, dyn_of_static, ssum, dsum, *out)
    return out


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _pixel_pass(
    tail0: NDArray[np.float32],
    total0: NDArray[np.float64],
    tail: NDArray[np.float32],
    g2acc0: NDArray[np.float64],
    headsum0: NDArray[np.float32],
    g2acc: NDArray[np.float64],
    headsum: NDArray[np.float32],
    n_frames: int,
    d: int,
    levels: NDArray[np.int64],
    lags: NDArray[np.int64],
    pairs: NDArray[np.int64],
    static: NDArray[np.intp],
    dyn_of_static: NDArray[np.intp],
    bounds: NDArray[np.intp],
    ssum: NDArray[np.float64],
    dsum: NDArray[np.float64],
    parallel: bool,
) -> None:
    """Add every pixel of every delay ``i`` to the sums of its chunk ``c``.

    ``ssum[c, i, s] = (sum A_p, sum P_p, sum F_p)`` over the static bin and
    ``dsum[c, i, d] = (n, K, S1, S2)``: count, shift, ``sum (r_p - K)`` and
    ``sum (r_p - K)^2`` over the pixels of the dynamic bin with ``P_p F_p > 0``.
    The chunks run on numba's threads, or one after the other in the calling
    thread when ``parallel`` is False (for callers that run their own threads).
    """
    n_chunks = bounds.size - 1
    arrays = (tail0, total0, tail, g2acc0, headsum0, g2acc, headsum)
    scheme = (levels, lags, pairs)
    bins = (static, dyn_of_static)
    if parallel:
        for c in prange(n_chunks):
            _chunk_pass(c, arrays, n_frames, d, scheme, bins, bounds, ssum, dsum)
    else:
        for c in range(n_chunks):
            _chunk_pass(c, arrays, n_frames, d, scheme, bins, bounds, ssum, dsum)


@njit(cache=True, nogil=True, error_model="numpy")
def _chunk_pass(
    c: int,
    arrays: tuple[
        NDArray[np.float32],
        NDArray[np.float64],
        NDArray[np.float32],
        NDArray[np.float64],
        NDArray[np.float32],
        NDArray[np.float64],
        NDArray[np.float32],
    ],
    n_frames: int,
    d: int,
    scheme: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]],
    bins: tuple[NDArray[np.intp], NDArray[np.intp]],
    bounds: NDArray[np.intp],
    ssum: NDArray[np.float64],
    dsum: NDArray[np.float64],
) -> None:
    """Chunk ``c`` of :func:`_pixel_pass` (the state arrays, scheme and bins packed)."""
    tail0, total0, tail, g2acc0, headsum0, g2acc, headsum = arrays
    levels, lags, pairs = scheme
    static, dyn_of_static = bins
    n_corr = static.size
    n_tau = lags.size
    w = 2 * d
    carry = np.empty((w, TILE), dtype=np.float32)
    newer = np.empty((w, TILE), dtype=np.float32)
    total = np.empty(TILE, dtype=np.float64)
    last = np.empty(TILE, dtype=np.float64)
    pp = np.empty(TILE, dtype=np.float64)
    ff = np.empty(TILE, dtype=np.float64)
    norm = np.empty(TILE, dtype=np.float64)
    ratio = np.empty(TILE, dtype=np.float64)
    for t in range(bounds[c], bounds[c + 1]):
        n_pix = min(TILE, n_corr - t * TILE)
        carry[:, :] = tail0[t]
        total[:] = total0[t]
        lev = 0
        for i in range(n_tau):
            while lev < levels[i]:  # as CorrelatorState._step, float32 the same
                par = (n_frames >> lev) & 1
                for j in range(TILE):
                    if par:
                        total[j] -= carry[w - 1, j]
                    total[j] *= 0.5
                for q in range(d + 1, w):
                    r = 2 * q - w - par
                    for j in range(TILE):
                        newer[q, j] = (carry[r, j] + carry[r + 1, j]) * np.float32(0.5)
                carry[: d + 1] = tail[lev + 1, t]
                carry[d + 1 :] = newer[d + 1 :]
                lev += 1
            k = lags[i]
            m = np.float64(pairs[i])
            if lev == 0 and k <= d:
                acc = g2acc0[t, k - 1]
                head = headsum0[t, k - 1]
            else:
                acc = g2acc[lev, t, k - d - 1]
                head = headsum[lev, t, k - d - 1]
            # L_p, newest row first: the previous delay (lag k - 1, same level)
            # left the newest k - 1 rows in `last`, so one row is added
            top = w - k + 1
            if i == 0 or levels[i - 1] != lev or lags[i - 1] != k - 1:
                last[:] = 0.0
                top = w
            for r in range(top - 1, w - k - 1, -1):  # vectorised over pixels
                for j in range(TILE):
                    last[j] += np.float64(carry[r, j])
            for j in range(TILE):  # vectorised; a ratio counts only where norm > 0
                pp[j] = total[j] - last[j]
                ff[j] = total[j] - np.float64(head[j])
                norm[j] = pp[j] * ff[j]
                ratio[j] = m * acc[j] / norm[j]
            _scatter(
                static[t * TILE : t * TILE + n_pix],
                dyn_of_static,
                acc,
                pp,
                ff,
                norm,
                ratio,
                ssum[c, i],
                dsum[c, i],
            )


@njit(cache=True, nogil=True, error_model="numpy")
def _scatter(
    static: NDArray[np.intp],
    dyn_of_static: NDArray[np.intp],
    acc: NDArray[np.float64],
    pp: NDArray[np.float64],
    ff: NDArray[np.float64],
    norm: NDArray[np.float64],
    ratio: NDArray[np.float64],
    ss: NDArray[np.float64],
    ds: NDArray[np.float64],
) -> None:
    """Add a tile's pixels to the bin sums ``ss[s] = (A, P, F)`` and ``ds[d] = (n, K, S1, S2)``.

    Runs of pixels in the same bin (the rule in a q-map) are summed in
    registers and added to the bin once, so the additions do not wait for
    each other through memory.
    """
    cur = static[0]
    sa, sp, sf = 0.0, 0.0, 0.0
    cur_d = dyn_of_static[cur]
    dn, dk, d1, d2 = ds[cur_d, 0], ds[cur_d, 1], ds[cur_d, 2], ds[cur_d, 3]
    for j in range(static.size):
        s = static[j]
        if s != cur:
            ss[cur, 0] += sa
            ss[cur, 1] += sp
            ss[cur, 2] += sf
            sa, sp, sf = 0.0, 0.0, 0.0
            cur = s
            b = dyn_of_static[s]
            if b != cur_d:
                ds[cur_d, 0], ds[cur_d, 1], ds[cur_d, 2], ds[cur_d, 3] = dn, dk, d1, d2
                cur_d = b
                dn, dk, d1, d2 = ds[b, 0], ds[b, 1], ds[b, 2], ds[b, 3]
        sa += acc[j]
        sp += pp[j]
        sf += ff[j]
        if norm[j] > 0.0:
            if dn == 0.0:
                dk = ratio[j]  # the shift: the first ratio of the bin in the chunk
            x = ratio[j] - dk
            dn += 1.0
            d1 += x
            d2 += x * x
    ss[cur, 0] += sa
    ss[cur, 1] += sp
    ss[cur, 2] += sf
    ds[cur_d, 0], ds[cur_d, 1], ds[cur_d, 2], ds[cur_d, 3] = dn, dk, d1, d2


@njit(cache=True, nogil=True)
def _merge(
    pairs: NDArray[np.float64],
    pix_per_static: NDArray[np.float64],
    dyn_of_static: NDArray[np.intp],
    ssum: NDArray[np.float64],
    dsum: NDArray[np.float64],
    g2: NDArray[np.float64],
    g2_err: NDArray[np.float64],
    g2_static: NDArray[np.float64],
    ip_static: NDArray[np.float64],
    if_static: NDArray[np.float64],
) -> None:
    """Chunks merged in order, then the static and dynamic bins of every delay."""
    n_chunks, n_tau, n_static = ssum.shape[0], ssum.shape[1], ssum.shape[2]
    n_dyn = dsum.shape[2]
    n_ok = np.empty(n_dyn)
    g2_sum = np.empty(n_dyn)
    for i in range(n_tau):
        m = pairs[i]
        n_ok[:] = 0.0
        g2_sum[:] = 0.0
        for s in range(n_static):
            n_s = pix_per_static[s]
            if n_s == 0.0:
                g2_static[i, s] = np.nan
                ip_static[i, s] = np.nan
                if_static[i, s] = np.nan
                continue
            sa, sp, sf = 0.0, 0.0, 0.0
            for c in range(n_chunks):
                sa += ssum[c, i, s, 0]
                sp += ssum[c, i, s, 1]
                sf += ssum[c, i, s, 2]
            g2_static[i, s] = sa / m / n_s
            ip_static[i, s] = sp / m / n_s
            if_static[i, s] = sf / m / n_s
            den = ip_static[i, s] * if_static[i, s]
            if den != 0.0:
                g_s = g2_static[i, s] / den
                if np.isfinite(g_s):
                    n_ok[dyn_of_static[s]] += 1.0
                    g2_sum[dyn_of_static[s]] += g_s
        for b in range(n_dyn):
            g2[i, b] = g2_sum[b] / n_ok[b] if n_ok[b] > 0.0 else np.nan
            n, mean, m2 = 0.0, 0.0, 0.0
            for c in range(n_chunks):
                n_c = dsum[c, i, b, 0]
                if n_c == 0.0:
                    continue
                s1 = dsum[c, i, b, 2]
                mean_c = dsum[c, i, b, 1] + s1 / n_c
                m2_c = max(dsum[c, i, b, 3] - s1 * s1 / n_c, 0.0)
                n_new = n + n_c
                delta = mean_c - mean
                mean += delta * (n_c / n_new)
                m2 += m2_c + delta * delta * (n * n_c / n_new)
                n = n_new
            if n == 0.0:
                g2_err[i, b] = np.nan
            elif m == 1.0:  # one pair: every ratio is 1, up to float32 rounding
                g2_err[i, b] = 0.0
            else:
                g2_err[i, b] = np.sqrt(m2 / n) / np.sqrt(n)
