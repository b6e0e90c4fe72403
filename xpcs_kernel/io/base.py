"""Frame containers and the abstract frame source shared by every reader.

A *frame source* is an open detector file (or an in-memory array) that hands
out raw frames ``[start, stop)`` either densely, as an ``(n, H, W)`` array,
or sparsely, as :class:`SparseFrames` (compressed sparse rows over frames).
Which frames an analysis uses (begin/end, stride, averaging) is described by
:class:`FrameSelection`; :func:`xpcs_kernel.io.iter_chunks` combines the two
into a stream of :class:`FrameChunk`.
"""

from __future__ import annotations

import numbers
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
from numpy.typing import DTypeLike, NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io._kernels import dense_rows_to_csr

# Largest gap (bytes of skipped frames per kept frame) read through rather than seeked over.
_SPAN_BYTES = 256 * 2**10

__all__ = ["FrameSelection", "FrameSource", "SparseFrames", "dense_to_sparse"]


def _as_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"must be an integer, got {value!r}", argument=argument)
    return int(value)


@dataclass(frozen=True)
class FrameSelection:
    """Which raw frames an analysis uses, and how they are averaged.

    The frames used are ``range(begin, end, stride)``; they are then averaged
    in consecutive groups of ``avg`` frames, and a partial last group is
    dropped. Output frame ``j`` is therefore the mean of raw frames
    ``begin + (j * avg + a) * stride`` for ``a = 0 .. avg - 1``.

    Parameters
    ----------
    begin : int
        First raw frame (0-based, inclusive).
    end : int or None
        Raw frame after the last one (exclusive); ``None`` means all frames.
    stride : int
        Keep every ``stride``-th frame.
    avg : int
        Average groups of ``avg`` kept frames into one output frame.

    Raises
    ------
    UsageError
        If a field is not an integer, ``begin < 0``, ``end <= begin``,
        ``stride < 1`` or ``avg < 1`` (``argument`` names the field).
    """

    begin: int = 0
    end: int | None = None
    stride: int = 1
    avg: int = 1

    def __post_init__(self) -> None:
        begin = _as_int(self.begin, "begin")
        if begin < 0:
            raise UsageError(f"must be >= 0, got {begin}", argument="begin")
        object.__setattr__(self, "begin", begin)
        if self.end is not None:
            end = _as_int(self.end, "end")
            if end <= begin:
                raise UsageError(f"must be > begin ({begin}), got {end}", argument="end")
            object.__setattr__(self, "end", end)
        for name in ("stride", "avg"):
            value = _as_int(getattr(self, name), name)
            if value < 1:
                raise UsageError(f"must be >= 1, got {value}", argument=name)
            object.__setattr__(self, name, value)

    def resolve_end(self, n_frames: int) -> int:
        """The exclusive end frame for a file of ``n_frames`` frames (validated)."""
        if n_frames < 1:
            raise UsageError(
                f"the source has no frames (n_frames={n_frames})", argument="n_frames"
            )
        if self.begin >= n_frames:
            raise UsageError(
                f"must be < the number of frames ({n_frames}), got {self.begin}", argument="begin"
            )
        if self.end is None:
            return n_frames
        if self.end > n_frames:
            raise UsageError(
                f"must be <= the number of frames ({n_frames}), got {self.end}", argument="end"
            )
        return self.end

    def n_output(self, n_frames: int) -> int:
        """Number of output frames after selection and averaging.

        ``len(range(begin, end, stride)) // avg`` for a source of ``n_frames``
        frames.

        Raises
        ------
        UsageError
            If ``begin >= n_frames``, ``end > n_frames`` or fewer than ``avg``
            frames are selected (no output frame at all).
        """
        end = self.resolve_end(n_frames)
        n_used = len(range(self.begin, end, self.stride))
        n_out = n_used // self.avg
        if n_out < 1:
            raise UsageError(
                f"{n_used} frame(s) selected by begin={self.begin}, end={end}, "
                f"stride={self.stride}: fewer than one group of avg={self.avg}",
                argument="avg",
            )
        return n_out

    def raw_frames(self, n_frames: int) -> NDArray[np.int64]:
        """Raw frame indices used, shape ``(n_output, avg)``: row ``j`` is averaged."""
        n_out = self.n_output(n_frames)
        steps = np.arange(n_out * self.avg, dtype=np.int64) * self.stride
        return (self.begin + steps).reshape(n_out, self.avg)


@dataclass(frozen=True)
class SparseFrames:
    """Frames in compressed sparse row (CSR) form: one row per frame.

    The entries of frame ``i`` are ``pixels[indptr[i]:indptr[i + 1]]`` (flat
    pixel index ``row * W + col``) with values ``counts[...]``; pixels absent
    are zero. Within a frame each pixel appears at most once.

    ``counts`` is ``uint32`` for raw integer data (photon counts, any
    unsigned detector depth up to 32 bits) and ``float32`` for averaged
    frames or floating-point sources.

    Parameters
    ----------
    frame_shape : tuple of int
        ``(H, W)`` of one frame.
    indptr : ndarray of int64, shape (n + 1,)
        Row pointers, ``indptr[0] == 0``, non-decreasing.
    pixels : ndarray of int64
        Flat pixel indices, ``0 <= pixel < H * W``.
    counts : ndarray of uint32 or float32
        Values, same length as ``pixels``.
    """

    frame_shape: tuple[int, int]
    indptr: NDArray[np.int64]
    pixels: NDArray[np.int64]
    counts: NDArray[np.float32] | NDArray[np.uint32]

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or self.indptr.size < 1:
            raise UsageError("must be a 1-d array of n + 1 row pointers", argument="indptr")
        if self.pixels.shape != self.counts.shape or self.pixels.ndim != 1:
            raise UsageError(
                f"pixels {self.pixels.shape} and counts {self.counts.shape} must be 1-d "
                "arrays of the same length",
                argument="counts",
            )
        if int(self.indptr[0]) != 0 or int(self.indptr[-1]) != self.pixels.size:
            raise UsageError(
                f"must start at 0 and end at len(pixels)={self.pixels.size}, "
                f"got {int(self.indptr[0])}..{int(self.indptr[-1])}",
                argument="indptr",
            )

    @property
    def n_frames(self) -> int:
        """Number of frames (rows)."""
        return int(self.indptr.size - 1)

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return int(self.pixels.size)

    def frame_index(self) -> NDArray[np.int64]:
        """The frame (row) of every entry, shape ``(nnz,)``."""
        return np.repeat(np.arange(self.n_frames, dtype=np.int64), np.diff(self.indptr))

    def to_dense(self, dtype: DTypeLike = np.float32) -> NDArray[Any]:
        """Expand to a dense ``(n, H, W)`` array of ``dtype``."""
        height, width = self.frame_shape
        out = np.zeros((self.n_frames, height * width), dtype=dtype)
        out[self.frame_index(), self.pixels] = self.counts
        return out.reshape(self.n_frames, height, width)

    def take(self, frames: NDArray[np.int64]) -> SparseFrames:
        """The frames ``frames`` (indices into this object), in that order."""
        frames = np.asarray(frames, dtype=np.int64)
        starts = self.indptr[frames]
        lengths = self.indptr[frames + 1] - starts
        indptr = np.zeros(frames.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # gather positions: for every output entry, its position in the source arrays
        offsets = np.repeat(starts - indptr[:-1], lengths)
        positions = np.arange(int(indptr[-1]), dtype=np.int64) + offsets
        return SparseFrames(
            self.frame_shape, indptr, self.pixels[positions], self.counts[positions]
        )


def dense_to_sparse(
    block: NDArray[Any], *, path: str | os.PathLike[str] | None = None, first_frame: int = 0
) -> SparseFrames:
    """Convert dense frames ``(n, H, W)`` to :class:`SparseFrames` (nonzeros only).

    Integer data give ``uint32`` counts, floating-point data ``float32``.
    Negative or out-of-range integers raise :class:`FrameFormatError` naming
    the frame (``first_frame`` is the raw index of ``block[0]``).
    """
    n, height, width = block.shape
    indptr, pixels, values = dense_rows_to_csr(block.reshape(n, height * width))
    counts: NDArray[np.float32] | NDArray[np.uint32]
    if block.dtype.kind == "f":
        counts = values.astype(np.float32, copy=False)
    else:
        if values.size:
            low, high = values.min(), values.max()
            if low < 0 or high > np.iinfo(np.uint32).max:
                bad = values < 0 if low < 0 else values > np.iinfo(np.uint32).max
                entry = int(np.argmax(bad))
                frame = first_frame + int(np.searchsorted(indptr, entry, side="right")) - 1
                raise FrameFormatError(
                    "value does not fit a uint32 photon count",
                    path=path,
                    key=f"frame {frame}",
                    expected="0 <= value < 2**32",
                    found=str(low if low < 0 else high),
                )
        counts = values.astype(np.uint32, copy=False)
    return SparseFrames((height, width), indptr, pixels, counts)


class FrameSource(ABC):
    """An open source of raw detector frames.

    Use as a context manager (or call :meth:`close`) to release the file.
    Reads return new arrays the caller owns (never views of a file buffer or
    of a caller's array).

    Attributes
    ----------
    path : Path or None
        The file (``None`` for an in-memory array).
    frame_shape : tuple of int
        ``(H, W)``.
    n_frames : int
        Number of frames in the file.
    dtype : numpy.dtype
        Native (native byte order) dtype of the frames.
    is_sparse : bool
        Whether the native representation is sparse (IMM sparse, Rigaku).
    """

    path: Path | None
    frame_shape: tuple[int, int]
    n_frames: int
    dtype: np.dtype[Any]
    is_sparse: bool

    @abstractmethod
    def read_dense(self, start: int, stop: int) -> NDArray[Any]:
        """Raw frames ``[start, stop)`` as an ``(n, H, W)`` array of :attr:`dtype`."""

    @abstractmethod
    def read_sparse(self, start: int, stop: int) -> SparseFrames:
        """Raw frames ``[start, stop)`` as :class:`SparseFrames` (dense sources convert)."""

    @abstractmethod
    def close(self) -> None:
        """Release the file; further reads are an error."""

    def read_dense_strided(self, start: int, stop: int, step: int) -> NDArray[Any]:
        """Raw frames ``range(start, stop, step)`` as an ``(n, H, W)`` array.

        The default reads the span once when :meth:`reads_whole_span` and
        frame by frame otherwise; readers override it when they can do better.
        """
        self._check_range(start, stop)
        if step == 1:
            return self.read_dense(start, stop)
        if self.reads_whole_span(step):
            return np.ascontiguousarray(self.read_dense(start, stop)[::step])
        return np.concatenate([self.read_dense(i, i + 1) for i in range(start, stop, step)])

    def reads_whole_span(self, step: int) -> bool:
        """Whether a strided read fetches the frames in between too.

        True for sparse sources (cheap) and when skipped frames are small
        (``(step - 1) * frame bytes <= 256 KiB``: one large read beats many
        small ones); otherwise frames are read one by one.
        """
        return self.is_sparse or (step - 1) * self.frame_nbytes(sparse=False) <= _SPAN_BYTES

    def preferred_read_frames(self) -> int:
        """Frames per natural read unit (the HDF5 chunk depth); 1 when none."""
        return 1

    def frame_nbytes(self, *, sparse: bool) -> int:
        """Estimated memory of one raw frame as read (dense or sparse)."""
        height, width = self.frame_shape
        return height * width * self.dtype.itemsize

    def _check_range(self, start: int, stop: int) -> None:
        if not 0 <= start < stop <= self.n_frames:
            raise UsageError(
                f"frame range [{start}, {stop}) is empty or outside [0, {self.n_frames})",
                argument="start",
            )

    @property
    def _label(self) -> str:
        return os.fspath(self.path) if self.path is not None else "<array>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        height, width = self.frame_shape
        return (
            f"{type(self).__name__}({self._label!r}, n_frames={self.n_frames}, "
            f"frame_shape=({height}, {width}), dtype={self.dtype}, is_sparse={self.is_sparse})"
        )
