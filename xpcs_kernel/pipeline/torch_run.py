"""One ``correlate`` run on the torch backend: read, stream to the device, correlate, write.

:func:`xpcs_kernel.pipeline.correlate_file` hands over here when the options
say ``backend="torch"``. The chunks come from the same readers (read ahead in
a thread), go to the device through :class:`~.transfer.Stager` (pinned
buffers, copies overlapped with compute on a GPU) and feed the torch SAXS,
multi-tau and two-time correlators; the result file, its metadata and the
returned :class:`~xpcs_kernel.pipeline.CorrelationSummary` are those of the
numba backend.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from pathlib import Path

from xpcs_kernel.errors import CorrelationError, FrameFormatError
from xpcs_kernel.io import FrameChunk, detect_format, iter_chunks, open_frames
from xpcs_kernel.multitau import PixelBins
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline.chunks import StageTimer, choose_sparse, prefetch
from xpcs_kernel.pipeline.inputs import check_run_inputs
from xpcs_kernel.pipeline.run import (
    ProgressCallback,
    RunRecord,
    StreamedRun,
    finish_run,
)
from xpcs_kernel.pipeline.summary import CorrelationSummary, sha256_file
from xpcs_kernel.qmap import QMap, read_qmap
from xpcs_kernel.torch_backend.device import (
    DeviceInfo,
    import_torch,
    index_tensor,
    resolve_device,
)
from xpcs_kernel.torch_backend.multitau import TorchMultiTau
from xpcs_kernel.torch_backend.saxs import TorchSaxs
from xpcs_kernel.torch_backend.transfer import Stager
from xpcs_kernel.torch_backend.twotime import TorchTwoTime

__all__ = ["correlate_file_torch", "frames_budget"]

_MAX_CHUNK_BYTES = 1 << 30  # frames read per chunk at most (host memory)


def frames_budget(info: DeviceInfo, state_bytes: int) -> int:
    """Host bytes per chunk read: a quarter of what the device budget leaves, within bounds."""
    spare = max(info.budget - state_bytes, 0) // 4
    return int(min(_MAX_CHUNK_BYTES, max(64 << 20, spare)))


class _Correlators:
    """The torch accumulators of one run, fed chunk by chunk on the device."""

    def __init__(self, qm: QMap, opts: CorrelationOptions, info: DeviceInfo, n_out: int) -> None:
        self.torch = import_torch()
        self.info = info
        self.qm = qm
        self.opts = opts
        self.n_pixels = qm.shape[0] * qm.shape[1]
        self.pixel_index = index_tensor(qm.pixel_index, info.device)
        self.sx = TorchSaxs(qm, n_frames=n_out, device=info.device)
        self.mt = (
            TorchMultiTau(qm.pixel_index.size, device=info.device) if opts.wants_multitau else None
        )
        self.tt = (
            TorchTwoTime(
                qm.dynamic_of_static[qm.static_index],
                n_dynamic=qm.n_dynamic,
                device=info.device,
                budget=info.budget // 2,
                n_frames=n_out,
                bins=opts.twotime_bins,
                static_index=qm.static_index,
            )
            if opts.wants_twotime
            else None
        )
        self.stager = Stager(info)

    def feed(self, chunk: FrameChunk, timer: StageTimer) -> int:
        """Move ``chunk`` to the device and feed it everywhere; returns its events (sparse)."""
        torch = self.torch
        t = time.perf_counter()
        events = 0
        if chunk.sparse is not None:
            sp = chunk.sparse
            events = int(sp.indptr[-1] - sp.indptr[0])
            frames = self.stager.sparse(
                sp.n_frames, self.n_pixels, sp.indptr, sp.pixels, sp.counts
            )
        else:
            assert chunk.dense is not None
            frames = self.stager.dense(chunk.dense).reshape(chunk.n_frames, self.n_pixels)
        t = timer.add("transfer", t)
        self.sx.feed(frames)
        t = timer.add("saxs", t)
        x = frames.index_select(1, self.pixel_index).to(torch.float32)
        if self.opts.normalize_frame:
            means = x.sum(dim=1, dtype=torch.float64) / x.shape[1]
            bad = torch.nonzero(means <= 0)
            if bad.numel():
                frame = int(bad[0, 0]) + chunk.start
                raise FrameFormatError(
                    "cannot normalize a frame whose mean intensity is 0", key=f"frame {frame}"
                )
            x = x / means.to(torch.float32)[:, None]
        if self.mt is not None:
            self.mt.feed(x)
        t = timer.add("correlate", t)
        if self.tt is not None:
            self.tt.feed(x)
        timer.add("twotime", t)
        return events


def _check_budget(info: DeviceInfo, qm: QMap, opts: CorrelationOptions, n_out: int) -> None:
    """A :class:`CorrelationError` when the multi-tau state would not fit the device budget.

    (The two-time series go to host memory when they do not fit; the frames
    in flight are sized from what is left.)
    """
    need = TorchMultiTau.state_nbytes(qm.pixel_index.size, n_out) if opts.wants_multitau else 0
    if need > info.budget:
        raise CorrelationError(
            f"the multi-tau state of {qm.pixel_index.size} pixels x {n_out} frames needs "
            f"{need / 2**20:.0f} MiB, more than the {info.budget / 2**20:.0f} MiB budget on "
            f"{info.name} ({info.device}); select fewer frames or use backend='numba'"
        )


def correlate_file_torch(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str] | QMap,
    output: str | os.PathLike[str],
    *,
    options: CorrelationOptions,
    progress: ProgressCallback | None = None,
    raw_sha256: concurrent.futures.Future[str] | None = None,
) -> CorrelationSummary:
    """:func:`xpcs_kernel.pipeline.correlate_file` on the torch backend (same arguments)."""
    opts = options
    t_start = time.perf_counter()
    timer = StageTimer()
    info = resolve_device(opts.device)
    info.reset_peak()
    raw_path = Path(raw)
    qm = qmap if isinstance(qmap, QMap) else read_qmap(qmap)
    qmap_name = str(qmap) if not isinstance(qmap, QMap) else (qm.source or "<in-memory q-map>")
    rigaku_shape = qm.shape if detect_format(raw_path) == "rigaku" else None
    with open_frames(raw_path, dataset=opts.dataset, frame_shape=rigaku_shape) as source:
        checked = check_run_inputs(raw_path, source, qm, opts)
        meta, frame_time, energy_kev = checked.meta, checked.frame_time, checked.energy_kev
        selection, n_out = checked.selection, checked.n_out
        use_sparse = choose_sparse(source, selection, opts.path)
        _check_budget(info, qm, opts, n_out)
        corr = _Correlators(qm, opts, info, n_out)
        chunks = iter_chunks(
            source,
            selection,
            chunk_frames=opts.chunk_frames,
            sparse=use_sparse,
            memory_budget=frames_budget(
                info, TorchMultiTau.state_nbytes(qm.pixel_index.size, n_out)
            ),
            allow_saturated=opts.allow_saturated,
        )
        events = done = 0
        t = time.perf_counter()
        for chunk in prefetch(chunks):
            t = timer.add("read", t)
            events += corr.feed(chunk, timer)
            done += chunk.n_frames
            if progress is not None:
                progress(done, n_out)
            t = time.perf_counter()
        if done != n_out:
            raise CorrelationError(f"{raw_path}: read {done} frames, expected {n_out}")
        t = time.perf_counter()
        bins = PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic)
        g2 = corr.mt.g2(bins) if corr.mt is not None else None
        t = timer.add("correlate", t)
        two = corr.tt.result() if corr.tt is not None else None
        t = timer.add("twotime", t)
        saxs = corr.sx.result()
        timer.add("saxs", t)
    raw_hash = raw_sha256
    if raw_hash is None:
        raw_hash = concurrent.futures.Future()
        raw_hash.set_result(sha256_file(raw_path))
    record = RunRecord(
        options=opts,
        raw_path=raw_path,
        qmap=qm,
        qmap_file=None if isinstance(qmap, QMap) else Path(qmap),
        qmap_name=qmap_name,
        source=source,
        meta=meta,
        frame_time=frame_time,
        energy_kev=energy_kev,
        selection=selection,
        n_out=n_out,
        n_pixels=qm.shape[0] * qm.shape[1],
        use_sparse=use_sparse,
        timer=timer,
        raw_hash=raw_hash,
    )
    streamed = StreamedRun(g2=g2, twotime=two, saxs=saxs, frames_done=done, events=events)
    return finish_run(record, streamed, output, hash_file=sha256_file, t_start=t_start)
