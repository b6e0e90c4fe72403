"""The three steps of :func:`xpcs_kernel.pipeline.correlate_file`.

* :func:`prepare_run`: open the frames and the q-map, check them against
  each other, read the metadata, choose the dense or sparse path and build the
  correlators and the SAXS accumulator;
* :func:`stream_run`: the reader thread reads, decompresses and checks up to
  :data:`READ_AHEAD` chunks ahead while the main thread takes each chunk
  once through SAXS (and normalisation) and the correlators; the kernels are
  compiled (or loaded from numba's cache) while the first chunks are read,
  and timed apart as ``compile``;
* :func:`finish_run`: fits, the result file (written atomically) and the
  :class:`~xpcs_kernel.pipeline.summary.CorrelationSummary`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from xpcs_kernel._version import __version__
from xpcs_kernel.digest import start_in_thread
from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.io import (
    FrameChunk,
    FrameSelection,
    FrameSource,
    detect_format,
    iter_chunks,
    open_frames,
)
from xpcs_kernel.metadata import RawMetadata
from xpcs_kernel.multitau import G2Result, PixelBins, stream_memory_budget
from xpcs_kernel.multitau.sink import MultiTauSink
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline.chunks import StageTimer, choose_sparse, normalize_chunk, sx_feed
from xpcs_kernel.pipeline.fit import fit_summary
from xpcs_kernel.pipeline.inputs import check_run_inputs
from xpcs_kernel.pipeline.summary import CorrelationSummary
from xpcs_kernel.qmap import QMap, read_qmap
from xpcs_kernel.result import ResultMetadata, write_result
from xpcs_kernel.saxs import SaxsAccumulator, SaxsResult
from xpcs_kernel.twotime import TwoTimeCorrelator, TwoTimeResult
from xpcs_kernel.warmup.kernels import warm_for_run
from xpcs_kernel.warmup.startup import start_numba

__all__ = [
    "READ_AHEAD",
    "PreparedRun",
    "RunRecord",
    "StreamedRun",
    "finish_run",
    "prepare_run",
    "stream_run",
]

ProgressCallback = Callable[[int, int], None]


@dataclass
class RunRecord:
    """What :func:`finish_run` needs of a run, whichever backend streamed it."""

    options: CorrelationOptions
    raw_path: Path
    qmap: QMap
    qmap_file: Path | None
    qmap_name: str
    source: FrameSource
    meta: RawMetadata
    frame_time: float
    energy_kev: float
    selection: FrameSelection
    n_out: int
    n_pixels: int
    use_sparse: bool
    timer: StageTimer
    raw_hash: concurrent.futures.Future[str]


@dataclass
class PreparedRun(RunRecord):
    """A :class:`RunRecord` with the numba accumulators, built by :func:`prepare_run`."""

    multitau: MultiTauSink | None
    twotime: TwoTimeCorrelator | None
    saxs: SaxsAccumulator


@dataclass
class StreamedRun:
    """What :func:`stream_run` produced."""

    g2: G2Result | None
    twotime: TwoTimeResult | None
    saxs: SaxsResult
    frames_done: int
    events: int


def prepare_run(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str] | QMap,
    options: CorrelationOptions,
    *,
    hasher: concurrent.futures.Executor,
    stack: contextlib.ExitStack,
    hash_file: Callable[[Path], str],
    raw_sha256: concurrent.futures.Future[str] | None = None,
) -> PreparedRun:
    """Open and check the inputs; build the accumulators (the source closes with ``stack``).

    The raw file is hashed on ``hasher`` unless ``raw_sha256`` already is.
    """
    opts = options
    timer = StageTimer()
    t = time.perf_counter()
    start_numba()  # before any kernel (opening a Rigaku file runs one): lean in a command
    timer.add("compile", t)
    raw_path = Path(raw)
    qm = qmap if isinstance(qmap, QMap) else read_qmap(qmap)
    qmap_file = None if isinstance(qmap, QMap) else Path(qmap)
    qmap_name = str(qmap) if qmap_file is not None else (qm.source or "<in-memory q-map>")
    raw_hash = raw_sha256 if raw_sha256 is not None else hasher.submit(hash_file, raw_path)
    # Rigaku files do not record the frame shape: it comes from the q-map.
    rigaku_shape = qm.shape if detect_format(raw_path) == "rigaku" else None
    source = stack.enter_context(
        open_frames(raw_path, dataset=opts.dataset, frame_shape=rigaku_shape)
    )
    checked = check_run_inputs(raw_path, source, qm, opts)
    meta, frame_time, energy_kev = checked.meta, checked.frame_time, checked.energy_kev
    selection, n_out = checked.selection, checked.n_out
    n_pixels = source.frame_shape[0] * source.frame_shape[1]
    pixel_index = qm.pixel_index
    use_sparse = choose_sparse(source, selection, opts.path)
    mt = (
        MultiTauSink(n_pixels, pixel_index=pixel_index, n_frames=n_out)
        if opts.wants_multitau
        else None
    )
    tt = (
        TwoTimeCorrelator(
            n_pixels,
            pixel_index=pixel_index,
            dynamic_index=qm.dynamic_of_static[qm.static_index],
            n_dynamic=qm.n_dynamic,
            bins=opts.twotime_bins,
            # smooth by the static bin's time mean: per-pixel means bias C low
            static_index=qm.static_index,
        )
        if opts.wants_twotime
        else None
    )
    if tt is not None:
        stack.callback(tt.close)
    return PreparedRun(
        options=opts,
        raw_path=raw_path,
        qmap=qm,
        qmap_file=qmap_file,
        qmap_name=qmap_name,
        source=source,
        meta=meta,
        frame_time=float(frame_time),
        energy_kev=float(energy_kev),
        selection=selection,
        n_out=n_out,
        n_pixels=n_pixels,
        use_sparse=use_sparse,
        timer=timer,
        raw_hash=raw_hash,
        multitau=mt,
        twotime=tt,
        saxs=SaxsAccumulator(qm, n_frames=n_out),
    )


def kernel_dtype(run: PreparedRun) -> np.dtype[Any]:
    """The dtype of the frames the kernels will see (averaged or normalised: float32)."""
    if run.options.avg > 1 or run.options.normalize_frame:
        return np.dtype(np.float32)
    return np.dtype(run.source.dtype)


READ_AHEAD = 2
"""Chunks the reader thread reads ahead of the one being correlated.

The reader only reads, decompresses and checks; SAXS and the correlators run
in the correlating thread, which balances the two threads better than SAXS in
the reader did, and two chunks ahead keep the correlation from waiting, above
all while the kernels load (the first chunks are read meanwhile). 2-core VM,
2026-12-08, whole command, old and new code alternating (medians): uint16 LZ4
256x256 x 2000 0.82 -> 0.77 s, 256x320 x 8000 1.82 -> 1.64 s, bitshuffle 1 Mpx x
1000 3.16 -> 2.97 s (peak RSS 1097 -> 1215 MiB: one more chunk in flight).
"""


def _reader(run: PreparedRun) -> Iterator[FrameChunk]:
    """The selected frames in chunks, read, decompressed and checked."""
    return iter_chunks(
        run.source,
        run.selection,
        chunk_frames=run.options.chunk_frames,
        sparse=run.use_sparse,
        # frames in flight sized to what the correlator state leaves
        memory_budget=stream_memory_budget(run.qmap.pixel_index.size, run.n_out),
        allow_saturated=run.options.allow_saturated,
    )


class ReadAhead:
    """Iterate ``iterator`` with the next ``depth`` items produced in a thread, started at once.

    One worker thread calls ``next`` in order, so the items come in order; an
    exception raised by the iterator is raised by the ``__next__`` that would
    have returned its item.
    """

    def __init__(self, iterator: Iterator[Any], *, depth: int = 1) -> None:
        if depth < 1:
            raise UsageError(f"must be >= 1, got {depth}", argument="depth")
        self._it = iterator
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xpcs-read")
        self._sentinel = object()
        self._ahead: collections.deque[concurrent.futures.Future[Any]] = collections.deque(
            self._pool.submit(next, self._it, self._sentinel) for _ in range(depth)
        )

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> Any:
        if not self._ahead:
            raise StopIteration
        item = self._ahead.popleft().result()
        if item is self._sentinel:
            for future in self._ahead:  # reads past the end: nothing to wait for
                future.cancel()
            self._ahead.clear()
            raise StopIteration
        self._ahead.append(self._pool.submit(next, self._it, self._sentinel))
        return item

    def close(self) -> None:
        """Wait for the item in flight (it may hold the file) and stop the thread."""
        for future in self._ahead:
            future.cancel()
        self._pool.shutdown(wait=True)


def stream_run(run: PreparedRun, progress: ProgressCallback | None = None) -> StreamedRun:
    """Every selected frame once through SAXS and the correlators."""
    timer, mt, tt = run.timer, run.multitau, run.twotime
    events = 0
    done = 0
    reader = ReadAhead(_reader(run), depth=READ_AHEAD)  # read while the kernels load
    try:
        t = time.perf_counter()
        dtype = kernel_dtype(run)
        # fresh memory is paid for on first write: touch the state on the core
        # that is idle while the kernels load (the reader reads meanwhile)
        prefault = (
            start_in_thread(
                lambda: mt.prefault(dtype, events=run.use_sparse), name="xpcs-prefault"
            )
            if mt is not None
            else None
        )
        if dtype.kind in "uif":  # others are converted before the kernels
            warm_for_run(dtype, sink=mt, sparse=run.use_sparse, twotime=run.options.wants_twotime)
        if prefault is not None:
            prefault.result()  # done before the first chunk writes into the state
        t = timer.add("compile", t)
        for chunk in reader:
            t = timer.add("read", t)  # what the correlation waited for the reader
            sx_feed(run.saxs, chunk)  # one read, one decompression: SAXS takes the raw chunk
            if run.options.normalize_frame:
                chunk = normalize_chunk(chunk, run.qmap.pixel_index)
            t = timer.add("saxs", t)
            if chunk.sparse is not None:
                sp = chunk.sparse
                events += int(sp.indptr[-1] - sp.indptr[0])
                if mt is not None:
                    mt.feed_sparse(sp.n_frames, sp.indptr, sp.pixels, sp.counts)
                t = timer.add("correlate", t)
                if tt is not None:
                    tt.feed_sparse(sp.n_frames, sp.indptr, sp.pixels, sp.counts)
            else:
                assert chunk.dense is not None
                if mt is not None:
                    mt.feed(chunk.dense)
                t = timer.add("correlate", t)
                if tt is not None:
                    tt.feed(chunk.dense)
            t = timer.add("twotime", t)
            done += chunk.n_frames
            if progress is not None:
                progress(done, run.n_out)
    finally:
        reader.close()
    t = time.perf_counter()
    qm = run.qmap
    g2 = (
        mt.g2(PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic))
        if mt is not None
        else None
    )
    t = timer.add("correlate", t)
    two = tt.result() if tt is not None else None
    timer.add("twotime", t)
    saxs = run.saxs.result()
    if done != run.n_out:
        raise CorrelationError(f"{run.raw_path}: read {done} frames, expected {run.n_out}")
    return StreamedRun(g2=g2, twotime=two, saxs=saxs, frames_done=done, events=events)


def finish_run(
    run: RunRecord,
    streamed: StreamedRun,
    output: str | os.PathLike[str],
    *,
    hash_file: Callable[[Path], str],
    t_start: float,
) -> CorrelationSummary:
    """Fit, write the result file atomically, and summarise."""
    opts, timer, qm = run.options, run.timer, run.qmap
    done = streamed.frames_done
    occupancy = (
        streamed.events / (done * run.n_pixels) if run.use_sparse and done else float("nan")
    )
    fit_rows: list[dict[str, Any]] = []
    diffusion: dict[str, float] | None = None
    fit_arrays: dict[str, np.ndarray[Any, Any]] | None = None
    g2 = streamed.g2
    if g2 is not None and opts.fit:
        t = time.perf_counter()
        delay_seconds_factor = run.frame_time * opts.stride * opts.avg
        fit_rows, diffusion, fit_arrays = fit_summary(
            g2, qm, g2.delays.astype(np.float64) * delay_seconds_factor
        )
        timer.add("fit", t)

    t = time.perf_counter()
    inputs = [(str(run.raw_path), run.raw_hash.result(), run.raw_path.stat().st_size)]
    if run.qmap_file is not None:
        inputs.append((str(run.qmap_file), hash_file(run.qmap_file), run.qmap_file.stat().st_size))
    meta = run.meta
    metadata = ResultMetadata(
        frame_time=run.frame_time,
        count_time=meta.count_time or run.frame_time,
        incident_energy_kev=run.energy_kev,
        start_time=meta.start_time or datetime.now(UTC).isoformat(timespec="seconds"),
        begin=opts.begin,
        end=opts.end if opts.end is not None else run.source.n_frames,
        stride=opts.stride,
        avg=opts.avg,
        normalize_frame=opts.normalize_frame,
        input_files=tuple(inputs),
        software_version=__version__,
        parameters=opts.to_dict(),
        timings=dict(timer.totals),
    )
    write_result(
        output,
        qmap=qm,
        saxs=streamed.saxs,
        metadata=metadata,
        multitau=g2,
        twotime=streamed.twotime,
        fit=fit_arrays,
    )
    timer.add("write", t)
    timings = dict(timer.totals)
    timings["total"] = time.perf_counter() - t_start
    return CorrelationSummary(
        output=str(output),
        raw=str(run.raw_path),
        qmap=run.qmap_name,
        mode=opts.mode,
        n_frames=run.n_out,
        frame_shape=qm.shape,
        n_pixels=int(qm.pixel_index.size),
        n_dynamic=qm.n_dynamic,
        n_static=qm.n_static,
        path="sparse" if run.use_sparse else "dense",
        occupancy=occupancy,
        frame_time=run.frame_time,
        timings=timings,
        fit=fit_rows,
        diffusion=diffusion,
    )
