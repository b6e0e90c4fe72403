"""SAXS reductions of a file whose frame count is not known yet.

:class:`~xpcs_kernel.saxs.SaxsAccumulator` fixes its time segments from the
total frame count, which a follower learns only at the end. This accumulator
keeps, per frame, the sum over each static bin and over the valid pixels
(``n_frames x (n_static + 1)`` float64: 0.8 MB per 1000 frames of 100 bins),
plus the per-pixel total, so that :meth:`LiveSaxs.result` can give the
reductions of the frames so far with the segments of that count:

.. math::

    \\bar I_s^{(k)} = \\frac{\\sum_{t \\in k} \\sum_{p \\in s} I_p(t)}{|k|\\,|s|},
    \\qquad k = 0 .. n_{seg}-1,\\ \\text{bounds } \\lfloor k N / n_{seg} \\rfloor

which is what ``SaxsAccumulator(qmap, n_frames=N)`` gives for the same frames
(to float64 rounding). The state is a few arrays (:meth:`state`), so a
follower can checkpoint and resume it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sps
from numba import njit, prange
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.io import SparseFrames
from xpcs_kernel.qmap import QMap
from xpcs_kernel.saxs import SaxsResult

__all__ = ["LiveSaxs"]


@njit(parallel=True, nogil=True, cache=True)
def _frame_bin_sums(flat: Any, bin_of: Any, valid: Any, rows: Any) -> None:  # pragma: no cover
    """``rows[t, b] += flat[t, p]`` for the pixels ``p`` of static bin ``b``, and the
    valid pixels' total in the last column (float64: exact for counts)."""
    n, npix = flat.shape
    last = rows.shape[1] - 1
    for t in prange(n):
        total = 0.0
        for p in range(npix):
            v = np.float64(flat[t, p])
            b = bin_of[p]
            if b >= 0:
                rows[t, b] += v
            if valid[p]:
                total += v
        rows[t, last] += total


class LiveSaxs:
    """Streaming SAXS reductions whose total frame count is open.

    Parameters
    ----------
    qmap : QMap
    n_segments : int
        Time segments of the result (as ``SaxsAccumulator``; fewer when fewer frames).
    """

    def __init__(self, qmap: QMap, *, n_segments: int = 10) -> None:
        if not isinstance(qmap, QMap):
            raise UsageError(f"must be a QMap, got {type(qmap).__name__}", argument="qmap")
        self._qmap = qmap
        self._n_segments = int(n_segments)
        n_pixels = qmap.shape[0] * qmap.shape[1]
        valid = np.flatnonzero(qmap.mask.reshape(-1))
        rows = np.concatenate([qmap.pixel_index, valid])
        cols = np.concatenate([qmap.static_index, np.full(valid.size, qmap.n_static)])
        self._weights = sps.csr_matrix(
            (np.ones(rows.size), (rows, cols)), shape=(n_pixels, qmap.n_static + 1)
        )
        self._n_valid = int(valid.size)
        # dense frames: the static bin of every pixel (-1: none), and whether it is valid
        self._bin_of = np.full(n_pixels, -1, dtype=np.int32)
        self._bin_of[qmap.pixel_index] = qmap.static_index
        self._valid_of = qmap.mask.reshape(-1).astype(np.bool_)
        self._pixel_sum = np.zeros(n_pixels, dtype=np.float64)
        self._rows: list[NDArray[np.float64]] = []
        self._fed = 0

    @property
    def frames_fed(self) -> int:
        """Frames accumulated so far."""
        return self._fed

    def feed(self, frames: NDArray[Any]) -> None:
        """Accumulate dense frames ``(n, H, W)``, the next in time order."""
        flat = np.asarray(frames).reshape(len(frames), -1)
        if flat.shape[1] != self._pixel_sum.size:
            raise UsageError(
                f"frames of {flat.shape[1]} pixels do not fit the q-map", argument="frames"
            )
        self._pixel_sum += flat.sum(axis=0, dtype=np.float64)
        rows = np.zeros((flat.shape[0], self._qmap.n_static + 1))
        if flat.dtype == np.bool_:
            flat = flat.view(np.uint8)
        _frame_bin_sums(np.ascontiguousarray(flat), self._bin_of, self._valid_of, rows)
        self._rows.append(rows)
        self._fed += flat.shape[0]

    def feed_sparse(self, frames: SparseFrames) -> None:
        """Accumulate frames given as events (:class:`SparseFrames`)."""
        n_pixels = self._pixel_sum.size
        counts = np.asarray(frames.counts, dtype=np.float64)
        self._pixel_sum += np.bincount(frames.pixels, weights=counts, minlength=n_pixels)
        events = sps.csr_matrix(
            (counts, frames.pixels, frames.indptr), shape=(frames.n_frames, n_pixels)
        )
        self._rows.append(np.asarray((events @ self._weights).todense(), dtype=np.float64))
        self._fed += frames.n_frames

    def _per_frame(self) -> NDArray[np.float64]:
        if len(self._rows) != 1:
            width = self._qmap.n_static + 1
            self._rows = [np.concatenate(self._rows) if self._rows else np.zeros((0, width))]
        return self._rows[0]

    def result(self) -> SaxsResult:
        """The reductions of the frames so far (at least one)."""
        n = self._fed
        if n < 1:
            raise CorrelationError("SAXS reduction of no frames")
        qm = self._qmap
        per_frame = self._per_frame()
        n_seg = min(self._n_segments, n)
        bounds = np.arange(n_seg + 1, dtype=np.int64) * n // n_seg
        counts = np.bincount(qm.static_index, minlength=qm.n_static).astype(np.float64)
        segments = np.add.reduceat(per_frame[:, : qm.n_static], bounds[:-1], axis=0)
        lengths = np.diff(bounds).astype(np.float64)
        saxs_2d = self._pixel_sum / n
        saxs_1d = np.bincount(
            qm.static_index, weights=saxs_2d[qm.pixel_index], minlength=qm.n_static
        )
        return SaxsResult(
            saxs_2d=saxs_2d.reshape(qm.shape),
            saxs_1d=saxs_1d / counts,
            saxs_1d_segments=segments / (lengths[:, None] * counts[None, :]),
            intensity_vs_time=np.stack(
                [np.arange(n, dtype=np.float64), per_frame[:, qm.n_static] / self._n_valid]
            ),
        )

    def state(self) -> dict[str, NDArray[Any]]:
        """Arrays to resume from (:meth:`from_state`)."""
        return {
            "saxs_pixel_sum": self._pixel_sum.copy(),
            "saxs_per_frame": self._per_frame().copy(),
        }

    @classmethod
    def from_state(cls, qmap: QMap, state: Mapping[str, NDArray[Any]]) -> LiveSaxs:
        """Resume from :meth:`state` with the same q-map."""
        obj = cls(qmap)
        pixel_sum = np.asarray(state["saxs_pixel_sum"], dtype=np.float64)
        per_frame = np.asarray(state["saxs_per_frame"], dtype=np.float64)
        if pixel_sum.shape != obj._pixel_sum.shape or per_frame.shape[1:] != (qmap.n_static + 1,):
            raise UsageError("SAXS state does not fit the q-map", argument="state")
        obj._pixel_sum = pixel_sum.copy()
        obj._rows = [per_frame.copy()]
        obj._fed = int(per_frame.shape[0])
        return obj
