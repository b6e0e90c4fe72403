"""Legacy APS IMM files (dense and sparse "compressed"): reader and writer.

An IMM file is a sequence of frames, each a 1024-byte little-endian header
followed by its data. The header fields used here (byte offsets, after the
``imm_headformat`` layout of the APS detector group used by pyXpcsViewer,
boost_corr and xpcs-eigen):

====  ==========  ======  =====================================================
  @   field       type    meaning
====  ==========  ======  =====================================================
   4  compression int32   0 = dense; non-zero (6 at APS) = sparse
 108  rows        int32   frame height H
 112  cols        int32   frame width W
 116  bytes       int32   bytes per pixel (2; informative only)
 128  elapsed     float64 time stamp of the frame (s)
 152  dlen        uint32  dense: H * W values; sparse: number of stored pixels
 160  buffer_no   int32   frame number (informative)
 616  immversion  int32   header version (informative)
 620  corecotick  uint32  detector clock tick of the frame
====  ==========  ======  =====================================================

Dense data: ``dlen`` uint16 values (row-major). Sparse data: ``dlen`` int32
flat pixel indices, then ``dlen`` uint16 counts.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io._kernels import decode_imm_sparse
from xpcs_kernel.io._writing import FramesLike, atomic_path, check_integer_range, iter_frame_blocks
from xpcs_kernel.io.base import FrameSource, SparseFrames, dense_to_sparse

__all__ = ["IMM_HEADER_BYTES", "ImmFrameSource", "read_imm_header", "write_imm"]

IMM_HEADER_BYTES = 1024
_SPARSE_FLAG = 6
_IMM_VERSION = 12
_OFF_COMPRESSION, _OFF_ROWS, _OFF_COLS, _OFF_BYTES = 4, 108, 112, 116
_OFF_ELAPSED, _OFF_DLEN, _OFF_BUFFER, _OFF_VERSION, _OFF_TICK = 128, 152, 160, 616, 620


def read_imm_header(header: bytes) -> dict[str, int | float]:
    """Decode the fields this module uses from one 1024-byte IMM header."""
    return {
        "compression": struct.unpack_from("<i", header, _OFF_COMPRESSION)[0],
        "rows": struct.unpack_from("<i", header, _OFF_ROWS)[0],
        "cols": struct.unpack_from("<i", header, _OFF_COLS)[0],
        "bytes": struct.unpack_from("<i", header, _OFF_BYTES)[0],
        "elapsed": struct.unpack_from("<d", header, _OFF_ELAPSED)[0],
        "dlen": struct.unpack_from("<I", header, _OFF_DLEN)[0],
        "corecotick": struct.unpack_from("<I", header, _OFF_TICK)[0],
    }


def _read_at(handle: BinaryIO, offset: int, nbytes: int) -> NDArray[np.uint8]:
    buf = np.empty(nbytes, dtype=np.uint8)
    handle.seek(offset)
    got = handle.readinto(buf.data)  # type: ignore[attr-defined]
    if got != nbytes:
        raise OSError(f"short read: {got} of {nbytes} bytes at offset {offset}")
    return buf


class ImmFrameSource(FrameSource):
    """Frames from an IMM file (dense or sparse).

    A table of contents (byte offset of every frame) is built at open by
    reading the headers only. ``elapsed`` and ``corecotick`` hold the per-frame
    time stamps.

    Parameters
    ----------
    path : str or PathLike
        The IMM file.

    Raises
    ------
    FrameFormatError
        On an empty file; a header or frame data running past the end of the
        file; rows/cols or the compression flag changing between frames; a
        dense frame whose ``dlen`` is not ``rows * cols``; a sparse pixel
        index outside the frame (when read). ``key`` is ``"frame <i>"`` and
        ``offset`` the byte offset of the problem.
    """

    elapsed: NDArray[np.float64]
    corecotick: NDArray[np.uint32]

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(np.uint16)
        try:
            self._handle: BinaryIO | None = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError as err:
            raise FrameFormatError("file not found", path=self.path) from err
        except OSError as err:
            raise FrameFormatError(f"cannot open file: {err}", path=self.path) from err
        try:
            self._build_toc(self._handle)
        except BaseException:
            self._handle.close()
            raise

    def _fail(self, message: str, frame: int, offset: int, **kw: str) -> FrameFormatError:
        return FrameFormatError(message, path=self.path, key=f"frame {frame}", offset=offset, **kw)

    def _build_toc(self, handle: BinaryIO) -> None:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise FrameFormatError("empty file: no frames", path=self.path, offset=0)
        offsets: list[int] = []
        dlens: list[int] = []
        elapsed: list[float] = []
        ticks: list[int] = []
        shape: tuple[int, int] = (0, 0)
        sparse = False
        offset = 0
        while offset < size:
            i = len(offsets)
            if offset + IMM_HEADER_BYTES > size:
                raise self._fail(
                    "frame header runs past the end of the file",
                    i,
                    offset,
                    expected=f"{IMM_HEADER_BYTES} header bytes",
                    found=f"{size - offset}",
                )
            handle.seek(offset)
            head = read_imm_header(handle.read(IMM_HEADER_BYTES))
            rows, cols, dlen = int(head["rows"]), int(head["cols"]), int(head["dlen"])
            if i == 0:
                if rows <= 0 or cols <= 0:
                    raise self._fail(
                        "invalid frame size in IMM header",
                        0,
                        _OFF_ROWS,
                        expected="rows, cols >= 1",
                        found=f"rows={rows}, cols={cols}",
                    )
                shape = (rows, cols)
                sparse = head["compression"] != 0
            elif (rows, cols) != shape:
                raise self._fail(
                    "frame size differs from the first frame's",
                    i,
                    offset + _OFF_ROWS,
                    expected=f"rows, cols = {shape}",
                    found=f"{(rows, cols)}",
                )
            elif (head["compression"] != 0) != sparse:
                raise self._fail(
                    "compression flag differs from the first frame's",
                    i,
                    offset + _OFF_COMPRESSION,
                    expected="sparse" if sparse else "dense (0)",
                    found=str(head["compression"]),
                )
            if not sparse and dlen != rows * cols:
                raise self._fail(
                    "dense frame length does not match rows * cols",
                    i,
                    offset + _OFF_DLEN,
                    expected=str(rows * cols),
                    found=str(dlen),
                )
            if sparse and dlen > rows * cols:
                raise self._fail(
                    "sparse frame stores more pixels than the frame has",
                    i,
                    offset + _OFF_DLEN,
                    expected=f"<= {rows * cols}",
                    found=str(dlen),
                )
            data_bytes = dlen * (6 if sparse else 2)
            if offset + IMM_HEADER_BYTES + data_bytes > size:
                raise self._fail(
                    "frame data runs past the end of the file",
                    i,
                    offset,
                    expected=f"{data_bytes} data bytes",
                    found=f"{size - offset - IMM_HEADER_BYTES}",
                )
            offsets.append(offset)
            dlens.append(dlen)
            elapsed.append(float(head["elapsed"]))
            ticks.append(int(head["corecotick"]))
            offset += IMM_HEADER_BYTES + data_bytes
        self.frame_shape = shape
        self.n_frames = len(offsets)
        self.is_sparse = sparse
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._dlen = np.asarray(dlens, dtype=np.int64)
        self.elapsed = np.asarray(elapsed, dtype=np.float64)
        self.corecotick = np.asarray(ticks, dtype=np.uint32)

    def _fh(self) -> BinaryIO:
        if self._handle is None:
            raise UsageError("the frame source is closed", argument="source")
        return self._handle

    def frame_nbytes(self, *, sparse: bool) -> int:
        if sparse and self.is_sparse:
            return int(self._dlen.mean() * 12) + 8
        return super().frame_nbytes(sparse=sparse)

    def _span(self, start: int, stop: int) -> NDArray[np.uint8]:
        first = int(self._offsets[start])
        last_bytes = int(self._dlen[stop - 1]) * (6 if self.is_sparse else 2)
        end = int(self._offsets[stop - 1]) + IMM_HEADER_BYTES + last_bytes
        try:
            return _read_at(self._fh(), first, end - first)
        except OSError as err:
            raise self._fail(f"cannot read frame data: {err}", start, first) from err

    def read_dense(self, start: int, stop: int) -> NDArray[Any]:
        self._check_range(start, stop)
        if self.is_sparse:
            return self.read_sparse(start, stop).to_dense(np.uint16)
        n = stop - start
        height, width = self.frame_shape
        words = self._span(start, stop).view("<u2").reshape(n, -1)
        frames = words[:, IMM_HEADER_BYTES // 2 :].reshape(n, height, width)
        return frames.astype(np.uint16, order="C")

    def read_sparse(self, start: int, stop: int) -> SparseFrames:
        self._check_range(start, stop)
        if not self.is_sparse:
            return dense_to_sparse(self.read_dense(start, stop), path=self.path, first_frame=start)
        buf = self._span(start, stop)
        dlen = self._dlen[start:stop]
        indptr = np.zeros(dlen.size + 1, dtype=np.int64)
        np.cumsum(dlen, out=indptr[1:])
        data_starts = self._offsets[start:stop] - self._offsets[start] + IMM_HEADER_BYTES
        pixels, counts = decode_imm_sparse(buf, data_starts, indptr)
        n_pixels = self.frame_shape[0] * self.frame_shape[1]
        if pixels.size and (pixels.min() < 0 or pixels.max() >= n_pixels):
            bad = int(np.argmax((pixels < 0) | (pixels >= n_pixels)))
            k = int(np.searchsorted(indptr, bad, side="right")) - 1
            raise self._fail(
                "sparse pixel index outside the frame",
                start + k,
                int(self._offsets[start + k]) + IMM_HEADER_BYTES + 4 * (bad - int(indptr[k])),
                expected=f"0 <= index < {n_pixels}",
                found=str(int(pixels[bad])),
            )
        return SparseFrames(self.frame_shape, indptr, pixels, counts)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def write_imm(
    path: str | os.PathLike[str],
    frames: FramesLike,
    *,
    sparse: bool,
    frame_time: float = 1.0,
) -> Path:
    """Write frames as an IMM file (written to a temporary name, then renamed).

    Parameters
    ----------
    path : str or PathLike
        Output file (replaced if it exists).
    frames : ndarray (N, H, W) or iterable of ndarray (n, H, W)
        Integer counts in ``[0, 65535]``.
    sparse : bool
        Write the sparse layout (compression flag 6: pixel indices + counts of
        the nonzero pixels) instead of dense uint16 frames.
    frame_time : float
        ``elapsed`` of frame ``i`` is ``i * frame_time``; ``corecotick`` is ``i``.

    Returns
    -------
    Path
        ``path``.
    """
    header = bytearray(IMM_HEADER_BYTES)
    index = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for block in iter_frame_blocks(frames):
            check_integer_range(block, 65535, what="IMM (uint16)")
            rows, cols = block.shape[1:]
            for frame in block.reshape(block.shape[0], -1):
                if sparse:
                    where = np.flatnonzero(frame)
                    data = where.astype("<i4").tobytes() + frame[where].astype("<u2").tobytes()
                    dlen = where.size
                else:
                    data = frame.astype("<u2").tobytes()
                    dlen = frame.size
                struct.pack_into("<i", header, 0, 2)
                struct.pack_into("<i", header, _OFF_COMPRESSION, _SPARSE_FLAG if sparse else 0)
                struct.pack_into("<iii", header, _OFF_ROWS, rows, cols, 2)
                struct.pack_into("<d", header, _OFF_ELAPSED, index * frame_time)
                struct.pack_into("<I", header, _OFF_DLEN, dlen)
                struct.pack_into("<i", header, _OFF_BUFFER, index)
                struct.pack_into("<iI", header, _OFF_VERSION, _IMM_VERSION, index)
                out.write(header)
                out.write(data)
                index += 1
        if index == 0:
            raise UsageError("no frames to write", argument="frames")
    return Path(path)
