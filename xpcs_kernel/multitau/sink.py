"""Where a pipeline's frames go for multi-tau: in memory when they fit, else streamed.

A selection whose frames fit ``in_memory_bytes`` is gathered into one stack
and correlated at the end by :func:`~xpcs_kernel.multitau.correlator.multitau` (pixel
groups with a small, cache-resident state). Anything larger goes chunk by
chunk through a :class:`~xpcs_kernel.multitau.correlator.MultiTauCorrelator`, whose
memory does not grow with the frame count. Both give the same g2 (float64
rounding). Streamed chunks of up to :data:`PAIR_BYTES` go to the kernel in
pairs: every kernel call reads and writes the correlator state of the levels
that receive frames (about 0.9 kB per pixel), so one call over two chunks
costs less than two calls, while the reader keeps its chunks small enough
for the cache. The sink holds one chunk meanwhile (the reader returns arrays
the caller owns).

The limit is small (:data:`IN_MEMORY_BYTES`, 32 MiB) because a gathered stack
is that much memory the process touches for the first time, and first
touches are what a fresh process pays for: on the 2-core VM of the
benchmarks, 0.04-0.6 s per 262 MB depending on the host, against the eager
kernel's gain of 0.05-0.1 s over streaming on 256x256 x 2000 frames. The
whole ``correlate`` command on that uint16 stack: median 1.06-1.10 s
streamed against 1.23-1.39 s gathered (2026-12-08, eight runs each,
alternating).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.multitau.correlator import G2Result, MultiTauCorrelator, PixelBins, multitau

__all__ = ["IN_MEMORY_BYTES", "PAIR_BYTES", "MultiTauSink"]

IN_MEMORY_BYTES = 32 << 20
"""Largest frame stack (bytes, as read) that is gathered in memory."""

PAIR_BYTES = 32 << 20
"""Largest streamed chunk (bytes) held to be correlated with the next one.

uint16 256x256 x 2000 frames in the pipeline's 139-frame (18 MB) chunks, the
streaming correlator alone, in-process, median of five alternating runs:
0.096 s one chunk per call, 0.079 s in pairs (eager: 0.057 s). Larger chunks
already cost less per frame, and holding one is memory the RSS budget of
:func:`~xpcs_kernel.multitau.correlator.stream_memory_budget` does not
count: 1 Mpx x 1000 uint16 frames (112 MB chunks), whole command, median of
ten alternating runs, 3.16 s one chunk per call against 3.28 s in pairs.
"""


class MultiTauSink:
    """Multi-tau of ``n_frames`` frames fed in order (dense or sparse chunks).

    Parameters
    ----------
    n_pixels : int
        Columns of a flattened frame.
    pixel_index : ndarray of intp
        Correlated pixels (as :class:`MultiTauCorrelator`).
    n_frames : int
        Frames that will be fed (sizes the in-memory stack).
    in_memory_bytes : int, optional
        Gather the frames when ``n_frames * n_pixels * itemsize`` is at most
        this (default :data:`IN_MEMORY_BYTES`).
    """

    def __init__(
        self,
        n_pixels: int,
        *,
        pixel_index: NDArray[np.intp],
        n_frames: int,
        in_memory_bytes: int | None = None,
    ) -> None:
        self._corr = MultiTauCorrelator(n_pixels, pixel_index=pixel_index)
        self._n_pixels = int(n_pixels)
        self._n_frames = int(n_frames)
        self._budget = IN_MEMORY_BYTES if in_memory_bytes is None else int(in_memory_bytes)
        self._stack: NDArray[Any] | None = None
        self._filled = 0
        self._decided = False
        self._held: NDArray[Any] | None = None  # a streamed chunk waiting for the next

    @property
    def in_memory(self) -> bool:
        """Whether the frames are being gathered (decided by the first dense chunk)."""
        return self._stack is not None

    def will_gather(self, dtype: np.dtype[Any]) -> bool:
        """Whether dense frames of ``dtype`` will be gathered in memory (else streamed)."""
        return self._n_frames * self._n_pixels * dtype.itemsize <= self._budget

    def prefault(self, dtype: np.dtype[Any], *, events: bool) -> None:
        """Touch the streaming correlator's state before the first chunk (see
        :meth:`MultiTauCorrelator.prefault`).

        Nothing when dense frames will be gathered (the eager kernel has its
        own state). The pipeline calls it in a thread while the kernels load,
        when the second core has time: uint8 256x256 x 2000, ten alternating
        runs each, median 0.90 -> 0.84 s. Event lists were left out while the
        reader thread also did SAXS and the file's hash kept the second core
        busy (Rigaku 0.1, six runs: 2.14 s without, 2.27 s with); with SAXS in
        the correlating thread the Rigaku runs gain too (2026-12-08, six
        alternating runs, median: 0.01 ph/px/frame 1.06 -> 1.03 s, 0.1 1.76 ->
        1.69 s, 0.001 unchanged).
        """
        if events or not self.will_gather(dtype):
            self._corr.prefault(self._n_frames)

    def feed(self, frames: NDArray[Any]) -> None:
        """The next dense frames, ``(n, H, W)`` or ``(n, n_pixels)``.

        A streamed chunk may be kept (not copied) until the next call or
        :meth:`g2`: the caller must not change it meanwhile.
        """
        flat = np.asarray(frames).reshape(np.shape(frames)[0], -1)
        if not self._decided:
            self._decided = True
            if flat.shape[1] == self._n_pixels and self.will_gather(flat.dtype):
                self._stack = np.empty((self._n_frames, self._n_pixels), dtype=flat.dtype)
        stack = self._stack
        if stack is not None:
            end = self._filled + flat.shape[0]
            if flat.dtype == stack.dtype and flat.shape[1] == stack.shape[1] and end <= len(stack):
                stack[self._filled : end] = flat
                self._filled = end
                return
            self._spill()  # unexpected shape, dtype or count: stream from here on
        pairable = (
            flat.shape[1] == self._n_pixels
            and flat.dtype.kind in "uif"
            and flat.nbytes <= PAIR_BYTES
        )
        if pairable and self._held is not None:
            held, self._held = self._held, None
            self._corr.feed(held, flat)  # one pass for both
        elif pairable:
            self._held = flat  # correlated with the next chunk, in one pass
        else:
            self._release()  # never lost behind a chunk that raises
            self._corr.feed(flat)  # raises now what it would raise later

    def feed_sparse(
        self,
        n_frames: int,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.integer[Any]],
        counts: NDArray[Any],
    ) -> None:
        """The next frames as a CSR event list (always streamed)."""
        self._decided = True
        self._spill()
        self._release()
        self._corr.feed_sparse(n_frames, indptr, pixels, counts)

    def g2(self, bins: PixelBins) -> G2Result:
        """Binned g2 of everything fed."""
        if self._stack is not None:
            frames = self._stack[: self._filled]
            return multitau(frames, bins, pixel_index=self._corr.pixel_index, path="dense")
        self._release()
        return self._corr.g2(bins)

    def _release(self) -> None:
        """Correlate the chunk held for pairing, alone."""
        if self._held is not None:
            held, self._held = self._held, None
            self._corr.feed(held)

    def _spill(self) -> None:
        """Feed the gathered frames to the streaming correlator and stop gathering."""
        if self._stack is not None:
            self._corr.feed(self._stack[: self._filled])
            self._stack = None
