"""Input checks and pixel time-series storage of the two-time correlator.

:class:`SeriesStore` keeps appended float32 blocks of shape (frames, columns)
in memory until ``budget`` bytes are used; past it, everything is written to a
temporary file (:func:`tempfile.mkstemp` in ``spill_dir`` or the system
temporary directory) that is read back as a :class:`numpy.memmap` and removed
by :meth:`SeriesStore.close` (or at garbage collection, as a last resort).
Dense frames are gathered, converted and summed per column in one parallel
pass by :func:`gather_columns`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from typing import Any, BinaryIO

import numpy as np
from numba import get_num_threads, njit, prange
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = ["SeriesStore", "as_index", "as_int", "csr_to_dense", "gather_columns"]

_NUMBA_DTYPES = frozenset(
    np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16)
) | frozenset(np.dtype(t) for t in (np.uint32, np.uint64, np.float32, np.float64))


@njit(parallel=True, nogil=True, cache=True)
def _gather(
    flat: Any, columns: Any, out: Any, partial: Any
) -> None:  # pragma: no cover - compiled
    n = flat.shape[0]
    m = columns.size
    n_parts = partial.shape[0]
    for c in prange(n_parts):
        acc = partial[c]
        for t in range(c * n // n_parts, (c + 1) * n // n_parts):
            row = flat[t]
            dest = out[t]
            for p in range(m):
                v = np.float32(row[columns[p]])
                dest[p] = v
                acc[p] += np.float64(v)


def gather_columns(
    flat: NDArray[Any], columns: NDArray[np.intp]
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """``flat[:, columns]`` as float32 and its column sums in float64.

    Parameters
    ----------
    flat : ndarray of a real dtype, shape (n, P)
        Frames, one per row.
    columns : ndarray of intp, shape (M,)
        Columns to keep, each in ``[0, P)``.

    Returns
    -------
    block : ndarray of float32, shape (n, M), C-contiguous
        The selected columns, rounded to float32.
    sums : ndarray of float64, shape (M,)
        Sum over the rows of ``block`` (float32 values added in float64, row
        by row within each thread's consecutive rows, then over threads).
    """
    arr = np.ascontiguousarray(flat)
    if arr.dtype not in _NUMBA_DTYPES:
        block = np.take(arr, columns, axis=1).astype(np.float32)
        return block, block.sum(axis=0, dtype=np.float64)
    block = np.empty((arr.shape[0], columns.size), dtype=np.float32)
    n_parts = max(1, min(get_num_threads(), arr.shape[0]))
    partial = np.zeros((n_parts, columns.size), dtype=np.float64)
    _gather(arr, columns, block, partial)
    return block, partial.sum(axis=0)


def as_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, else :class:`UsageError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"must be an integer, got {type(value).__name__}", argument=name)
    if int(value) < minimum:
        raise UsageError(f"must be >= {minimum}, got {int(value)}", argument=name)
    return int(value)


def as_index(value: Any, name: str, upper: int) -> NDArray[np.intp]:
    """``value`` as a 1-D index array with values in ``[0, upper)``."""
    arr = np.asarray(value)
    if arr.ndim != 1 or not (arr.dtype.kind in "iu" or arr.size == 0):
        raise UsageError(
            f"must be a 1-D integer array, got dtype {arr.dtype} shape {arr.shape}", argument=name
        )
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= upper):
        raise UsageError(
            f"values must lie in [0, {upper}), found [{int(arr.min())}, {int(arr.max())}]",
            argument=name,
        )
    return arr.astype(np.intp, copy=False)


def csr_to_dense(
    n_frames: int,
    indptr: NDArray[np.int64],
    pixels: NDArray[np.integer[Any]],
    counts: NDArray[Any],
    column_of: NDArray[np.intp],
) -> NDArray[np.float32]:
    """Dense (n_frames, n_columns) float32 block of CSR frames.

    Frame ``i`` holds ``counts[indptr[i]:indptr[i+1]]`` at the flat pixels
    ``pixels[indptr[i]:indptr[i+1]]``; ``column_of[pixel]`` is the column of a
    pixel (-1: not kept). Repeated pixels add up.
    """
    n = as_int(n_frames, "n_frames", 0)
    n_pixels = column_of.size
    m = int(column_of.max()) + 1 if column_of.size else 0
    ptr = np.asarray(indptr)
    pix = np.asarray(pixels)
    cnt = np.asarray(counts)
    if ptr.ndim != 1 or ptr.size != n + 1 or ptr.dtype.kind not in "iu":
        raise UsageError(f"must be 1-D integers of length {n + 1}", argument="indptr")
    if pix.ndim != 1 or pix.dtype.kind not in "iu":
        raise UsageError("must be a 1-D integer array", argument="pixels")
    if cnt.shape != pix.shape or cnt.dtype.kind not in "iuf":
        raise UsageError(
            f"must be numeric with the shape of pixels {pix.shape}", argument="counts"
        )
    if int(ptr[0]) != 0 or int(ptr[-1]) != pix.size or np.any(np.diff(ptr) < 0):
        raise UsageError(f"must rise from 0 to len(pixels) = {pix.size}", argument="indptr")
    if pix.size and (int(pix.min()) < 0 or int(pix.max()) >= n_pixels):
        raise UsageError(f"values must lie in [0, {n_pixels})", argument="pixels")
    col = column_of[pix]
    hit = col >= 0
    row = np.repeat(np.arange(n, dtype=np.intp), np.diff(ptr).astype(np.intp))
    flat_index = row[hit] * m + col[hit]
    dense = np.bincount(flat_index, weights=cnt[hit].astype(np.float64), minlength=n * m)
    return dense.astype(np.float32).reshape(n, m)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class SeriesStore:
    """Append-only (frames x columns) float32 store with a memory budget."""

    def __init__(
        self, n_columns: int, *, budget: int, spill_dir: str | os.PathLike[str] | None
    ) -> None:
        self.n_columns = n_columns
        self.n_frames = 0
        self.column_sum = np.zeros(n_columns, dtype=np.float64)
        self._budget = budget
        self._spill_dir = spill_dir
        self._chunks: list[NDArray[np.float32]] = []
        self._mem_bytes = 0
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self._finalizer: weakref.finalize[[str], SeriesStore] | None = None
        self._memmap: NDArray[np.float32] | None = None

    @property
    def spilled(self) -> bool:
        """Whether the data went to a temporary file."""
        return self._path is not None

    def append(
        self, block: NDArray[np.float32], column_sum: NDArray[np.float64] | None = None
    ) -> None:
        """Append a (frames, n_columns) float32 block (``column_sum``: its column sums)."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        if column_sum is None:
            column_sum = block.sum(axis=0, dtype=np.float64)
        self.column_sum += column_sum
        if (
            self._file is None
            and self._path is None
            and self._mem_bytes + block.nbytes > self._budget
        ):
            self._start_spill()
        if self._file is not None:
            self._file.write(block.data)
            self._file.flush()
        else:
            self._chunks.append(block)
            self._mem_bytes += block.nbytes
        self.n_frames += block.shape[0]

    def _start_spill(self) -> None:
        fd, path = tempfile.mkstemp(prefix="xpcs-twotime-", suffix=".f32", dir=self._spill_dir)
        self._path = path
        self._finalizer = weakref.finalize(self, _remove, path)
        self._file = os.fdopen(fd, "wb")
        for chunk in self._chunks:
            self._file.write(chunk.data)
        self._file.flush()
        self._chunks = []
        self._mem_bytes = 0

    def finish(self) -> None:
        """Stop appending; map the spill file (if any) for reading."""
        if self._file is not None:
            assert self._path is not None
            self._file.close()
            self._file = None
            self._memmap = np.memmap(
                self._path, dtype=np.float32, mode="r", shape=(self.n_frames, self.n_columns)
            )

    def gather_scaled(
        self,
        cols: slice | NDArray[np.intp],
        scale: NDArray[np.float32],
        work: NDArray[np.float32],
    ) -> NDArray[np.float32]:
        """All frames of the given columns times ``scale[cols]``, in ``work``.

        Returns a C-contiguous (frames, k) view of the first elements of the
        1-D buffer ``work``, filled chunk by chunk without other copies when
        ``cols`` is a slice.
        """
        k = len(range(*cols.indices(self.n_columns))) if isinstance(cols, slice) else cols.size
        out = work[: self.n_frames * k].reshape(self.n_frames, k)
        factor = scale[cols]
        chunks = [self._memmap] if self._memmap is not None else self._chunks
        row = 0
        for chunk in chunks:
            dest = out[row : row + chunk.shape[0]]
            if isinstance(cols, slice):
                np.multiply(chunk[:, cols], factor, out=dest)
            else:
                np.take(chunk, cols, axis=1, out=dest)
                dest *= factor
            row += chunk.shape[0]
        return out

    def close(self) -> None:
        """Drop the data and remove the spill file."""
        self._memmap = None
        self._chunks = []
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
