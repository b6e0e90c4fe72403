"""Two-time correlation per dynamic q-bin, computed as blocked BLAS Gram matrices.

What is computed
----------------
For a dynamic bin with pixel set :math:`P` and frames :math:`t = 0 \\dots N-1`,
each pixel's intensity is first *smoothed* (divided) by a time-averaged
intensity :math:`M_p`,

.. math::

    J_p(t) = I_p(t) / M_p, \\qquad
    M_p = \\bar I_p = \\frac{1}{N} \\sum_t I_p(t) \\quad \\text{(default), or}
    \\quad M_p = \\frac{1}{|S|} \\sum_{q \\in S} \\bar I_q
    \\quad \\text{(``static_index`` given, } S \\ni p \\text{ its static bin)},

which removes the static intensity gradient across the bin. Pixels with
:math:`M_p = 0` are excluded; :math:`|P|` counts the others. Then

.. math::

    C(t_1, t_2) = \\frac{\\langle J_p(t_1) J_p(t_2) \\rangle_P}
                       {\\langle J_p(t_1) \\rangle_P \\langle J_p(t_2) \\rangle_P}
                = |P| \\frac{G(t_1, t_2)}{s(t_1) s(t_2)},

with the Gram matrix :math:`G = J J^T` (frames x pixels times its transpose) and
the per-frame sums :math:`s(t) = \\sum_{p} J_p(t)`. Dividing by
:math:`s(t_1) s(t_2)` also cancels any per-frame intensity drift (a per-frame
scale factor cancels exactly). A frame whose bin sum :math:`s(t)` is zero has
no defined :math:`C`: its row and column are NaN and it is left out of the
averages below.

Choice of smoothing. boost_corr divides each frame by the per-frame mean of the
static (``sqmap``) or dynamic (``dqmap``) bin. Per dynamic bin this factor
cancels in :math:`C` (no gradient correction: on a bin whose mean intensity
varies 8-fold, :math:`g_2` comes out about 0.2 too high); per small static bin
it removes part of the speckle fluctuation and biases :math:`g_2` low. The
per-pixel time mean (the default here) has no gradient error but, being
estimated from the same frames, biases :math:`C` low by about
:math:`\\tau_c / N` (-0.02 at :math:`\\tau_c = 20`, :math:`N = 500` on
synthetic speckle). Averaging the time mean over each static bin
(``static_index``) keeps the gradient correction at the static-bin scale and
shrinks that bias by the static bin's pixel count (measured within 0.002 of
theory in the same test): pass it when static bins are available.

The diagonal average ("one-time" g2 from the two-time map) is

.. math::

    g_2(\\tau) = \\frac{1}{N - \\tau} \\sum_{t=0}^{N-1-\\tau} C(t, t + \\tau),
    \\qquad \\tau = 0 \\dots N-1,

and ``g2_segments`` is the same average inside each of ``n_segments``
consecutive, non-overlapping diagonal blocks of length ``N // n_segments``
(frames beyond ``n_segments * (N // n_segments)`` belong to no segment).

Memory and speed
----------------
Only the correlated pixels of the selected bins are kept, as float32 time
series. They stay in memory up to ``memory_budget`` bytes; beyond it they are
spilled to a temporary file (created with :func:`tempfile.mkstemp` in
``spill_dir`` or the system temporary directory, read back through
:class:`numpy.memmap`, removed by :meth:`TwoTimeCorrelator.close`). Each bin's
Gram matrix is computed by single-precision ``ssyrk`` calls over blocks of
pixels (at most about 64 MiB of frames x pixels per block, gathered and
scaled into one reused buffer), written straight into the float32 matrix that
becomes :math:`C`; only a bin wider than one block accumulates its blocks in a
float64 matrix. ``ssyrk`` computes only one triangle, half the work of a
matrix product; one parallel numba pass then scales that triangle into
:math:`C`, mirrors it and sums its diagonals (:mod:`xpcs_kernel.twotime.diag`),
so the working set never holds the whole detector nor extra N x N copies. The
relative error of :math:`C` is at the float32 rounding level.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.twotime.gram import bin_twotime
from xpcs_kernel.twotime.store import (
    SeriesStore,
    as_index,
    as_int,
    csr_to_dense,
    gather_columns,
)

__all__ = ["TwoTimeCorrelator", "TwoTimeResult", "twotime"]

#: Upper bound, in bytes, of one float32 frames x pixels block handed to ssyrk.
_BLOCK_BYTES = 64 * 2**20
_MIN_BLOCK_PIXELS = 256


@dataclass(frozen=True)
class TwoTimeResult:
    """Two-time correlation of the selected dynamic bins.

    Attributes
    ----------
    bins : ndarray of int64, shape (n_sel,)
        The 0-based dynamic bins processed, ascending.
    c2 : tuple of ndarray of float32, shape (N, N) each
        :math:`C(t_1, t_2)` per selected bin, full symmetric matrices (the
        result writer stores the upper triangle).
    g2 : ndarray of float64, shape (N, n_sel)
        Diagonal average; row index = delay in frames (row 0 includes the
        shot-noise diagonal).
    g2_segments : ndarray of float64, shape (n_segments, N // n_segments, n_sel)
        Diagonal average inside each time segment.
    n_frames : int
        N, the number of frames correlated.
    smoothing : str
        ``"pixel"`` (each pixel's own time mean) or ``"static"`` (time mean
        averaged over the static bin), see the module docstring.
    """

    bins: NDArray[np.int64]
    c2: tuple[NDArray[np.float32], ...]
    g2: NDArray[np.float64]
    g2_segments: NDArray[np.float64]
    n_frames: int
    smoothing: str = "pixel"


class TwoTimeCorrelator:
    """Streaming two-time correlator (see the module docstring for the formula).

    Parameters
    ----------
    n_pixels : int
        Pixels per frame (H * W): the number of columns of the frames fed.
    pixel_index : ndarray of int, shape (M,)
        Flat indices of the correlated pixels (unique).
    dynamic_index : ndarray of int, shape (M,)
        0-based dynamic bin of each pixel of ``pixel_index``.
    n_dynamic : int
        Number of dynamic bins.
    bins : sequence of int, optional
        0-based dynamic bins to correlate (processed in ascending order). By
        default every bin that has at least one pixel.
    memory_budget : int
        Bytes of float32 pixel time series kept in memory before spilling to a
        temporary file.
    n_segments : int
        Number of time segments for ``g2_segments``.
    static_index : ndarray of int, shape (M,), optional
        0-based static bin of each pixel. When given, pixels are smoothed by
        the time mean averaged over their static bin instead of their own
        (less biased, see the module docstring).
    spill_dir : path, optional
        Directory of the spill file (default: the system temporary directory).

    Notes
    -----
    Use as a context manager, or call :meth:`close`, to remove the spill file.
    """

    def __init__(
        self,
        n_pixels: int,
        *,
        pixel_index: NDArray[np.intp],
        dynamic_index: NDArray[np.intp],
        n_dynamic: int,
        bins: Sequence[int] | None = None,
        memory_budget: int = 512 * 2**20,
        n_segments: int = 5,
        static_index: NDArray[np.intp] | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._n_pixels = as_int(n_pixels, "n_pixels", 1)
        n_dyn = as_int(n_dynamic, "n_dynamic", 1)
        self._budget = as_int(memory_budget, "memory_budget", 0)
        self._n_segments = as_int(n_segments, "n_segments", 1)
        pix = as_index(pixel_index, "pixel_index", self._n_pixels)
        dyn = as_index(dynamic_index, "dynamic_index", n_dyn)
        if dyn.shape != pix.shape:
            raise UsageError(
                f"must have the shape of pixel_index {pix.shape}, got {dyn.shape}",
                argument="dynamic_index",
            )
        if np.unique(pix).size != pix.size:
            raise UsageError("contains duplicate pixels", argument="pixel_index")
        counts = np.bincount(dyn, minlength=n_dyn)
        if bins is None:
            sel = np.flatnonzero(counts).astype(np.int64)
            if sel.size == 0:
                raise UsageError("no pixel to correlate", argument="pixel_index")
        else:
            sel = as_index(np.asarray(list(bins), dtype=np.int64), "bins", n_dyn).astype(np.int64)
            if sel.size == 0:
                raise UsageError("select at least one bin", argument="bins")
            if np.unique(sel).size != sel.size:
                raise UsageError("contains duplicate bins", argument="bins")
            sel = np.sort(sel)
            empty = sel[counts[sel] == 0]
            if empty.size:
                raise UsageError(f"bins {empty.tolist()} have no pixels", argument="bins")
        self._bins = sel
        keep = np.flatnonzero(np.isin(dyn, sel))
        keep = keep[np.argsort(dyn[keep], kind="stable")]
        self._columns = pix[keep]
        self._static: NDArray[np.intp] | None = None
        if static_index is not None:
            sta = as_index(static_index, "static_index", np.iinfo(np.intp).max)
            if sta.shape != pix.shape:
                raise UsageError(
                    f"must have the shape of pixel_index {pix.shape}, got {sta.shape}",
                    argument="static_index",
                )
            self._static = np.unique(sta[keep], return_inverse=True)[1].astype(np.intp)
        self._offsets = np.concatenate([[0], np.cumsum(counts[sel])]).astype(np.intp)
        self._col_of: NDArray[np.intp] | None = None  # pixel -> column, built on demand
        self._store = SeriesStore(self._columns.size, budget=self._budget, spill_dir=spill_dir)
        self._result: TwoTimeResult | None = None
        self._closed = False

    # -- context management ---------------------------------------------------
    def __enter__(self) -> TwoTimeCorrelator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the stored time series and remove any spill file."""
        self._closed = True
        self._store.close()

    @property
    def spilled(self) -> bool:
        """Whether the time series went to a temporary file."""
        return self._store.spilled

    @property
    def n_frames(self) -> int:
        """Frames fed so far."""
        return self._store.n_frames

    # -- feeding ----------------------------------------------------------------
    def _check_open(self) -> None:
        if self._result is not None:
            raise CorrelationError("result() was already called; create a new correlator")
        if self._closed:
            raise CorrelationError("the correlator is closed")

    def feed(self, frames: NDArray[Any]) -> None:
        """Add dense frames, shape (n, n_pixels) or (n, H, W) with H * W = n_pixels."""
        self._check_open()
        arr = np.asarray(frames)
        if arr.ndim not in (2, 3) or int(np.prod(arr.shape[1:])) != self._n_pixels:
            raise UsageError(
                f"expected shape (n, {self._n_pixels}) or (n, H, W) with H*W = "
                f"{self._n_pixels}, got {arr.shape}",
                argument="frames",
            )
        if arr.dtype.kind not in "iuf":
            raise UsageError(f"must be numeric, got dtype {arr.dtype}", argument="frames")
        if arr.shape[0] == 0:
            return
        flat = arr.reshape(arr.shape[0], self._n_pixels)
        self._store.append(*gather_columns(flat, self._columns))

    def feed_sparse(
        self,
        n_frames: int,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.integer[Any]],
        counts: NDArray[Any],
    ) -> None:
        """Add ``n_frames`` sparse frames in CSR form.

        Frame ``i`` holds ``counts[indptr[i]:indptr[i+1]]`` photons at the flat
        pixels ``pixels[indptr[i]:indptr[i+1]]`` (repeated pixels add up).
        """
        self._check_open()
        if self._col_of is None:
            self._col_of = np.full(self._n_pixels, -1, dtype=np.intp)
            self._col_of[self._columns] = np.arange(self._columns.size)
        dense = csr_to_dense(n_frames, indptr, pixels, counts, self._col_of)
        if dense.shape[0]:
            self._store.append(dense)

    # -- computing -----------------------------------------------------------------
    def result(self) -> TwoTimeResult:
        """Compute (once) and return the two-time result of all frames fed."""
        if self._result is not None:
            return self._result
        self._check_open()
        n = self._store.n_frames
        if n == 0:
            raise CorrelationError("no frames were fed to the two-time correlator")
        self._store.finish()
        mean = self._store.column_sum / n
        if self._static is not None:  # time mean averaged over each static bin
            count = np.bincount(self._static)
            mean = (np.bincount(self._static, weights=mean) / count)[self._static]
        scale = np.zeros(mean.size, dtype=np.float32)
        positive = mean > 0
        scale[positive] = (1.0 / mean[positive]).astype(np.float32)
        seg_len = n // self._n_segments
        n_sel = self._bins.size
        g2 = np.empty((n, n_sel), dtype=np.float64)
        g2_seg = np.empty((self._n_segments, seg_len, n_sel), dtype=np.float64)
        c2: list[NDArray[np.float32]] = []
        block = max(_MIN_BLOCK_PIXELS, _BLOCK_BYTES // (4 * n))
        widest = int(np.diff(self._offsets).max())
        work = np.empty(n * min(block, widest), dtype=np.float32)  # reused by every bin
        for k in range(n_sel):
            lo, hi = int(self._offsets[k]), int(self._offsets[k + 1])
            cols = lo + np.flatnonzero(positive[lo:hi])
            c, g2[:, k], g2_seg[:, :, k] = bin_twotime(
                self._store, cols, scale, block, self._n_segments, work
            )
            c2.append(c)
        self._result = TwoTimeResult(
            bins=self._bins.copy(),
            c2=tuple(c2),
            g2=g2,
            g2_segments=g2_seg,
            n_frames=n,
            smoothing="pixel" if self._static is None else "static",
        )
        self.close()
        return self._result


def twotime(
    frames: NDArray[Any],
    *,
    pixel_index: NDArray[np.intp],
    dynamic_index: NDArray[np.intp],
    n_dynamic: int,
    bins: Sequence[int] | None = None,
    n_segments: int = 5,
    static_index: NDArray[np.intp] | None = None,
) -> TwoTimeResult:
    """Two-time correlation of frames held in memory.

    Parameters
    ----------
    frames : ndarray, shape (N, H, W) or (N, n_pixels)
        The frames.
    pixel_index, dynamic_index, n_dynamic, bins, n_segments, static_index
        As for :class:`TwoTimeCorrelator`.

    Returns
    -------
    TwoTimeResult
        :math:`C(t_1, t_2) = |P| G(t_1, t_2) / (s(t_1) s(t_2))` per bin, its
        diagonal average and segment averages (see the module docstring).
    """
    arr = np.asarray(frames)
    if arr.ndim not in (2, 3):
        raise UsageError(
            f"must have shape (N, H, W) or (N, P), got {arr.shape}", argument="frames"
        )
    n_pixels = int(np.prod(arr.shape[1:]))
    with TwoTimeCorrelator(
        n_pixels,
        pixel_index=pixel_index,
        dynamic_index=dynamic_index,
        n_dynamic=n_dynamic,
        bins=bins,
        n_segments=n_segments,
        static_index=static_index,
        memory_budget=2**62,
    ) as corr:
        corr.feed(arr)
        return corr.result()
