"""Frame files that are still being written: how many whole frames are there now?

A :class:`GrowingSource` answers :meth:`~GrowingSource.poll` with the number of
frames that are completely on disk and reads any of them. Three layouts grow:

* HDF5 written in SWMR mode, the frame dataset growing along axis 0 (opened
  with ``swmr=True`` and refreshed at every poll; a file written without SWMR
  and already closed opens the ordinary way);
* IMM, one ``1024``-byte header then the frame's data, appended frame by frame:
  a frame counts once its header and all its data bytes are there;
* Rigaku ``.bin`` event words sorted by frame: a frame counts once a word of a
  later frame (or the writer's end, ``poll(final=True)``) shows it is closed,
  and a trailing partial word is never read.

A partial last frame is never read: it is simply not counted yet.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

import h5py
import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io import DEFAULT_DATASET, SparseFrames, detect_format
from xpcs_kernel.io._kernels import decode_imm_sparse
from xpcs_kernel.io.array import check_frame_dtype
from xpcs_kernel.io.imm import IMM_HEADER_BYTES, read_imm_header
from xpcs_kernel.io.rigaku import decode_rigaku_words
from xpcs_kernel.metadata import METADATA_KEYS, RawMetadata

__all__ = ["GrowingHdf5", "GrowingImm", "GrowingRigaku", "GrowingSource", "open_growing"]

_SCAN_WORDS = 1 << 20  # Rigaku words decoded per block while indexing


class GrowingSource(ABC):
    """A frame file that may still grow. Frames are read by index, like a FrameSource."""

    path: Path
    frame_shape: tuple[int, int] | None = None
    is_sparse: bool = False
    dtype: np.dtype[Any] = np.dtype(np.uint16)  # IMM and Rigaku hold uint16 counts

    @abstractmethod
    def poll(self, *, final: bool = False) -> int:
        """Whole frames readable now (``final``: the writer has finished)."""

    @abstractmethod
    def read(self, start: int, stop: int) -> NDArray[Any] | SparseFrames:
        """Frames ``[start, stop)``: dense ``(n, H, W)`` or :class:`SparseFrames`."""

    def metadata(self) -> RawMetadata:
        """Acquisition metadata the file records (HDF5 only; others know none)."""
        return RawMetadata()

    @abstractmethod
    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class GrowingHdf5(GrowingSource):
    """An ``(N, H, W)`` HDF5 dataset growing along axis 0 (SWMR)."""

    def __init__(self, path: str | os.PathLike[str], *, dataset: str = DEFAULT_DATASET) -> None:
        self.path = Path(path)
        self.dataset_name = dataset
        try:
            self._file: h5py.File | None = h5py.File(self.path, "r", libver="latest", swmr=True)
        except OSError:
            try:  # not written in SWMR mode: only a closed, complete file opens
                self._file = h5py.File(self.path, "r")
            except OSError as err:
                raise FrameFormatError(
                    f"cannot open as HDF5 (being written without SWMR, or corrupt): {err}",
                    path=self.path,
                ) from err
        item = self._file.get(dataset)
        if not isinstance(item, h5py.Dataset) or item.ndim != 3:
            self._file.close()
            raise FrameFormatError(
                "no frame dataset of shape (N, H, W) yet",
                path=self.path,
                key=dataset,
                found="missing" if item is None else f"{type(item).__name__} {item.shape}",
            )
        check_frame_dtype(item.dtype, path=str(self.path), key=dataset)
        self._ds = item
        self.frame_shape = (int(item.shape[1]), int(item.shape[2]))
        self.dtype = item.dtype.newbyteorder("=")

    def _handle(self) -> h5py.File:
        if self._file is None:
            raise UsageError("the growing source is closed", argument="source")
        return self._file

    def poll(self, *, final: bool = False) -> int:
        self._handle()
        self._ds.refresh()
        return int(self._ds.shape[0])

    def read(self, start: int, stop: int) -> NDArray[Any]:
        self._handle()
        assert self.frame_shape is not None
        out = np.empty((stop - start, *self.frame_shape), dtype=self.dtype)
        try:
            self._ds.read_direct(out, np.s_[start:stop])
        except (OSError, RuntimeError) as err:
            raise FrameFormatError(
                f"cannot read frames [{start}, {stop}): {err}",
                path=self.path,
                key=self.dataset_name,
            ) from err
        return out

    def metadata(self) -> RawMetadata:
        file = self._handle()
        found: dict[str, Any] = {}
        for name, keys in METADATA_KEYS.items():
            for key in keys:
                obj = file.get(key)
                if isinstance(obj, h5py.Dataset) and obj.size == 1:
                    value = obj[()]
                    found[name] = value.decode() if isinstance(value, bytes) else value
                    break

        def number(name: str) -> float | None:
            value = found.get(name)
            try:
                x = float(np.asarray(value).reshape(-1)[0])
            except (TypeError, ValueError, IndexError):
                return None
            return x if np.isfinite(x) and x > 0 else None

        start = found.get("start_time")
        return RawMetadata(
            frame_time=number("frame_time"),
            count_time=number("count_time"),
            energy_kev=number("energy_kev"),
            start_time=start if isinstance(start, str) else None,
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _BinaryGrowing(GrowingSource):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fh: BinaryIO | None = open(self.path, "rb")  # noqa: SIM115
        except OSError as err:
            raise FrameFormatError(f"cannot open file: {err}", path=self.path) from err

    def _handle(self) -> BinaryIO:
        if self._fh is None:
            raise UsageError("the growing source is closed", argument="source")
        return self._fh

    def _size(self) -> int:
        return os.fstat(self._handle().fileno()).st_size

    def _read_at(self, offset: int, nbytes: int) -> NDArray[np.uint8]:
        handle = self._handle()
        handle.seek(offset)
        buf = np.frombuffer(handle.read(nbytes), dtype=np.uint8)
        if buf.size != nbytes:
            raise FrameFormatError(
                "file shrank while being followed",
                path=self.path,
                offset=offset,
                expected=f"{nbytes} bytes",
                found=str(buf.size),
            )
        return buf

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class GrowingImm(_BinaryGrowing):
    """An IMM file (dense or sparse) growing frame by frame."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._offsets: list[int] = []
        self._dlens: list[int] = []
        self._next = 0

    def poll(self, *, final: bool = False) -> int:
        size = self._size()
        while self._next + IMM_HEADER_BYTES <= size:
            head = read_imm_header(self._read_at(self._next, IMM_HEADER_BYTES).tobytes())
            rows, cols, dlen = int(head["rows"]), int(head["cols"]), int(head["dlen"])
            sparse = head["compression"] != 0
            frame = len(self._offsets)
            if self.frame_shape is None:
                if rows <= 0 or cols <= 0:
                    raise FrameFormatError(
                        "invalid frame size in IMM header", path=self.path, key="frame 0"
                    )
                self.frame_shape, self.is_sparse = (rows, cols), sparse
            elif (rows, cols) != self.frame_shape or sparse != self.is_sparse:
                raise FrameFormatError(
                    "frame size or compression differs from the first frame's",
                    path=self.path,
                    key=f"frame {frame}",
                    offset=self._next,
                    expected=f"{self.frame_shape}, {'sparse' if self.is_sparse else 'dense'}",
                    found=f"{(rows, cols)}, {'sparse' if sparse else 'dense'}",
                )
            if (not sparse and dlen != rows * cols) or dlen > rows * cols:
                raise FrameFormatError(
                    "frame length does not fit rows * cols",
                    path=self.path,
                    key=f"frame {frame}",
                    offset=self._next,
                    found=str(dlen),
                )
            end = self._next + IMM_HEADER_BYTES + dlen * (6 if sparse else 2)
            if end > size:
                break  # the frame's data is still being written
            self._offsets.append(self._next)
            self._dlens.append(dlen)
            self._next = end
        return len(self._offsets)

    def read(self, start: int, stop: int) -> NDArray[Any] | SparseFrames:
        assert self.frame_shape is not None
        first, last = self._offsets[start], self._offsets[stop - 1]
        per = 6 if self.is_sparse else 2
        buf = self._read_at(first, last + IMM_HEADER_BYTES + self._dlens[stop - 1] * per - first)
        n = stop - start
        if not self.is_sparse:
            words = buf.view("<u2").reshape(n, -1)[:, IMM_HEADER_BYTES // 2 :]
            return words.reshape(n, *self.frame_shape).astype(np.uint16)
        dlen = np.asarray(self._dlens[start:stop], dtype=np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(dlen, out=indptr[1:])
        starts = np.asarray(self._offsets[start:stop], dtype=np.int64) - first + IMM_HEADER_BYTES
        pixels, counts = decode_imm_sparse(buf, starts, indptr)
        n_pixels = self.frame_shape[0] * self.frame_shape[1]
        if pixels.size and (pixels.min() < 0 or pixels.max() >= n_pixels):
            raise FrameFormatError(
                "sparse pixel index outside the frame",
                path=self.path,
                key=f"frames [{start}, {stop})",
                expected=f"0 <= index < {n_pixels}",
            )
        return SparseFrames(self.frame_shape, indptr, pixels, counts)


class GrowingRigaku(_BinaryGrowing):
    """A Rigaku 64-bit event file growing frame by frame (``frame_shape`` from the q-map)."""

    def __init__(self, path: str | os.PathLike[str], *, frame_shape: tuple[int, int]) -> None:
        super().__init__(path)
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.is_sparse = True
        self._starts: list[int] = []  # first word of frames 0..last
        self._words = 0  # whole words indexed
        self._last = -1

    def poll(self, *, final: bool = False) -> int:
        total = self._size() // 8  # a trailing partial word is not read
        assert self.frame_shape is not None
        n_pixels = self.frame_shape[0] * self.frame_shape[1]
        while self._words < total:
            count = min(_SCAN_WORDS, total - self._words)
            words = self._read_at(self._words * 8, count * 8).view("<u8")
            frames, pixels, _ = decode_rigaku_words(words)
            steps = np.diff(frames, prepend=self._last)
            if steps.min() < 0 or pixels.max() >= n_pixels:
                i = int(np.argmax((steps < 0) | (pixels >= n_pixels)))
                raise FrameFormatError(
                    "frames out of order or pixel index beyond the frame",
                    path=self.path,
                    offset=(self._words + i) * 8,
                    found=f"frame {int(frames[i])}, pixel {int(pixels[i])}",
                )
            for i in np.flatnonzero(steps).tolist():
                new = int(frames[i])
                self._starts.extend([self._words + i] * (new - self._last))
                self._last = new
            self._words += count
        return self._last + 1 if final else max(self._last, 0)

    def read(self, start: int, stop: int) -> SparseFrames:
        assert self.frame_shape is not None
        bounds = [*self._starts, self._words]
        first, end = bounds[start], bounds[stop]
        words = self._read_at(first * 8, (end - first) * 8).view("<u8")
        _, pixels, counts = decode_rigaku_words(words)
        indptr = np.asarray(bounds[start : stop + 1], dtype=np.int64) - first
        return SparseFrames(self.frame_shape, indptr, pixels, counts)


def open_growing(
    path: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> GrowingSource:
    """Open a frame file that may still be written (format detected from its content).

    Raises
    ------
    FrameFormatError
        If the file cannot be recognised yet (too short, no frame dataset):
        callers following a new file retry until their idle limit.
    """
    fmt = detect_format(path)
    if fmt == "hdf5":
        return GrowingHdf5(path, dataset=dataset or DEFAULT_DATASET)
    if dataset is not None:
        raise UsageError(f"applies to HDF5 files only, not {fmt}", argument="dataset")
    if fmt == "imm":
        return GrowingImm(path)
    if frame_shape is None:
        raise UsageError(
            "a Rigaku file needs the frame shape (from the q-map)", argument="frame_shape"
        )
    return GrowingRigaku(path, frame_shape=frame_shape)
