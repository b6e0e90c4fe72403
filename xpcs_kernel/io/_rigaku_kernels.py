"""Compiled (numba) pass over the Rigaku 64-bit event words of a read.

A Rigaku file at 0.1 photons/pixel/frame (512x1024 x 2000 frames) holds 95
million words (758 MB). One pass per read checks the words (frames in order
and inside the read, pixels inside the frame), splits them into pixels and
counts, and finds where each frame starts: the file needs no scan at open
and no pass of its own for the checks (numpy took several passes and
temporaries of the file's size; a scan at open cost 0.2 s of this file).

Word layout (see :mod:`xpcs_kernel.io.rigaku`)::

    frame = w >> 40,  pixel = (w >> 16) & (2**21 - 1),  count = w & 0xFFF
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DECODE_OK",
    "DECODE_OUT_OF_ORDER",
    "DECODE_PIXEL_RANGE",
    "DecodedWords",
    "decode_block",
    "frame_of_word",
]

DECODE_OK, DECODE_OUT_OF_ORDER, DECODE_PIXEL_RANGE = 0, 1, 2


def frame_of_word(word: int) -> int:
    """The frame index of one event word."""
    return int(word) >> 40


@numba.njit(cache=True, nogil=True)
def _decode(
    words: Any, start: int, stop: int, n_pixels: int, indptr: Any, pixels: Any, counts: Any
) -> Any:  # pragma: no cover - compiled
    prev = start  # frames start .. prev have begun
    indptr[0] = 0
    for i in range(words.shape[0]):
        w = words[i]
        frame = np.int64(w >> np.uint64(40))
        if frame < prev or frame >= stop:
            return DECODE_OUT_OF_ORDER, i, prev
        pixel = np.int64((w >> np.uint64(16)) & np.uint64(0x1FFFFF))
        if pixel >= n_pixels:
            return DECODE_PIXEL_RANGE, i, prev
        while prev < frame:
            prev += 1
            indptr[prev - start] = i
        pixels[i] = pixel
        counts[i] = np.uint32(w & np.uint64(0xFFF))
    n = words.shape[0]
    while prev < stop:
        prev += 1
        indptr[prev - start] = n
    return DECODE_OK, -1, prev


class DecodedWords(NamedTuple):
    """The result of :func:`decode_block`."""

    status: int
    """:data:`DECODE_OK`, :data:`DECODE_OUT_OF_ORDER` or :data:`DECODE_PIXEL_RANGE`."""
    word: int
    """The offending word's index in the block (-1 when OK)."""
    last_frame: int
    """The last frame met before it."""
    indptr: NDArray[np.int64]
    pixels: NDArray[np.int64]
    counts: NDArray[np.uint32]


def decode_block(
    words: NDArray[np.uint64], *, start: int, stop: int, n_pixels: int
) -> DecodedWords:
    """Check and split the words of frames ``start .. stop - 1``, in one pass.

    Every word must name a frame in ``[start, stop)`` no smaller than the one
    before (else :data:`DECODE_OUT_OF_ORDER`) and a pixel below ``n_pixels``
    (else :data:`DECODE_PIXEL_RANGE`); the pass stops at the first that does
    not. ``indptr[j]`` is the index of the first word of frame ``start + j``
    (frames without events share the next one's), ``indptr[-1] == len(words)``.
    """
    words = np.ascontiguousarray(words, dtype=np.uint64)
    indptr = np.empty(stop - start + 1, dtype=np.int64)
    pixels = np.empty(words.shape[0], dtype=np.int64)
    counts = np.empty(words.shape[0], dtype=np.uint32)
    status, index, last = _decode(words, start, stop, n_pixels, indptr, pixels, counts)
    return DecodedWords(int(status), int(index), int(last), indptr, pixels, counts)
