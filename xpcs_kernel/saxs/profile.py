"""Time-averaged SAXS reductions of a frame series (REFERENCE.md section 5).

One pass over the frames, chunk by chunk, dense or sparse, accumulating in
float64:

* ``saxs_2d[p] = (1/N) sum_t I_t[p]`` for every pixel;
* ``saxs_1d[s] = mean over the correlated pixels p of static bin s of saxs_2d[p]``;
* ``saxs_1d_segments[k, s]``: the same over the frames of the k-th of
  ``n_segments`` consecutive segments (segment k holds frames
  ``[k N // n, (k + 1) N // n)``);
* ``intensity_vs_time = [t, mean over mask pixels of I_t]`` for every frame t
  (0-based frame index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, FrameFormatError, UsageError
from xpcs_kernel.qmap.model import QMap
from xpcs_kernel.saxs.kernels import accumulate_chunk, accumulate_events

__all__ = ["MAX_SEGMENTS", "SaxsAccumulator", "SaxsResult", "saxs"]

#: the APS result format keeps at most 16 segment profiles
MAX_SEGMENTS = 16


@dataclass(frozen=True, eq=False)
class SaxsResult:
    """SAXS reductions of a frame series.

    Attributes
    ----------
    saxs_2d : ndarray of float64, shape (H, W)
        Time-averaged intensity per pixel.
    saxs_1d : ndarray of float64, shape (n_static,)
        Mean of ``saxs_2d`` over the correlated pixels of each static bin.
    saxs_1d_segments : ndarray of float64, shape (n_segments, n_static)
        ``saxs_1d`` of each consecutive time segment.
    intensity_vs_time : ndarray of float64, shape (2, N)
        Row 0 the frame index, row 1 the mean intensity over the mask pixels.
    """

    saxs_2d: NDArray[np.float64]
    saxs_1d: NDArray[np.float64]
    saxs_1d_segments: NDArray[np.float64]
    intensity_vs_time: NDArray[np.float64]


class SaxsAccumulator:
    """Streaming SAXS reductions: :meth:`feed` chunks in time order, then :meth:`result`.

    Parameters
    ----------
    qmap : QMap
    n_frames : int
        Total number of frames that will be fed (sets the segment boundaries).
    n_segments : int
        Number of time segments, ``1 <= n_segments <= 16``; reduced to
        ``n_frames`` when there are fewer frames.
    """

    def __init__(self, qmap: QMap, *, n_frames: int, n_segments: int = 10) -> None:
        if not isinstance(qmap, QMap):
            raise UsageError(f"must be a QMap, got {type(qmap).__name__}", argument="qmap")
        for name, value in (("n_frames", n_frames), ("n_segments", n_segments)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UsageError(f"must be a positive integer, got {value!r}", argument=name)
        if n_segments > MAX_SEGMENTS:
            raise UsageError(f"must be <= {MAX_SEGMENTS}, got {n_segments}", argument="n_segments")
        self._qmap = qmap
        self._n_frames = int(n_frames)
        n_seg = min(int(n_segments), self._n_frames)
        self._bounds = np.arange(n_seg + 1, dtype=np.int64) * self._n_frames // n_seg
        self._n_pixels = qmap.shape[0] * qmap.shape[1]
        # per-pixel totals, the open segment's per-pixel sums, and per closed
        # segment only the per-static-bin totals: memory stays ~2 images whatever
        # the number of segments, and each segment is binned once
        self._pixel_sum = np.zeros(self._n_pixels, dtype=np.float64)
        self._open_sum = np.zeros(self._n_pixels, dtype=np.float64)
        self._open: int | None = None
        self._segment_static = np.zeros((n_seg, qmap.n_static), dtype=np.float64)
        self._intensity = np.zeros(self._n_frames, dtype=np.float64)
        mask = qmap.mask.reshape(-1)
        self._mask_f = mask.astype(np.float64)
        # events look the mask up one by one: 1 byte per pixel keeps it in cache
        # (a 0.5 Mpx float64 mask is 4 MB, swept once per frame)
        self._valid_u8 = mask.astype(np.uint8)
        self._n_valid = int(np.count_nonzero(mask))
        self._invalid = np.flatnonzero(~mask)
        self._fed = 0

    @property
    def frames_fed(self) -> int:
        """Frames accumulated so far."""
        return self._fed

    def _reserve(self, n: int) -> int:
        if self._fed + n > self._n_frames:
            raise UsageError(
                f"fed {self._fed + n} frames but n_frames={self._n_frames}", argument="frames"
            )
        start = self._fed
        self._fed += n
        return start

    def _segments(self, start: int, n: int) -> list[tuple[int, int, int]]:
        """``(segment, begin, end)``: chunk ``[start, start + n)`` offsets inside each segment."""
        out = []
        for k in range(self._bounds.size - 1):
            lo = max(int(self._bounds[k]), start)
            hi = min(int(self._bounds[k + 1]), start + n)
            if hi > lo:
                out.append((k, lo - start, hi - start))
        return out

    def feed(self, frames: NDArray[Any]) -> None:
        """Accumulate a dense chunk ``(n, H, W)`` (the next frames in time order)."""
        arr = np.asarray(frames)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != self._qmap.shape:
            raise FrameFormatError(
                "chunk does not fit the q-map",
                key="frames",
                expected=f"(n, {self._qmap.shape[0]}, {self._qmap.shape[1]})",
                found=str(arr.shape),
            )
        if arr.dtype.kind not in "uifb":
            raise FrameFormatError("frames must be numeric", key="frames", found=str(arr.dtype))
        n = arr.shape[0]
        if n == 0:
            return
        start = self._reserve(n)
        flat = arr.reshape(n, self._n_pixels)
        if flat.dtype == np.bool_:
            flat = flat.view(np.uint8)
        # one parallel pass per segment part, straight into the open segment's sums
        for k, lo, hi in self._segments(start, n):
            totals = accumulate_chunk(flat[lo:hi], self._mask_f, self._segment(k))
            self._intensity[start + lo : start + hi] = totals / self._n_valid

    def feed_sparse(
        self,
        n_frames: int,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.int64],
        counts: NDArray[Any],
    ) -> None:
        """Accumulate ``n_frames`` sparse frames in CSR form.

        Frame ``i`` of the chunk has ``counts[indptr[i]:indptr[i + 1]]`` photons
        at flat pixel indices ``pixels[indptr[i]:indptr[i + 1]]`` (row * W + col).
        """
        if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)):
            raise UsageError(f"must be an integer, got {n_frames!r}", argument="n_frames")
        ptr = np.asarray(indptr, dtype=np.int64).reshape(-1)
        pix = np.asarray(pixels).reshape(-1)
        cnt = np.asarray(counts).reshape(-1)
        if n_frames < 0 or ptr.size != n_frames + 1:
            raise FrameFormatError(
                "indptr must have n_frames + 1 entries",
                key="indptr",
                expected=str(n_frames + 1),
                found=str(ptr.size),
            )
        if ptr[0] != 0 or np.any(np.diff(ptr) < 0) or ptr[-1] != pix.size or pix.size != cnt.size:
            raise FrameFormatError(
                "indptr must rise from 0 to len(pixels) == len(counts)",
                key="indptr",
                found=f"indptr [{ptr[0]}..{ptr[-1]}], {pix.size} pixels, {cnt.size} counts",
            )
        if pix.size and not np.issubdtype(pix.dtype, np.integer):
            raise FrameFormatError("pixel indices must be integers", key="pixels")
        if n_frames == 0:
            return
        if pix.size and (int(pix.min()) < 0 or int(pix.max()) >= self._n_pixels):
            bad = int(np.flatnonzero((pix < 0) | (pix >= self._n_pixels))[0])
            raise FrameFormatError(
                f"pixel indices must lie in [0, {self._n_pixels})",
                key="pixels",
                found=f"{pix[bad]} (event {bad})",
            )
        # the chunk is valid: one compiled pass per segment part, straight into the
        # open segment's sums (a scratch image per part cost more than the events
        # for 0.5 Mpx chunks of a few dozen frames)
        start = self._reserve(int(n_frames))
        for k, lo, hi in self._segments(start, int(n_frames)):
            totals, _ = accumulate_events(
                ptr[lo : hi + 1], pix, cnt, self._valid_u8, self._segment(k)
            )
            self._intensity[start + lo : start + hi] = totals / self._n_valid

    def _segment(self, segment: int) -> NDArray[np.float64]:
        """The per-pixel sums of ``segment``, closing the one before (frames come in order)."""
        if self._open != segment:
            self._close()
            self._open = segment
        return self._open_sum

    def _close(self) -> None:
        """Bin the open segment's sums and add them to the totals."""
        if self._open is None:
            return
        qm = self._qmap
        sums = self._open_sum
        self._pixel_sum += sums
        self._segment_static[self._open] += np.bincount(
            qm.static_index, weights=sums[qm.pixel_index], minlength=qm.n_static
        )
        sums[:] = 0.0
        self._open = None

    def result(self) -> SaxsResult:
        """The reductions; every one of the ``n_frames`` frames must have been fed."""
        if self._fed != self._n_frames:
            raise CorrelationError(
                f"SAXS reduction got {self._fed} frames, expected n_frames={self._n_frames}"
            )
        self._close()
        qm = self._qmap
        lengths = np.diff(self._bounds).astype(np.float64)
        counts = np.bincount(qm.static_index, minlength=qm.n_static).astype(np.float64)
        saxs_2d = self._pixel_sum / self._n_frames
        saxs_1d = np.bincount(
            qm.static_index, weights=saxs_2d[qm.pixel_index], minlength=qm.n_static
        )
        return SaxsResult(
            saxs_2d=saxs_2d.reshape(qm.shape),
            saxs_1d=saxs_1d / counts,
            saxs_1d_segments=self._segment_static / (lengths[:, None] * counts[None, :]),
            intensity_vs_time=np.stack(
                [np.arange(self._n_frames, dtype=np.float64), self._intensity]
            ),
        )


def saxs(frames: NDArray[Any], qmap: QMap, *, n_segments: int = 10) -> SaxsResult:
    """SAXS reductions of all ``frames`` ``(N, H, W)`` in memory.

    See :class:`SaxsAccumulator` and the module docstring for the definitions.
    """
    arr = np.asarray(frames)
    if arr.ndim != 3:
        raise FrameFormatError("frames must be (N, H, W)", key="frames", found=str(arr.shape))
    acc = SaxsAccumulator(qmap, n_frames=arr.shape[0], n_segments=n_segments)
    acc.feed(arr)
    return acc.result()
