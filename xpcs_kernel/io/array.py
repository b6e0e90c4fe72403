"""A frame source over an in-memory (or memory-mapped) numpy array."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io.base import FrameSource, SparseFrames, dense_to_sparse

__all__ = ["ArrayFrameSource", "check_frame_dtype"]

_KINDS = ("u", "i", "f")


def check_frame_dtype(dtype: np.dtype[Any], *, path: str | None, key: str | None) -> None:
    """Raise :class:`FrameFormatError` unless ``dtype`` is an integer or float type."""
    if dtype.kind not in _KINDS or dtype.itemsize > 8:
        raise FrameFormatError(
            "unsupported frame data type",
            path=path,
            key=key,
            expected="unsigned/signed integer or float",
            found=str(dtype),
        )


class ArrayFrameSource(FrameSource):
    """Frames from a numpy array of shape ``(N, H, W)``.

    The array is not copied at open (a ``numpy.memmap`` therefore streams
    from disk); every read returns a copy.

    Parameters
    ----------
    frames : ndarray, shape (N, H, W)
        Integer or floating-point frames.

    Raises
    ------
    FrameFormatError
        If the array is not 3-d, has no frames or a non-numeric dtype.
    """

    def __init__(self, frames: NDArray[Any]) -> None:
        if not isinstance(frames, np.ndarray):
            raise UsageError(
                f"expected a numpy array, got {type(frames).__name__}", argument="source"
            )
        if frames.ndim != 3:
            raise FrameFormatError(
                "frames must be a 3-d array", expected="shape (N, H, W)", found=str(frames.shape)
            )
        n, height, width = frames.shape
        if n == 0 or height == 0 or width == 0:
            raise FrameFormatError(
                "the array holds no frames (or empty frames)",
                expected="N, H, W >= 1",
                found=str(frames.shape),
            )
        check_frame_dtype(frames.dtype, path=None, key=None)
        self._frames: NDArray[Any] | None = frames
        self.path = None
        self.frame_shape = (int(height), int(width))
        self.n_frames = int(n)
        self.dtype = frames.dtype.newbyteorder("=")
        self.is_sparse = False

    def _array(self) -> NDArray[Any]:
        if self._frames is None:
            raise UsageError("the frame source is closed", argument="source")
        return self._frames

    def read_dense(self, start: int, stop: int) -> NDArray[Any]:
        self._check_range(start, stop)
        return np.array(self._array()[start:stop], dtype=self.dtype, order="C")

    def read_dense_strided(self, start: int, stop: int, step: int) -> NDArray[Any]:
        self._check_range(start, stop)
        return np.array(self._array()[start:stop:step], dtype=self.dtype, order="C")

    def read_sparse(self, start: int, stop: int) -> SparseFrames:
        self._check_range(start, stop)
        return dense_to_sparse(self._array()[start:stop], first_frame=start)

    def close(self) -> None:
        self._frames = None
