"""Input checks and pixel time-series storage of the two-time correlator.

:class:`SeriesStore` keeps appended float32 blocks of shape (frames, columns)
in memory until ``budget`` bytes are used; past it, everything is written to a
temporary file (:func:`tempfile.mkstemp` in ``spill_dir`` or the system
temporary directory) that is read back as a :class:`numpy.memmap` and removed
by :meth:`SeriesStore.close` (or at garbage collection, as a last resort).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = ["SeriesStore", "as_index", "as_int", "csr_to_dense"]


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

    def append(self, block: NDArray[np.float32]) -> None:
        """Append a (frames, n_columns) float32 block."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        self.column_sum += block.sum(axis=0, dtype=np.float64)
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

    def gather(self, cols: slice | NDArray[np.intp]) -> NDArray[np.float32]:
        """All frames of the given columns, as a C-contiguous (frames, k) copy."""
        if self._memmap is not None:
            return np.ascontiguousarray(self._memmap[:, cols])
        if len(self._chunks) == 1:
            return np.ascontiguousarray(self._chunks[0][:, cols])
        return np.concatenate([c[:, cols] for c in self._chunks], axis=0)

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
