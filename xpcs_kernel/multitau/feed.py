"""Input checks and kernel dispatch of the streaming multi-tau correlator.

Dense frames go straight to :func:`~xpcs_kernel.multitau.dense.dense_feed`
(which gathers the correlated pixels and converts to float32 per tile); the
kernel is compiled for the usual detector dtypes, others are converted chunk
by chunk. Sparse (CSR) frames are scattered into a float32 block of the
correlated pixels and correlated by the same kernel, so both paths give
identical sums.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau.dense import dense_feed
from xpcs_kernel.multitau.events import EventStage, check_events
from xpcs_kernel.multitau.state import CorrelatorState

__all__ = ["FeedEngine", "shared_pool", "shutdown_shared_pool", "worker_threads"]

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()


def _default_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_threads() -> int:
    """Usable CPUs: the default number of kernel worker threads."""
    return _default_threads()


def shared_pool(n_threads: int) -> ThreadPoolExecutor:
    """A shared pool of at least ``n_threads`` workers (the kernel releases the GIL).

    The pool starts with at least one worker per usable CPU, so that callers in
    different threads (a library user's, or a reader's beside the
    correlator) never make it grow under each other. A larger request
    (an explicit ``threads=``) gets a new pool; the old one is left to finish
    what was submitted to it, never shut down under a caller that holds it.
    """
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or n_threads > _POOL_SIZE:
            size = max(int(n_threads), _default_threads())
            _POOL = ThreadPoolExecutor(size, thread_name_prefix="multitau")
            _POOL_SIZE = size
        return _POOL


def shutdown_shared_pool() -> None:
    """Stop the shared worker threads (a later call starts new ones)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True)
        _POOL = None
        _POOL_SIZE = 0


_KERNEL_DTYPES = frozenset(
    np.dtype(t) for t in ("u1", "u2", "u4", "i1", "i2", "i4", "i8", "f4", "f8")
)
_PARTS_PER_THREAD = 8  # tile ranges per worker thread and call (load balancing)
_BLOCK_BYTES = 1 << 28  # scratch per converted block (256 MiB)


def _as_int(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"must be an integer >= {minimum}, got {value!r}", argument=name)
    return int(value)


class FeedEngine:
    """Pixel selection, normalisation and threads of one correlator."""

    def __init__(
        self,
        n_pixels: int,
        *,
        pixel_index: NDArray[np.intp] | None,
        threads: int | None,
        normalize_frame: bool,
    ) -> None:
        self.n_pixels = _as_int(n_pixels, "n_pixels", minimum=1)
        if pixel_index is None:
            self.pixel_index = np.arange(self.n_pixels, dtype=np.intp)
        else:
            idx = np.asarray(pixel_index)
            if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
                raise UsageError(
                    f"must be a non-empty 1-D integer array, got {idx.dtype} {idx.shape}",
                    argument="pixel_index",
                )
            if idx.min() < 0 or idx.max() >= self.n_pixels:
                raise UsageError(
                    f"values must lie in [0, {self.n_pixels})", argument="pixel_index"
                )
            # an own, writable copy: numba compiles readonly and writable arrays apart
            self.pixel_index = np.array(idx, dtype=np.intp, order="C")
            ordered = bool(np.all(self.pixel_index[1:] > self.pixel_index[:-1]))
            if not ordered and np.bincount(self.pixel_index).max() > 1:
                raise UsageError("must not repeat a pixel", argument="pixel_index")
        self.threads = None if threads is None else _as_int(threads, "threads", minimum=1)
        self.normalize_frame = bool(normalize_frame)
        self._identity: NDArray[np.intp] | None = None
        self._stage: EventStage | None = None  # event frames waiting for the kernel

    def thread_count(self) -> int:
        """Worker threads of a call (the ``threads`` given, else the usable CPUs)."""
        return self.threads or _default_threads()

    @property
    def n_corr(self) -> int:
        """Number of correlated pixels."""
        return int(self.pixel_index.size)

    def to_dict(self) -> dict[str, NDArray[Any]]:
        """The engine's part of the correlator state."""
        return {
            "n_pixels": np.asarray(self.n_pixels, dtype=np.int64),
            "pixel_index": self.pixel_index.astype(np.int64),
            "normalize_frame": np.asarray(self.normalize_frame),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, NDArray[Any]]) -> FeedEngine:
        """Rebuild from :meth:`to_dict` (threads: numba's default)."""
        for key in ("n_pixels", "pixel_index", "normalize_frame"):
            if key not in state:
                raise UsageError(f"missing key {key!r}", argument="state")
        return cls(
            int(np.asarray(state["n_pixels"])),
            pixel_index=np.asarray(state["pixel_index"]),
            threads=None,
            normalize_frame=bool(np.asarray(state["normalize_frame"])),
        )

    # dense -----------------------------------------------------------------
    def feed_dense(
        self,
        state: CorrelatorState,
        frames: NDArray[Any],
        following: NDArray[Any] | None = None,
    ) -> None:
        """Check ``frames`` (and the ``following`` ones) and correlate them into ``state``.

        Two kernel-ready arrays of one type go through the kernel together, in
        one pass over the state; others one after the other. Both are checked
        before either is correlated.
        """
        arr = self.check_dense(frames)
        if following is not None:
            nxt = self.check_dense(following)
            if arr.shape[0] and nxt.shape[0] and self._same_kernel_type(arr, nxt):
                self.flush(state)  # staged event frames come first
                scale = np.concatenate([self.frame_scale(arr), self.frame_scale(nxt)])
                self.run_dense(state, arr, scale, more=nxt)
                return
            self.feed_dense(state, arr)
            arr = nxt
        if arr.shape[0] == 0:
            return
        self.flush(state)  # staged event frames come first
        if not self.kernel_ready(arr):
            kind = np.float32 if arr.dtype.itemsize <= 4 else np.float64
            step = max(1, _BLOCK_BYTES // (self.n_pixels * 8))
            for f0 in range(0, arr.shape[0], step):
                part = np.ascontiguousarray(arr[f0 : f0 + step])
                if part.dtype not in _KERNEL_DTYPES:
                    part = part.astype(kind)
                self.run_dense(state, part, self.frame_scale(part))
            return
        self.run_dense(state, arr, self.frame_scale(arr))

    @classmethod
    def _same_kernel_type(cls, a: NDArray[Any], b: NDArray[Any]) -> bool:
        """Whether one kernel call can read both arrays in place."""
        return (
            cls.kernel_ready(a)
            and cls.kernel_ready(b)
            and a.dtype == b.dtype
            and a.flags.writeable == b.flags.writeable
        )

    @staticmethod
    def kernel_ready(arr: NDArray[Any]) -> bool:
        """Whether the kernel reads ``arr`` in place (a compiled dtype, C order)."""
        return arr.dtype in _KERNEL_DTYPES and bool(arr.flags.c_contiguous)

    def check_dense(self, frames: NDArray[Any]) -> NDArray[Any]:
        """``frames`` as an ``(n, n_pixels)`` array, or a :class:`UsageError`."""
        arr = np.asarray(frames)
        if arr.ndim == 3 and arr.shape[1] * arr.shape[2] == self.n_pixels:
            arr = arr.reshape(arr.shape[0], self.n_pixels)
        if arr.ndim != 2 or arr.shape[1] != self.n_pixels:
            raise UsageError(
                f"must have shape (n, {self.n_pixels}) or (n, H, W) with H*W = "
                f"{self.n_pixels}, got {arr.shape}",
                argument="frames",
            )
        if arr.dtype == np.bool_:
            arr = arr.view(np.uint8)
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise UsageError(f"must be integer or float, got dtype {arr.dtype}", argument="frames")
        return arr

    def frame_scale(self, arr: NDArray[Any]) -> NDArray[np.float32]:
        """Per-frame factor: ``n_corr / sum`` over the correlated pixels, or ones."""
        if not self.normalize_frame:
            return np.ones(arr.shape[0], dtype=np.float32)
        sums = np.empty(arr.shape[0], dtype=np.float64)
        step = max(1, _BLOCK_BYTES // (self.n_corr * 8))
        full = self.n_corr == self.n_pixels
        for f0 in range(0, arr.shape[0], step):
            part = arr[f0 : f0 + step]
            sel = part if full else part[:, self.pixel_index]
            sums[f0 : f0 + step] = sel.sum(axis=1, dtype=np.float64)
        return self._scale_from_sums(sums)

    def _scale_from_sums(self, sums: NDArray[np.float64]) -> NDArray[np.float32]:
        scale = np.zeros(sums.shape, dtype=np.float64)
        np.divide(self.n_corr, sums, out=scale, where=sums != 0)
        return scale.astype(np.float32)

    def run_dense(
        self,
        state: CorrelatorState,
        arr: NDArray[Any],
        scale: NDArray[np.float32],
        index: NDArray[np.intp] | None = None,
        *,
        more: NDArray[Any] | None = None,
    ) -> None:
        """Correlate the columns ``index`` (default: the engine's pixels) of a
        kernel-ready ``arr`` (see :meth:`kernel_ready`), scaled per frame, into
        ``state`` (whose pixels they are), over the worker threads.

        ``more`` (of ``arr``'s type) holds frames that follow ``arr``, correlated
        in the same pass; ``scale`` then covers both.
        """
        after = arr[:0] if more is None else more
        n_new = int(arr.shape[0] + after.shape[0])
        state.prepare(n_new)
        index = self.pixel_index if index is None else index
        n_tiles = state.n_tiles
        n_threads = max(1, min(self.thread_count(), n_tiles))
        # several tile ranges per thread, taken in order by whichever worker is
        # free: a thread slowed by another process does not hold up the call
        n_parts = min(n_tiles, n_threads * _PARTS_PER_THREAD)
        bounds = [n_tiles * i // n_parts for i in range(n_parts + 1)]

        def run(start: int, stop: int) -> None:
            dense_feed(
                arr,
                after,
                index,
                scale,
                state.n_frames,
                state.dpl,
                start,
                stop,
                state.n_levels,
                state.n_active,
                *state.kernel_arrays(),
            )

        if n_threads == 1:
            run(0, n_tiles)
        else:
            pool = shared_pool(n_threads)
            parts = iter(itertools.pairwise(bounds))
            lock = threading.Lock()

            def worker() -> None:
                while True:
                    with lock:
                        part = next(parts, None)
                    if part is None:
                        return
                    run(*part)

            futures = [pool.submit(worker) for _ in range(n_threads)]
            for future in futures:
                future.result()
        state.n_frames += n_new

    # sparse ----------------------------------------------------------------
    def feed_sparse(
        self,
        state: CorrelatorState,
        n_frames: int,
        indptr: NDArray[np.int64],
        pixels: NDArray[np.integer[Any]],
        counts: NDArray[Any],
    ) -> None:
        """Check a CSR event list and stage its frames for ``state`` (see :meth:`flush`)."""
        n = _as_int(n_frames, "n_frames", minimum=0)
        ptr, pix, cnt = check_events(n, indptr, pixels, counts)
        if n == 0:
            return
        self._events().add(ptr, pix, cnt, self._runner(state))

    def _events(self) -> EventStage:
        if self._stage is None:
            self._stage = EventStage(
                self._columns(), n_threads=self.thread_count(), pool=shared_pool
            )
        return self._stage

    @property
    def pending(self) -> int:
        """Frames staged by :meth:`feed_sparse` and not yet in the state."""
        return 0 if self._stage is None else self._stage.pending

    def flush(self, state: CorrelatorState) -> None:
        """Correlate the staged frames into ``state`` (before it is read or fed dense frames)."""
        if self._stage is not None:
            self._stage.flush(self._runner(state))

    def _runner(self, state: CorrelatorState) -> Callable[[NDArray[Any]], None]:
        """Correlates rows of the correlated pixels into ``state`` (each frame scaled)."""
        if self._identity is None:
            self._identity = np.arange(self.n_corr, dtype=np.intp)
        identity = self._identity

        def run(rows: NDArray[Any]) -> None:
            if self.normalize_frame:
                scale = self._scale_from_sums(rows.sum(axis=1, dtype=np.float64))
            else:
                scale = np.ones(rows.shape[0], dtype=np.float32)
            self.run_dense(state, rows, scale, identity)

        return run

    def _columns(self) -> NDArray[np.int64]:
        column = np.full(self.n_pixels, -1, dtype=np.int64)
        column[self.pixel_index] = np.arange(self.n_corr, dtype=np.int64)
        return column
