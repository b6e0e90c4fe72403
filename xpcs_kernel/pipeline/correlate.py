"""One correlation run on files: read raw frames and a q-map, correlate,
reduce, fit and write the APS result file.

This is what the Globus Compute function calls on an endpoint, what
``xpcs-flows correlate`` and ``python -m xpcs_kernel correlate`` run, and
what the local engine runs. Frames stream through in chunks (the next chunk
is read in a background thread while the current one is correlated), so
memory does not grow with the number of frames.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from xpcs_kernel._version import __version__
from xpcs_kernel.errors import CorrelationError, FrameFormatError
from xpcs_kernel.fit import fit_diffusion, fit_g2
from xpcs_kernel.io import FrameSelection, detect_format, iter_chunks, open_frames
from xpcs_kernel.metadata import RawMetadata, read_raw_metadata
from xpcs_kernel.multitau.correlator import G2Result, PixelBins, stream_memory_budget
from xpcs_kernel.multitau.sink import MultiTauSink
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline.chunks import (
    StageTimer,
    choose_sparse,
    normalize_chunk,
    prefetch,
    sx_feed,
)
from xpcs_kernel.qmap.model import QMap, read_qmap
from xpcs_kernel.result.writer import ResultMetadata, write_result
from xpcs_kernel.saxs.profile import SaxsAccumulator
from xpcs_kernel.twotime.correlator import TwoTimeCorrelator, TwoTimeResult

__all__ = ["CorrelationSummary", "ProgressCallback", "correlate_file", "sha256_file"]

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(frames_done, frames_total)`` after every chunk."""


@dataclass(frozen=True)
class CorrelationSummary:
    """What a run did, small enough for a flow's run state (JSON-friendly)."""

    output: str
    raw: str
    qmap: str
    mode: str
    n_frames: int
    frame_shape: tuple[int, int]
    n_pixels: int
    n_dynamic: int
    n_static: int
    path: str
    occupancy: float
    frame_time: float
    timings: dict[str, float]
    fit: list[dict[str, Any]] = field(default_factory=list)
    diffusion: dict[str, float] | None = None
    software_version: str = __version__

    @property
    def correlation_rate(self) -> float:
        """Pixel-frames per second of the correlation alone."""
        seconds = self.timings.get("correlate", 0.0)
        return self.n_pixels * self.n_frames / seconds if seconds > 0 else float("nan")

    @property
    def overall_rate(self) -> float:
        """Pixel-frames per second of the whole run (read, correlate, write)."""
        seconds = self.timings.get("total", 0.0)
        return self.n_pixels * self.n_frames / seconds if seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "raw": self.raw,
            "qmap": self.qmap,
            "mode": self.mode,
            "n_frames": self.n_frames,
            "frame_shape": list(self.frame_shape),
            "n_pixels": self.n_pixels,
            "n_dynamic": self.n_dynamic,
            "n_static": self.n_static,
            "path": self.path,
            "occupancy": self.occupancy,
            "frame_time": self.frame_time,
            "timings": dict(self.timings),
            "correlation_rate": self.correlation_rate,
            "overall_rate": self.overall_rate,
            "fit": list(self.fit),
            "diffusion": self.diffusion,
            "software_version": self.software_version,
        }


def sha256_file(path: str | os.PathLike[str], *, block: int = 8 * 2**20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _fit_summary(
    g2: G2Result, qmap: QMap, delay_seconds: np.ndarray[Any, Any]
) -> tuple[list[dict[str, Any]], dict[str, float] | None, dict[str, np.ndarray[Any, Any]]]:
    fit = fit_g2(delay_seconds, g2.g2, g2.g2_err)
    rows: list[dict[str, Any]] = []
    for d in range(qmap.n_dynamic):
        rows.append(
            {
                "bin": d,
                "q": float(qmap.dynamic_q[d]),
                "phi": float(qmap.dynamic_phi[d]),
                "beta": float(fit.beta[d]),
                "gamma": float(fit.gamma[d]),
                "gamma_err": float(fit.gamma_err[d]),
                "tau_c": float(1.0 / fit.gamma[d]) if fit.gamma[d] > 0 else float("inf"),
                "baseline": float(fit.baseline[d]),
                "success": bool(fit.success[d]),
            }
        )
    diffusion: dict[str, float] | None = None
    ok = fit.success & np.isfinite(fit.gamma) & (fit.gamma > 0)
    if np.count_nonzero(ok) >= 2:
        dfit = fit_diffusion(qmap.dynamic_q[ok], fit.gamma[ok], fit.gamma_err[ok])
        diffusion = {
            "D": float(dfit.D),
            "D_err": float(dfit.D_err),
            "intercept": float(dfit.intercept),
        }
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "baseline": fit.baseline,
        "beta": fit.beta,
        "gamma": fit.gamma,
        "alpha": fit.alpha,
        "baseline_err": fit.baseline_err,
        "beta_err": fit.beta_err,
        "gamma_err": fit.gamma_err,
        "alpha_err": fit.alpha_err,
        "success": fit.success.astype(np.uint8),
        "q": qmap.dynamic_q,
    }
    return rows, diffusion, arrays


def correlate_file(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str] | QMap,
    output: str | os.PathLike[str],
    *,
    options: CorrelationOptions | None = None,
    progress: ProgressCallback | None = None,
) -> CorrelationSummary:
    """Correlate one raw dataset and write the APS result file.

    Parameters
    ----------
    raw
        Raw frames: HDF5 (plain or compressed), IMM or Rigaku ``.bin``.
    qmap
        A q-map file (pySimpleMask or legacy layout) or a :class:`QMap`.
    output
        The result file. It appears atomically: written under a temporary
        name and renamed when complete.
    options
        What to compute (:class:`CorrelationOptions`).
    progress
        Called after every chunk with ``(frames_done, frames_total)``.

    Returns
    -------
    CorrelationSummary
        Paths, sizes, timings, throughput and fitted rates.
    """
    opts = options or CorrelationOptions()
    if opts.backend == "torch":  # the GPU backend has its own driver (imports torch)
        from xpcs_kernel.torch_backend.driver import correlate_file_torch

        return correlate_file_torch(raw, qmap, output, options=opts, progress=progress)
    t_start = time.perf_counter()
    timer = StageTimer()
    raw_path = Path(raw)
    qm = qmap if isinstance(qmap, QMap) else read_qmap(qmap)
    qmap_name = str(qmap) if not isinstance(qmap, QMap) else (qm.source or "<in-memory q-map>")

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xpcs-hash") as hasher:
        raw_hash = hasher.submit(sha256_file, raw_path)
        # Rigaku files do not record the frame shape: it comes from the q-map.
        rigaku_shape = qm.shape if detect_format(raw_path) == "rigaku" else None
        with open_frames(raw_path, dataset=opts.dataset, frame_shape=rigaku_shape) as source:
            qm.check_frame_shape(source.frame_shape, frames_source=str(raw_path))
            meta = read_raw_metadata(raw_path) if source.path is not None else RawMetadata()
            frame_time = opts.frame_time or meta.frame_time
            if frame_time is None:
                raise FrameFormatError(
                    "frame time unknown: not in the file's metadata; pass frame_time "
                    "(--frame-time SECONDS)",
                    path=raw_path,
                    key="/entry/instrument/detector_1/frame_time",
                )
            energy_kev = meta.energy_kev or qm.energy
            if not (np.isfinite(energy_kev) and energy_kev > 0):
                raise FrameFormatError(
                    "incident energy unknown: neither the raw file nor the q-map records it",
                    path=raw_path,
                    key="/entry/instrument/incident_beam/incident_energy",
                    expected="a positive energy in keV",
                )
            selection = FrameSelection(
                begin=opts.begin, end=opts.end, stride=opts.stride, avg=opts.avg
            )
            n_out = selection.n_output(source.n_frames)
            if opts.wants_multitau and n_out < 2:
                raise CorrelationError(
                    f"{raw_path}: {n_out} frame(s) selected; multi-tau needs at least 2 "
                    "(the first delay is one frame)"
                )
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
            sx = SaxsAccumulator(qm, n_frames=n_out)
            events = 0
            done = 0
            try:
                chunks = iter_chunks(
                    source,
                    selection,
                    chunk_frames=opts.chunk_frames,
                    sparse=use_sparse,
                    # frames in flight sized to what the correlator state leaves
                    memory_budget=stream_memory_budget(pixel_index.size, n_out),
                    allow_saturated=opts.allow_saturated,
                )
                t = time.perf_counter()
                for chunk in prefetch(chunks):
                    t = timer.add("read", t)
                    sx_feed(sx, chunk)
                    if opts.normalize_frame:
                        chunk = normalize_chunk(chunk, pixel_index)
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
                        progress(done, n_out)
                t = time.perf_counter()
                g2 = (
                    mt.g2(PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic))
                    if mt is not None
                    else None
                )
                t = timer.add("correlate", t)
                two: TwoTimeResult | None = tt.result() if tt is not None else None
                t = timer.add("twotime", t)
            finally:
                if tt is not None:
                    tt.close()
            saxs = sx.result()
        if done != n_out:
            raise CorrelationError(f"{raw_path}: read {done} frames, expected {n_out}")
        occupancy = events / (done * n_pixels) if use_sparse and done else float("nan")

        delay_seconds_factor = frame_time * opts.stride * opts.avg
        fit_rows: list[dict[str, Any]] = []
        diffusion: dict[str, float] | None = None
        fit_arrays: dict[str, np.ndarray[Any, Any]] | None = None
        if g2 is not None and opts.fit:
            t = time.perf_counter()
            fit_rows, diffusion, fit_arrays = _fit_summary(
                g2, qm, g2.delays.astype(np.float64) * delay_seconds_factor
            )
            timer.add("fit", t)

        t = time.perf_counter()
        inputs = [(str(raw_path), raw_hash.result(), raw_path.stat().st_size)]
        if not isinstance(qmap, QMap):
            inputs.append((str(qmap), sha256_file(qmap), Path(qmap).stat().st_size))
        timings = dict(timer.totals)
        metadata = ResultMetadata(
            frame_time=frame_time,
            count_time=meta.count_time or frame_time,
            incident_energy_kev=float(energy_kev),
            start_time=meta.start_time or datetime.now(UTC).isoformat(timespec="seconds"),
            begin=opts.begin,
            end=opts.end if opts.end is not None else source.n_frames,
            stride=opts.stride,
            avg=opts.avg,
            normalize_frame=opts.normalize_frame,
            input_files=tuple(inputs),
            software_version=__version__,
            parameters=opts.to_dict(),
            timings=timings,
        )
        write_result(
            output, qmap=qm, saxs=saxs, metadata=metadata, multitau=g2, twotime=two, fit=fit_arrays
        )
        timer.add("write", t)

    timings = dict(timer.totals)
    timings["total"] = time.perf_counter() - t_start
    return CorrelationSummary(
        output=str(output),
        raw=str(raw_path),
        qmap=qmap_name,
        mode=opts.mode,
        n_frames=n_out,
        frame_shape=qm.shape,
        n_pixels=int(pixel_index.size),
        n_dynamic=qm.n_dynamic,
        n_static=qm.n_static,
        path="sparse" if use_sparse else "dense",
        occupancy=occupancy,
        frame_time=frame_time,
        timings=timings,
        fit=fit_rows,
        diffusion=diffusion,
    )
