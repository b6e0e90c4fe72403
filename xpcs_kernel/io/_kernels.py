"""Compiled (numba) loops for dense-to-sparse conversion and sparse averaging.

Each is a single pass over the data with no temporaries the size of the
input; they are compiled on first use and cached on disk.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["average_csr", "decode_imm_sparse", "dense_rows_to_csr"]


@numba.njit(cache=True, nogil=True)
def _count_nonzero_rows(flat: Any) -> Any:  # pragma: no cover - compiled
    n, n_pixels = flat.shape
    counts = np.zeros(n, dtype=np.int64)
    for i in range(n):
        c = 0
        for p in range(n_pixels):
            if flat[i, p] != 0:
                c += 1
        counts[i] = c
    return counts


@numba.njit(cache=True, nogil=True)
def _fill_rows(flat: Any, indptr: Any, pixels: Any, values: Any) -> None:  # pragma: no cover
    n, n_pixels = flat.shape
    for i in range(n):
        k = indptr[i]
        for p in range(n_pixels):
            v = flat[i, p]
            if v != 0:
                pixels[k] = p
                values[k] = v
                k += 1


def dense_rows_to_csr(
    flat: NDArray[Any],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[Any]]:
    """CSR ``(indptr, pixels, values)`` of the nonzeros of a C-contiguous ``(n, P)`` array.

    ``values`` keeps the dtype of ``flat`` (``float16`` becomes ``float32``).
    """
    if flat.dtype == np.float16:  # numba has no half-precision arithmetic
        flat = flat.astype(np.float32)
    flat = np.ascontiguousarray(flat)
    per_row = _count_nonzero_rows(flat)
    indptr = np.zeros(flat.shape[0] + 1, dtype=np.int64)
    np.cumsum(per_row, out=indptr[1:])
    pixels = np.empty(int(indptr[-1]), dtype=np.int64)
    values = np.empty(int(indptr[-1]), dtype=flat.dtype)
    _fill_rows(flat, indptr, pixels, values)
    return indptr, pixels, values


@numba.njit(cache=True, nogil=True)
def _average_groups(
    indptr: Any, pixels: Any, counts: Any, avg: int, n_out: int, n_pixels: int
) -> Any:  # pragma: no cover - compiled
    acc = np.zeros(n_pixels, dtype=np.float64)
    seen = np.zeros(n_pixels, dtype=np.bool_)
    bound = indptr[n_out * avg]
    out_indptr = np.zeros(n_out + 1, dtype=np.int64)
    out_pixels = np.empty(bound, dtype=np.int64)
    out_counts = np.empty(bound, dtype=np.float32)
    k = 0
    for g in range(n_out):
        first = k
        for e in range(indptr[g * avg], indptr[(g + 1) * avg]):
            p = pixels[e]
            if not seen[p]:
                seen[p] = True
                out_pixels[k] = p
                k += 1
            acc[p] += counts[e]
        touched = k - first
        kept = first
        if touched * 16 > n_pixels:
            # many pixels touched: a scan of the accumulator is cheaper than a sort
            for p in range(n_pixels):
                if seen[p]:
                    if acc[p] != 0:
                        out_pixels[kept] = p
                        out_counts[kept] = acc[p] / avg
                        kept += 1
                    acc[p] = 0.0
                    seen[p] = False
        else:
            out_pixels[first:k].sort()
            for j in range(first, k):
                p = out_pixels[j]
                if acc[p] != 0:
                    out_pixels[kept] = p
                    out_counts[kept] = acc[p] / avg
                    kept += 1
                acc[p] = 0.0
                seen[p] = False
        k = kept
        out_indptr[g + 1] = k
    return out_indptr, out_pixels[:k].copy(), out_counts[:k].copy()


def average_csr(
    indptr: NDArray[np.int64],
    pixels: NDArray[np.int64],
    counts: NDArray[Any],
    *,
    avg: int,
    n_pixels: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Average CSR rows in consecutive groups of ``avg`` (partial last group dropped).

    Returns CSR ``(indptr, pixels, counts)`` with ``float32`` counts, pixels
    sorted within each output row and zero sums dropped.
    """
    n_out = (indptr.size - 1) // avg
    result: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]] = _average_groups(
        indptr, pixels, counts, avg, n_out, n_pixels
    )
    return result


@numba.njit(cache=True, nogil=True)
def _decode_imm_sparse(
    buf: Any, data_starts: Any, indptr: Any, pixels: Any, counts: Any
) -> None:  # pragma: no cover - compiled
    for f in range(data_starts.size):
        d = indptr[f + 1] - indptr[f]
        pos = data_starts[f]
        k = indptr[f]
        for j in range(d):
            b = pos + 4 * j
            value = (
                np.int64(buf[b])
                | (np.int64(buf[b + 1]) << 8)
                | (np.int64(buf[b + 2]) << 16)
                | (np.int64(buf[b + 3]) << 24)
            )
            if value >= 2**31:  # int32 sign
                value -= 2**32
            pixels[k + j] = value
        pos += 4 * d
        for j in range(d):
            b = pos + 2 * j
            counts[k + j] = np.uint32(buf[b]) | (np.uint32(buf[b + 1]) << 8)


def decode_imm_sparse(
    buf: NDArray[np.uint8], data_starts: NDArray[np.int64], indptr: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.uint32]]:
    """Decode sparse IMM frames from raw bytes.

    Frame ``f`` has ``indptr[f + 1] - indptr[f]`` entries: int32 little-endian
    pixel indices at ``buf[data_starts[f]:]`` followed by as many uint16 counts.
    """
    pixels = np.empty(int(indptr[-1]), dtype=np.int64)
    counts = np.empty(int(indptr[-1]), dtype=np.uint32)
    _decode_imm_sparse(buf, data_starts, indptr, pixels, counts)
    return pixels, counts
