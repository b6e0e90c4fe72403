"""The chunk stream of a correlation run (:func:`xpcs_kernel.pipeline.correlate.correlate_file`).

Choosing the dense or sparse path for a source, reading the next chunk in a
background thread, normalising chunks by their frame means, feeding them to
the SAXS accumulator, and timing each stage.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np

from xpcs_kernel.errors import FrameFormatError
from xpcs_kernel.io import FrameChunk, FrameSelection, FrameSource
from xpcs_kernel.multitau.correlator import choose_path
from xpcs_kernel.saxs.profile import SaxsAccumulator

__all__ = ["StageTimer", "choose_sparse", "normalize_chunk", "prefetch", "sx_feed"]

T = TypeVar("T")


def prefetch(iterator: Iterator[T]) -> Iterator[T]:
    """Yield from ``iterator`` while the next item is produced in a thread."""
    sentinel = object()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xpcs-read") as pool:
        future = pool.submit(next, iterator, sentinel)
        while True:
            item = future.result()
            if item is sentinel:
                return
            future = pool.submit(next, iterator, sentinel)
            yield item  # type: ignore[misc]


class StageTimer:
    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def add(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.totals[name] = self.totals.get(name, 0.0) + (now - since)
        return now


def normalize_chunk(chunk: FrameChunk, pixel_index: np.ndarray[Any, Any]) -> FrameChunk:
    """Divide each frame by its mean over the correlated pixels."""
    if chunk.sparse is not None:
        sp = chunk.sparse
        n_pix = pixel_index.size
        frame_of_event = np.repeat(np.arange(sp.n_frames), np.diff(sp.indptr))
        keep = np.isin(sp.pixels, pixel_index)
        sums = np.bincount(frame_of_event[keep], weights=sp.counts[keep], minlength=sp.n_frames)
        means = sums / n_pix
        if np.any(means <= 0):
            bad = int(np.flatnonzero(means <= 0)[0]) + chunk.start
            raise FrameFormatError(
                "cannot normalize a frame whose mean intensity is 0", key=f"frame {bad}"
            )
        counts = (sp.counts / means[frame_of_event]).astype(np.float32)
        return FrameChunk(
            start=chunk.start,
            dense=None,
            sparse=type(sp)(
                frame_shape=sp.frame_shape, indptr=sp.indptr, pixels=sp.pixels, counts=counts
            ),
        )
    assert chunk.dense is not None
    flat = chunk.dense.reshape(chunk.dense.shape[0], -1)
    means = flat[:, pixel_index].mean(axis=1, dtype=np.float64)
    if np.any(means <= 0):
        bad = int(np.flatnonzero(means <= 0)[0]) + chunk.start
        raise FrameFormatError(
            "cannot normalize a frame whose mean intensity is 0", key=f"frame {bad}"
        )
    dense = (chunk.dense / means[:, None, None].astype(np.float32)).astype(np.float32)
    return FrameChunk(start=chunk.start, dense=dense, sparse=None)


def sx_feed(sx: SaxsAccumulator, chunk: FrameChunk) -> None:
    if chunk.sparse is not None:
        sp = chunk.sparse
        sx.feed_sparse(sp.n_frames, sp.indptr, sp.pixels, sp.counts)
    else:
        assert chunk.dense is not None
        sx.feed(chunk.dense)


def choose_sparse(source: FrameSource, selection: FrameSelection, path: str) -> bool:
    """Dense or sparse multi-tau path.

    ``auto`` keeps dense sources dense (converting them would cost a pass)
    and, for sparse-native sources (sparse IMM, Rigaku), measures the
    occupancy of the first frames and asks :func:`choose_path`.
    """
    if path in ("dense", "sparse"):
        return path == "sparse"
    if not source.is_sparse:
        return False
    start = selection.begin
    stop = min(source.n_frames, start + 64 * selection.stride * selection.avg)
    sample = source.read_sparse(start, stop)
    n_pixels = source.frame_shape[0] * source.frame_shape[1]
    # averaging sums events of avg frames: the occupancy seen by the correlator grows
    occupancy = min(1.0, sample.counts.size / max(1, sample.n_frames * n_pixels) * selection.avg)
    return choose_path(occupancy, events=True) == "sparse"
