"""Rigaku 64-bit sparse event files (``.bin``): reader and writer.

Each event is one little-endian uint64 word ``w``::

    frame = w >> 40                      (24 bits)
    pixel = (w >> 16) & (2**21 - 1)      (flat index row * W + col, 21 bits)
    count = w & 0xFFF                    (12 bits: 0 .. 4095)

Words are sorted by frame (non-decreasing); the number of frames is the last
frame index + 1. The frame shape is not stored: one ``.bin`` file is one
module of the Rigaku XSPA 3M detector at APS 8-ID (six modules in a 3 x 2
layout, per boost_corr), of ``RIGAKU_MODULE_SHAPE = (512, 1024)`` pixels,
which is the default. Pixel indices must lie inside the frame: files whose
indices carry a module offset (boost_corr subtracts ``1024 * 1024`` when every
index exceeds it) are rejected with the offset of the first such word rather
than shifted silently.
"""

from __future__ import annotations

import bisect
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io._rigaku_kernels import (
    DECODE_OUT_OF_ORDER,
    DECODE_PIXEL_RANGE,
    decode_block,
    frame_of_word,
)
from xpcs_kernel.io._writing import FramesLike, atomic_path, check_integer_range, iter_frame_blocks
from xpcs_kernel.io.base import FrameSource, SparseFrames

__all__ = ["RIGAKU_MODULE_SHAPE", "RigakuFrameSource", "decode_rigaku_words", "write_rigaku"]

#: (H, W) of one Rigaku 3M module, i.e. of one ``.bin`` file.
RIGAKU_MODULE_SHAPE = (512, 1024)

_PIXEL_MASK = np.uint64(2**21 - 1)
_COUNT_MASK = np.uint64(0xFFF)
_MAX_FRAMES = 2**24


def decode_rigaku_words(
    words: NDArray[np.uint64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.uint32]]:
    """Split event words into ``(frame, pixel, count)`` arrays."""
    frames = (words >> np.uint64(40)).astype(np.int64)
    pixels = ((words >> np.uint64(16)) & _PIXEL_MASK).astype(np.int64)
    counts = (words & _COUNT_MASK).astype(np.uint32)
    return frames, pixels, counts


class RigakuFrameSource(FrameSource):
    """Frames from a Rigaku 64-bit sparse ``.bin`` file.

    Opening reads the last word only (the frame count); where a read's
    frames start is found by a binary search over the sorted words, and the
    words of every read are checked (frame order, pixel range) in the same
    compiled pass that splits them: reading every frame checks the whole
    file, and nothing is read twice. Native dtype is ``uint16`` (counts are
    12-bit, never truncated).

    Parameters
    ----------
    path : str or PathLike
        The ``.bin`` file.
    frame_shape : tuple of int, optional
        ``(H, W)``; default :data:`RIGAKU_MODULE_SHAPE` ``(512, 1024)``.
    n_frames : int, optional
        Total frames when trailing frames have no events (must be at least the
        last frame index + 1); default the last frame index + 1.

    Raises
    ------
    FrameFormatError
        If the file is empty or its size is not a multiple of 8 bytes (at
        open), or, when read, frames are out of order or a pixel index is
        beyond ``H * W``; ``offset`` is the byte offset of the offending word.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        frame_shape: tuple[int, int] | None = None,
        n_frames: int | None = None,
    ) -> None:
        self.path = Path(path)
        shape = RIGAKU_MODULE_SHAPE if frame_shape is None else frame_shape
        if len(shape) != 2 or min(shape) < 1:
            raise UsageError(f"must be (H, W) with H, W >= 1, got {shape}", argument="frame_shape")
        if shape[0] * shape[1] > 2**21:
            raise UsageError(
                f"{shape} has more pixels than a 21-bit Rigaku index can address",
                argument="frame_shape",
            )
        self.frame_shape = (int(shape[0]), int(shape[1]))
        self._n_pixels = self.frame_shape[0] * self.frame_shape[1]
        self.dtype = np.dtype(np.uint16)
        self.is_sparse = True
        self._words: NDArray[np.uint64] | None = None
        try:
            self._handle: io.BufferedReader | None = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError as err:
            raise FrameFormatError("file not found", path=self.path) from err
        except OSError as err:
            raise FrameFormatError(f"cannot open file: {err}", path=self.path) from err
        try:
            self._read_layout(self._handle, n_frames)
        except BaseException:
            self._handle.close()
            raise

    def _read_layout(self, handle: io.BufferedReader, n_frames: int | None) -> None:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise FrameFormatError("empty file: no frames", path=self.path, offset=0)
        if size % 8:
            raise FrameFormatError(
                "file size is not a multiple of 8 bytes (truncated?)",
                path=self.path,
                offset=size - size % 8,
                expected="whole 64-bit words",
                found=f"{size % 8} trailing bytes",
            )
        total = size // 8
        self._n_words = total
        # frames are sorted, so the last word names the last frame (a file out of
        # order fails the check of the read that holds the disorder)
        last = self._frame_at(total - 1)
        n_found = last + 1
        if n_frames is not None:
            if n_frames < n_found:
                raise UsageError(
                    f"the file holds frames up to {last}, more than n_frames={n_frames}",
                    argument="n_frames",
                )
            n_found = int(n_frames)
        self.n_frames = n_found
        self._last_frame = last
        # word offsets found so far, frame -> first word with a frame >= it
        self._known_frames: list[int] = [0]
        self._known_words: list[int] = [0]

    def _frame_at(self, word: int) -> int:
        raw = os.pread(self._fh().fileno(), 8, word * 8)
        if len(raw) != 8:
            raise FrameFormatError("file shrank while open", path=self.path, offset=word * 8)
        return frame_of_word(int.from_bytes(raw, "little"))

    def _offset(self, frame: int) -> int:
        """Index of the first word whose frame is ``>= frame`` (a binary search).

        Searches between the nearest offsets found before, so offsets only
        grow with the frame even in a file out of order (which the reads of
        the words in between then report).
        """
        if frame > self._last_frame:
            return self._n_words
        k = bisect.bisect_left(self._known_frames, frame)
        if k < len(self._known_frames) and self._known_frames[k] == frame:
            return self._known_words[k]
        lo = self._known_words[k - 1]
        hi = self._known_words[k] if k < len(self._known_frames) else self._n_words
        while lo < hi:
            mid = (lo + hi) // 2
            if self._frame_at(mid) < frame:
                lo = mid + 1
            else:
                hi = mid
        self._known_frames.insert(k, frame)
        self._known_words.insert(k, lo)
        return lo

    def _fh(self) -> io.BufferedReader:
        if self._handle is None:
            raise UsageError("the frame source is closed", argument="source")
        return self._handle

    def frame_nbytes(self, *, sparse: bool) -> int:
        per_frame = self._n_words / self.n_frames * 28  # word + pixel + count + frame temp
        dense = 0 if sparse else super().frame_nbytes(sparse=False)
        return int(per_frame) + dense + 8

    def read_sparse(self, start: int, stop: int) -> SparseFrames:
        self._check_range(start, stop)
        handle = self._fh()  # closed: a UsageError before any search
        first, end = self._offset(start), self._offset(stop)
        handle.seek(first * 8)
        # one buffer for the raw words, reused: a fresh one per chunk is memory
        # touched for the first time (page faults) on every chunk
        if self._words is None or self._words.size < end - first:
            self._words = None
            self._words = np.empty(end - first, dtype="<u8")
        words = self._words[: end - first]
        got = handle.readinto(words.data.cast("B")) // 8
        if got != end - first:
            raise FrameFormatError(
                "file shrank while open",
                path=self.path,
                key=f"frame {start}",
                offset=first * 8,
                expected=f"{end - first} words",
                found=str(got),
            )
        out = decode_block(words, start=start, stop=stop, n_pixels=self._n_pixels)
        if out.status == DECODE_OUT_OF_ORDER:
            found = frame_of_word(int(words[out.word]))
            raise FrameFormatError(
                "frames out of order",
                path=self.path,
                offset=(first + out.word) * 8,
                expected=f"frame >= {out.last_frame}"
                if found < out.last_frame
                else f"frame < {stop} (the words of frames {start}..{stop - 1})",
                found=f"frame {found}",
            )
        if out.status == DECODE_PIXEL_RANGE:
            pixel = int((words[out.word] >> np.uint64(16)) & _PIXEL_MASK)
            raise FrameFormatError(
                f"pixel index beyond the {self.frame_shape} frame (wrong frame_shape?)",
                path=self.path,
                offset=(first + out.word) * 8,
                expected=f"pixel < {self._n_pixels}",
                found=str(pixel),
            )
        return SparseFrames(self.frame_shape, out.indptr, out.pixels, out.counts)

    def read_dense(self, start: int, stop: int) -> NDArray[Any]:
        return self.read_sparse(start, stop).to_dense(np.uint16)

    def close(self) -> None:
        self._words = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def write_rigaku(path: str | os.PathLike[str], frames: FramesLike) -> Path:
    """Write frames as a Rigaku 64-bit sparse file (temporary name, then renamed).

    Only nonzero pixels are written. If the last frame is empty, one
    zero-count event (pixel 0) is written for it so that the frame count
    (last frame index + 1) is preserved.

    Parameters
    ----------
    path : str or PathLike
        Output file (replaced if it exists).
    frames : ndarray (N, H, W) or iterable of ndarray (n, H, W)
        Integer counts in ``[0, 4095]``; ``H * W <= 2**21``, ``N <= 2**24``.

    Returns
    -------
    Path
        ``path``.
    """
    start = 0
    last_nonempty = -1
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for block in iter_frame_blocks(frames):
            check_integer_range(block, 4095, what="Rigaku (12-bit)")
            n = block.shape[0]
            n_pixels = block.shape[1] * block.shape[2]
            if n_pixels > 2**21:
                raise UsageError(f"{n_pixels} pixels exceed the 21-bit index", argument="frames")
            if start + n > _MAX_FRAMES:
                raise UsageError(f"more than {_MAX_FRAMES} frames", argument="frames")
            frame_idx, pixels = np.nonzero(block.reshape(n, n_pixels))
            counts = block.reshape(n, n_pixels)[frame_idx, pixels].astype(np.uint64)
            words = (
                ((frame_idx.astype(np.uint64) + np.uint64(start)) << np.uint64(40))
                | (pixels.astype(np.uint64) << np.uint64(16))
                | counts
            )
            out.write(words.astype("<u8").tobytes())
            if frame_idx.size:
                last_nonempty = start + int(frame_idx[-1])
            start += n
        if start == 0:
            raise UsageError("no frames to write", argument="frames")
        if last_nonempty != start - 1:
            out.write(np.array([(start - 1) << 40], dtype="<u8").tobytes())
    return Path(path)
