"""Compiled (numba) passes over Rigaku 64-bit event words.

A Rigaku file at 0.1 photons/pixel/frame (512x1024 x 2000 frames) holds 95
million words (758 MB). numpy needs several passes and temporaries of the
file's size to check and index it (1.6 s on the 2-core VM) and to split the
words of a read (1.0 s); these kernels make one pass each, with no
temporaries (2026-12-08).

Word layout (see :mod:`xpcs_kernel.io.rigaku`)::

    frame = w >> 40,  pixel = (w >> 16) & (2**21 - 1),  count = w & 0xFFF
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["SCAN_OK", "SCAN_OUT_OF_ORDER", "SCAN_PIXEL_RANGE", "decode_events", "scan_block"]

SCAN_OK, SCAN_OUT_OF_ORDER, SCAN_PIXEL_RANGE = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _scan(
    words: Any, first_word: int, last_frame: int, n_pixels: int, indptr: Any
) -> Any:  # pragma: no cover - compiled
    n_slots = indptr.shape[0] - 1
    for i in range(words.shape[0]):
        w = words[i]
        frame = np.int64(w >> np.uint64(40))
        if frame < last_frame:
            return SCAN_OUT_OF_ORDER, i, last_frame
        pixel = np.int64((w >> np.uint64(16)) & np.uint64(0x1FFFFF))
        if pixel >= n_pixels:
            return SCAN_PIXEL_RANGE, i, last_frame
        while last_frame < frame:
            last_frame += 1
            if last_frame <= n_slots:
                indptr[last_frame] = first_word + i
    return SCAN_OK, -1, last_frame


def scan_block(
    words: NDArray[np.uint64],
    *,
    first_word: int,
    last_frame: int,
    n_pixels: int,
    indptr: NDArray[np.int64],
) -> tuple[int, int, int]:
    """Check and index one block of words, in file order.

    For every frame ``f`` first met in this block (``last_frame < f``),
    ``indptr[f]`` becomes the file position (in words) of its first word;
    frames with no event in between get the same position (``indptr[f]`` is
    the first word whose frame is ``>= f``). Positions beyond
    ``len(indptr) - 1`` are not stored.

    Returns
    -------
    (status, index, last_frame)
        ``status`` is :data:`SCAN_OK`, :data:`SCAN_OUT_OF_ORDER` (a frame
        smaller than the one before) or :data:`SCAN_PIXEL_RANGE` (a pixel
        index ``>= n_pixels``); ``index`` is the offending word's index in
        ``words`` (-1 when OK); ``last_frame`` the last frame seen.
    """
    status, index, last = _scan(
        np.ascontiguousarray(words, dtype=np.uint64),
        int(first_word),
        int(last_frame),
        int(n_pixels),
        indptr,
    )
    return int(status), int(index), int(last)


@numba.njit(cache=True, nogil=True)
def _decode(words: Any, pixels: Any, counts: Any) -> None:  # pragma: no cover - compiled
    for i in range(words.shape[0]):
        w = words[i]
        pixels[i] = np.int64((w >> np.uint64(16)) & np.uint64(0x1FFFFF))
        counts[i] = np.uint32(w & np.uint64(0xFFF))


def decode_events(words: NDArray[np.uint64]) -> tuple[NDArray[np.int64], NDArray[np.uint32]]:
    """``(pixel, count)`` of every word, in one pass."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    pixels = np.empty(words.shape[0], dtype=np.int64)
    counts = np.empty(words.shape[0], dtype=np.uint32)
    _decode(words, pixels, counts)
    return pixels, counts
