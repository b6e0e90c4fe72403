"""Stream selected (strided, averaged) frames from a source in bounded chunks.

:func:`iter_chunks` is the one way the correlators read frames: it applies a
:class:`~xpcs_kernel.io.base.FrameSelection`, checks the values of every
chunk cheaply (one min/max per chunk) and never holds more than about
``memory_budget`` bytes of frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io._kernels import average_csr
from xpcs_kernel.io.base import FrameSelection, FrameSource, SparseFrames, dense_to_sparse

__all__ = ["FrameChunk", "average_sparse", "iter_chunks"]


@dataclass(frozen=True)
class FrameChunk:
    """Consecutive output frames of a selection.

    Attributes
    ----------
    start : int
        Index of the first frame of this chunk in the selected/averaged output
        sequence (0 for the first chunk).
    dense : ndarray (n, H, W) or None
        Native dtype when ``avg == 1``, ``float32`` when averaged.
    sparse : SparseFrames or None
        Exactly one of ``dense`` and ``sparse`` is set.
    """

    start: int
    dense: NDArray[Any] | None
    sparse: SparseFrames | None

    def __post_init__(self) -> None:
        if (self.dense is None) == (self.sparse is None):
            raise UsageError("exactly one of dense and sparse must be set", argument="dense")

    @property
    def n_frames(self) -> int:
        """Number of output frames in the chunk."""
        if self.dense is not None:
            return int(self.dense.shape[0])
        assert self.sparse is not None
        return self.sparse.n_frames


def average_sparse(frames: SparseFrames, avg: int) -> SparseFrames:
    """Average consecutive groups of ``avg`` sparse frames (partial last group dropped).

    Output frame ``j`` is ``(1 / avg) * sum_{a < avg} I_{j * avg + a}``, ``float32``,
    with its pixels sorted and only nonzero sums stored.
    """
    if isinstance(avg, bool) or not isinstance(avg, int) or avg < 1:
        raise UsageError(f"must be a positive integer, got {avg!r}", argument="avg")
    height, width = frames.frame_shape
    indptr, pixels, counts = average_csr(
        frames.indptr, frames.pixels, frames.counts, avg=avg, n_pixels=height * width
    )
    return SparseFrames(frames.frame_shape, indptr, pixels, counts)


def _fail(
    source: FrameSource, frame: int, message: str, *, expected: str, found: str
) -> FrameFormatError:
    return FrameFormatError(
        message, path=source.path, key=f"frame {frame}", expected=expected, found=found
    )


def _check_values(
    values: NDArray[Any],
    frame_of: Callable[[], NDArray[np.int64]],
    source: FrameSource,
    *,
    allow_saturated: bool,
) -> None:
    """Raise FrameFormatError for NaN/inf, negative or saturated values.

    ``values`` is ``(n, P)`` (a row per frame) or ``(nnz,)`` entries; ``frame_of()``
    gives the raw frame index of each row or entry (only called on an error).
    """
    if values.size == 0:
        return
    kind = values.dtype.kind
    bad: NDArray[np.bool_] | None = None
    if kind == "f":
        low, high = values.min(), values.max()  # NaN propagates into both
        if not (np.isfinite(low) and np.isfinite(high)):
            bad = ~np.isfinite(values)
            message, expected = "NaN or infinite value", "finite values"
        elif low < 0:
            bad = values < 0
            message, expected = "negative value", "values >= 0"
    elif kind == "i" and values.min() < 0:
        bad = values < 0
        message, expected = "negative value", "values >= 0"
    if bad is None and source.dtype.kind == "u" and not allow_saturated:
        top = np.iinfo(source.dtype).max
        if values.max() >= top:
            bad = values >= top
            message = (
                f"saturated pixels (value {top} = {source.dtype} maximum); mask them in "
                "the q-map, or pass allow_saturated=True"
            )
            expected = f"values < {top}"
    if bad is None:
        return
    rows = bad.reshape(bad.shape[0], -1).any(axis=1) if bad.ndim > 1 else bad
    first = int(np.argmax(rows))
    frames = frame_of()
    frame = int(frames[first])
    in_frame = int(np.count_nonzero(bad[frames == frame]))
    raise _fail(
        source,
        frame,
        f"{message}: {in_frame} pixel(s) in frame {frame}, {int(np.count_nonzero(bad))} in "
        f"frames {int(frames.min())}..{int(frames.max())}",
        expected=expected,
        found=f"{in_frame} bad pixel(s)",
    )


SPARSE_CHUNK_BYTES = 64 << 20
"""Most ``memory_budget`` a chunk of event lists may take, whatever is asked.

A chunk's arrays are allocated anew for every chunk. glibc serves an
allocation above its largest mmap threshold (32 MiB) with fresh pages, which
a process pays for on first touch (on the 2-core benchmark VM 1.3 ms per MB,
more than decoding the events), and reuses freed memory for smaller ones.
64 MiB keeps the largest array of a chunk (int64 pixel indices) near 20 MB
for the Rigaku and IMM readers; the correlator stages event frames into
larger kernel calls itself (:mod:`xpcs_kernel.multitau.events`). Rigaku
512x1024 x 2000 frames at 0.1 ph/px/frame, whole command, median of five
alternating runs: 2.65 s with 105-frame chunks, 2.08-2.15 s with 24-56.
"""


def _auto_chunk_frames(
    source: FrameSource, selection: FrameSelection, sparse: bool, memory_budget: int
) -> int:
    if sparse:
        memory_budget = min(memory_budget, SPARSE_CHUNK_BYTES)
    stride, avg = selection.stride, selection.avg
    raw = source.frame_nbytes(sparse=sparse)
    span = stride if source.reads_whole_span(stride) else 1
    height, width = source.frame_shape
    out = 0 if sparse else height * width * (4 if avg > 1 else source.dtype.itemsize)
    per_output = 2 * (avg * span * raw + out)  # x2: conversions hold a second copy
    frames = max(1, memory_budget // max(per_output, 1))
    preferred = source.preferred_read_frames()
    if stride == 1 and preferred > 1:
        unit = math.lcm(preferred, avg) // avg  # output frames per whole number of chunks
        if frames >= unit:
            frames -= frames % unit
    return frames


def iter_chunks(
    source: FrameSource,
    selection: FrameSelection = FrameSelection(),  # noqa: B008 - frozen, immutable
    *,
    chunk_frames: int | None = None,
    sparse: bool | None = None,
    memory_budget: int = 256 * 2**20,
    allow_saturated: bool = False,
) -> Iterator[FrameChunk]:
    """Yield the selected frames of ``source`` in chunks, in time order.

    Output frame ``j`` is ``(1 / avg) * sum_{a=0}^{avg-1} I[begin + (j * avg + a) * stride]``
    (the raw frame itself when ``avg == 1``). The chunks cover exactly
    ``selection.n_output(source.n_frames)`` frames.

    Parameters
    ----------
    source : FrameSource
        An open frame source (:func:`xpcs_kernel.io.open_frames`).
    selection : FrameSelection
        begin/end/stride/avg.
    chunk_frames : int, optional
        Output frames per chunk; default: as many as fit ``memory_budget``
        (rounded to whole HDF5 chunks where the file is chunked).
    sparse : bool, optional
        Yield :class:`SparseFrames` (``True``) or dense arrays (``False``);
        default the source's native representation.
    memory_budget : int
        Bytes of frame data a chunk may take while being read (approximate).
    allow_saturated : bool
        Skip the check for saturated unsigned values (``value == dtype max``).

    Yields
    ------
    FrameChunk

    Raises
    ------
    UsageError
        For invalid arguments or a selection that does not fit the source.
    FrameFormatError
        For unreadable data, NaN/inf or negative values, or saturated values
        (unless ``allow_saturated``); ``key`` is ``"frame <i>"`` (raw index).
    """
    if not isinstance(source, FrameSource):
        raise UsageError(f"expected a FrameSource, got {type(source).__name__}", argument="source")
    if not isinstance(selection, FrameSelection):
        raise UsageError(
            f"expected a FrameSelection, got {type(selection).__name__}", argument="selection"
        )
    if chunk_frames is not None and (
        isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1
    ):
        raise UsageError(
            f"must be a positive integer, got {chunk_frames!r}", argument="chunk_frames"
        )
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise UsageError(
            f"must be a positive integer, got {memory_budget!r}", argument="memory_budget"
        )
    n_out = selection.n_output(source.n_frames)
    as_sparse = source.is_sparse if sparse is None else bool(sparse)
    per_chunk = chunk_frames or _auto_chunk_frames(source, selection, as_sparse, memory_budget)
    begin, stride, avg = selection.begin, selection.stride, selection.avg
    height, width = source.frame_shape
    for j0 in range(0, n_out, per_chunk):
        j1 = min(n_out, j0 + per_chunk)
        raw_start = begin + j0 * avg * stride
        raw_stop = begin + (j1 * avg - 1) * stride + 1
        raw_frames = np.arange(raw_start, raw_stop, stride, dtype=np.int64)
        if source.is_sparse:
            frames = source.read_sparse(raw_start, raw_stop)
            if stride > 1:
                frames = frames.take(raw_frames - raw_start)
            _check_values(
                frames.counts,
                lambda: raw_frames[frames.frame_index()],  # noqa: B023 - called at once
                source,
                allow_saturated=allow_saturated,
            )
            if as_sparse:
                yield FrameChunk(j0, None, average_sparse(frames, avg) if avg > 1 else frames)
                continue
            block = frames.to_dense(source.dtype)
        else:
            block = source.read_dense_strided(raw_start, raw_stop, stride)
            _check_values(
                block.reshape(block.shape[0], -1),
                lambda: raw_frames,  # noqa: B023 - called at once
                source,
                allow_saturated=allow_saturated,
            )
        if avg > 1:
            block = block.reshape(j1 - j0, avg, height, width).mean(axis=1, dtype=np.float32)
        if as_sparse:
            yield FrameChunk(j0, None, dense_to_sparse(block, path=source.path))
        else:
            yield FrameChunk(j0, block, None)
