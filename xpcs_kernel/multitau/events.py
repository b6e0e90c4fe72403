"""Event lists (CSR) into the dense multi-tau kernel, through a staging block.

The events of a chunk are scattered (:func:`~xpcs_kernel.multitau.dense.densify_csr`)
into a block of dense rows of the correlated pixels, and the dense kernel
correlates the block. The block is kept across calls and correlated only
when full (or when the correlator's state is read): every kernel call reads
and writes the state of the levels that receive frames, about 0.9 kB per
correlated pixel, so a call per reader chunk (about 100 frames of a 0.5 Mpx
Rigaku file) cost more in state traffic than in correlation. Staging also
reuses the block's memory: a fresh block per chunk is memory the process
touches for the first time on every chunk (0.5 s of page faults in a
2000-frame Rigaku run on the 2-core benchmark VM).

Unsigned counts go through ``uint8`` rows (a quarter of the traffic of
float32, and twice the frames per kernel call of ``uint16`` in the same
bytes); once a sum at one pixel exceeds 255 the stage switches to ``uint16``
rows for the rest of the run, and a frame whose sum would exceed 65,535 goes
through float32 rows. Rigaku 512x1024 x 2000 frames at 0.1 ph/px/frame,
whole command, median of five alternating runs: 2.08 s with ``uint16`` rows,
1.99 s with ``uint8``.
The result equals correlating every chunk at once: integer counts are exact
in the kernel's float32 sums, and the float64 accumulators only see other
partial-sum boundaries.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau.dense import DENSIFY_BAD_PIXEL, DENSIFY_OK, densify_csr

__all__ = ["EventStage", "check_events"]

BLOCK_BYTES = 1 << 28
"""Bytes of a float32 staging block (a uint16 block of as many frames takes half,
a uint8 block of twice the frames too)."""

RunRows = Callable[[NDArray[Any]], None]
"""Correlates kernel-ready rows of the correlated pixels (in frame order)."""


def check_events(
    n_frames: int,
    indptr: NDArray[np.integer[Any]],
    pixels: NDArray[np.integer[Any]],
    counts: NDArray[Any],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[Any]]:
    """``(indptr, pixels, counts)`` ready for :meth:`EventStage.add`, or a :class:`UsageError`.

    Unsigned counts of up to 32 bits come back as they are (no pass over
    them: they go to ``uint16`` rows, and a sum that does not fit sends its
    frames through float32 rows), other integers that fit as ``uint16``,
    anything else as float32. Pixel indices are range-checked by the
    scatter itself.
    """
    ptr = np.asarray(indptr)
    pix = np.asarray(pixels)
    cnt = np.asarray(counts)
    if ptr.shape != (n_frames + 1,) or not np.issubdtype(ptr.dtype, np.integer):
        raise UsageError(f"must be integers of shape ({n_frames + 1},)", argument="indptr")
    if pix.ndim != 1 or (pix.size and not np.issubdtype(pix.dtype, np.integer)):
        raise UsageError("must be a 1-D integer array", argument="pixels")
    if cnt.shape != pix.shape or not (
        np.issubdtype(cnt.dtype, np.integer) or np.issubdtype(cnt.dtype, np.floating)
    ):
        raise UsageError(f"must be numbers of shape {pix.shape}", argument="counts")
    if ptr[0] != 0 or ptr[-1] != pix.size or np.any(np.diff(ptr) < 0):
        raise UsageError(
            f"must start at 0, never decrease and end at len(pixels) = {pix.size}",
            argument="indptr",
        )
    if cnt.dtype.kind == "u" and cnt.dtype.itemsize <= 4:
        kept = cnt  # as they are: the scatter checks each sum against uint16
    elif cnt.dtype.kind in "ui" and (
        cnt.size == 0 or (int(cnt.min()) >= 0 and int(cnt.max()) <= 0xFFFF)
    ):
        kept = cnt.astype(np.uint16)
    else:
        kept = cnt.astype(np.float32, copy=False)
    return ptr.astype(np.int64, copy=False), pix.astype(np.int64, copy=False), kept


class EventStage:
    """Densified frames of one correlator waiting for the kernel.

    Parameters
    ----------
    column : ndarray of int64
        Column of each detector pixel in the dense rows (-1: not correlated).
    n_threads : int
        Threads that scatter a block (by frames).
    pool : callable
        ``pool(n)``: an executor with at least ``n`` workers.
    """

    def __init__(self, column: NDArray[np.int64], *, n_threads: int, pool: Callable[[int], Any]):
        self._column = column
        self._n_corr = int(np.count_nonzero(column >= 0))
        self._n_threads = max(1, int(n_threads))
        self._pool = pool
        self._block: NDArray[Any] | None = None
        self._wide = False  # a sum exceeded uint8: uint16 rows from then on
        self.pending = 0
        """Frames staged and not yet correlated."""

    def _rows(self, dtype: np.dtype[Any]) -> NDArray[Any]:
        """The staging block for ``dtype`` (pending rows must be flushed first if it changes)."""
        frames = max(1, BLOCK_BYTES // (4 * self._n_corr))
        if dtype == np.uint8:
            frames *= 2
        block = self._block
        if block is None or block.dtype != dtype:
            self._block = None  # let the old one go before the new one
            block = self._block = np.empty((frames, self._n_corr), dtype=dtype)
        return block

    def add(
        self,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.int64],
        counts: NDArray[Any],
        run: RunRows,
    ) -> None:
        """Stage the ``len(indptr) - 1`` frames of a checked event list (:func:`check_events`).

        Full blocks go to ``run(rows)`` at once. A pixel index
        outside the detector raises a :class:`UsageError` naming ``pixels``
        before any frame of the call is staged or correlated.
        """
        n = indptr.size - 1
        if n <= 0:
            return
        dtype: np.dtype[Any] = np.dtype(np.float32)
        if counts.dtype.kind == "u":
            dtype = np.dtype(np.uint16 if self._wide else np.uint8)
        if self._block is not None and self._block.dtype != dtype:
            self.flush(run)
        block = self._rows(dtype)
        # a call that reaches the kernel before its last scatter is checked first
        checked = n > block.shape[0] - self.pending
        if checked:
            self._check_pixels(pixels)
        f0 = 0
        while f0 < n:
            take = min(block.shape[0] - self.pending, n - f0)
            out = block[self.pending : self.pending + take]
            top = int(np.iinfo(block.dtype).max) if block.dtype.kind == "u" else -1
            code = self._scatter(indptr, pixels, counts, f0, out, top)
            if code == DENSIFY_BAD_PIXEL:  # one scatter for the whole call: nothing kept
                raise self._bad_pixel()
            if code != DENSIFY_OK and block.dtype == np.uint8:  # uint16 rows from now on
                if not checked:  # the flush and a smaller block: the call reaches the kernel
                    self._check_pixels(pixels)
                    checked = True
                self.flush(run)
                self._wide = True
                block = self._rows(np.dtype(np.uint16))
                continue  # the same frames again, into the new block
            if code != DENSIFY_OK:  # a sum overflowed uint16: these frames as float32
                self.flush(run)
                wide = np.empty((take, self._n_corr), dtype=np.float32)
                code = self._scatter(indptr, pixels, counts.astype(np.float32), f0, wide, -1)
                if code == DENSIFY_BAD_PIXEL:  # found past the overflow: nothing of it kept
                    raise self._bad_pixel()
                run(wide)
            else:
                self.pending += take
                if self.pending == block.shape[0]:
                    self.flush(run)
            f0 += take

    def _check_pixels(self, pixels: NDArray[np.int64]) -> None:
        if pixels.size and (int(pixels.min()) < 0 or int(pixels.max()) >= self._column.size):
            raise self._bad_pixel()

    def _bad_pixel(self) -> UsageError:
        return UsageError(f"values must lie in [0, {self._column.size})", argument="pixels")

    def flush(self, run: RunRows) -> None:
        """Correlate the staged frames now."""
        if self.pending and self._block is not None:
            rows = self._block[: self.pending]
            self.pending = 0
            run(rows)

    def _scatter(
        self,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.int64],
        counts: NDArray[Any],
        f0: int,
        out: NDArray[Any],
        top: int,
    ) -> int:
        """:func:`densify_csr` with the frames split over the threads; the worst code."""
        n = out.shape[0]
        n_threads = max(1, min(self._n_threads, n))
        if n_threads == 1:
            return int(densify_csr(indptr, pixels, counts, self._column, f0, out, top))
        bounds = [n * i // n_threads for i in range(n_threads + 1)]
        futures = [
            self._pool(n_threads).submit(
                densify_csr, indptr, pixels, counts, self._column, f0 + a, out[a:b], top
            )
            for a, b in itertools.pairwise(bounds)
        ]
        codes = [int(f.result()) for f in futures]  # wait for every thread
        return max(codes)
