"""Correlate a raw file while the detector is still writing it.

:func:`follow_file` reads the frames as they are appended (see
:mod:`xpcs_kernel.live.growing`), feeds them to the streaming
:class:`~xpcs_kernel.multitau.MultiTauCorrelator` and the SAXS reductions, and
every ``update`` seconds replaces the result file atomically with the results so
far (a viewer-readable APS result file; its ``end_frame``, ``n_frames`` and
``parameters["follow"]`` say how many frames it covers). It ends on the
writer's done marker or after ``idle`` seconds without a frame, fits g2 and
writes the final result, equal to :func:`~xpcs_kernel.pipeline.correlate_file`
of the finished file.

Every ``checkpoint`` seconds the state is saved (:mod:`.checkpoint`); a follower
started again on the same file after a crash or a kill resumes from it, or
recomputes from the first frame when there is none.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel._version import __version__
from xpcs_kernel.errors import CorrelationError, FrameFormatError, UsageError
from xpcs_kernel.io import FrameSource, SparseFrames
from xpcs_kernel.io.chunks import _check_values as check_values
from xpcs_kernel.live.checkpoint import Checkpoint, checkpoint_path
from xpcs_kernel.live.growing import GrowingSource, open_growing
from xpcs_kernel.live.saxs_live import LiveSaxs
from xpcs_kernel.metadata import RawMetadata
from xpcs_kernel.multitau import MultiTauCorrelator, PixelBins
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline.fit import fit_summary
from xpcs_kernel.pipeline.summary import CorrelationSummary, sha256_file
from xpcs_kernel.qmap import QMap, read_qmap
from xpcs_kernel.result import ResultMetadata, write_result

__all__ = ["FollowConfig", "FollowUpdate", "follow_file"]

_CHUNK_BYTES = 64 << 20  # frames read and fed at once, at most


@dataclass(frozen=True)
class FollowConfig:
    """How to follow a growing file.

    Attributes
    ----------
    idle
        Seconds without a new frame after which the file is taken as complete.
    update
        Seconds between replacements of the result file with the results so far
        (stretched to 4x what one replacement takes, so writing stays under 1/4).
    done_marker
        Suffix of the file the writer creates when done (``RAW + suffix``);
        ``None``: only ``idle`` ends the follow.
    checkpoint
        Seconds between state checkpoints (0: at every update).
    poll
        Seconds between looks at the file when nothing new is there.
    checkpoint_path
        Where the state is kept (default ``.<result name>.follow.npz`` beside it).
    """

    idle: float = 10.0
    update: float = 2.0
    done_marker: str | None = ".done"
    checkpoint: float = 30.0
    poll: float = 0.1
    checkpoint_path: Path | None = None

    def __post_init__(self) -> None:
        for name in ("idle", "update", "checkpoint", "poll"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise UsageError(f"must be a number of seconds >= 0, got {value!r}", argument=name)
        if self.poll <= 0:
            raise UsageError("must be > 0", argument="poll")


@dataclass(frozen=True)
class FollowUpdate:
    """One result written: ``frames`` frames covered, at ``wall_time`` (``time.time()``)."""

    frames: int
    wall_time: float
    complete: bool
    resumed_from: int


def _check_options(opts: CorrelationOptions) -> None:
    if not opts.wants_multitau or opts.wants_twotime:
        raise UsageError("following a growing file computes multi-tau only", argument="mode")
    if (opts.begin, opts.end, opts.stride, opts.avg) != (0, None, 1, 1):
        raise UsageError(
            "following a growing file uses every frame (no begin/end/stride/avg)",
            argument="follow",
        )
    if opts.normalize_frame:
        raise UsageError("normalize_frame is not available while following", argument="follow")


def _open(raw: Path, opts: CorrelationOptions, qm: QMap, cfg: FollowConfig) -> GrowingSource:
    """Open the file once it is recognisable and holds a frame (or fail after ``idle``)."""
    deadline = time.monotonic() + cfg.idle
    while True:
        done = _marker(raw, cfg)
        try:
            source = open_growing(raw, dataset=opts.dataset, frame_shape=qm.shape)
            if source.poll(final=done) > 0:
                return source
            source.close()
        except FrameFormatError:
            if done or time.monotonic() >= deadline:
                raise
        if done or time.monotonic() >= deadline:
            why = "the writer's done marker is there" if done else f"none arrived in {cfg.idle} s"
            raise FrameFormatError(f"no whole frame to follow: {why}", path=raw)
        time.sleep(cfg.poll)


def _marker(raw: Path, cfg: FollowConfig) -> bool:
    return cfg.done_marker is not None and os.path.exists(str(raw) + cfg.done_marker)


class _Follower:
    def __init__(
        self,
        raw: Path,
        qm: QMap,
        qmap_file: Path | None,
        output: Path,
        opts: CorrelationOptions,
        cfg: FollowConfig,
        source: GrowingSource,
    ) -> None:
        qmap_name = str(qmap_file) if qmap_file else (qm.source or "<in-memory q-map>")
        self.qmap_file = qmap_file
        self.raw, self.qm, self.qmap_name, self.output = raw, qm, qmap_name, output
        self.opts, self.cfg, self.source = opts, cfg, source
        assert source.frame_shape is not None
        qm.check_frame_shape(source.frame_shape, frames_source=str(raw))
        meta = source.metadata()
        self.meta: RawMetadata = meta
        frame_time = opts.frame_time or meta.frame_time
        if frame_time is None:
            raise FrameFormatError(
                "frame time unknown: not in the file's metadata; pass frame_time "
                "(--frame-time SECONDS)",
                path=raw,
                key="/entry/instrument/detector_1/frame_time",
            )
        self.frame_time = float(frame_time)
        self.energy = meta.energy_kev or qm.energy
        if not (np.isfinite(self.energy) and self.energy > 0):
            raise FrameFormatError(
                "incident energy unknown: neither the raw file nor the q-map records it",
                path=raw,
                key="/entry/instrument/incident_beam/incident_energy",
                expected="a positive energy in keV",
            )
        self.bins = PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic)
        n_pixels = qm.shape[0] * qm.shape[1]
        self.chunk = opts.chunk_frames or max(1, _CHUNK_BYTES // (n_pixels * 4))
        first = source.read(0, 1)
        digest = hashlib.sha256(
            np.ascontiguousarray(first).tobytes()
            if isinstance(first, np.ndarray)
            else first.pixels.tobytes() + np.asarray(first.counts).tobytes()
        ).hexdigest()
        self.ckpt = Checkpoint(
            cfg.checkpoint_path or checkpoint_path(output),
            {
                "raw": str(raw.resolve()),
                "qmap": qmap_name,
                "qmap_sha256": sha256_file(qmap_file) if qmap_file else None,
                "qmap_shape": list(qm.shape),
                "n_correlated": int(qm.pixel_index.size),
                "options": opts.to_dict(),
                "first_frame_sha256": digest,
                "version": __version__,
            },
        )
        resumed = self.ckpt.load(qm)
        if resumed is not None and resumed.frames > source.poll(final=True):
            resumed = None  # more frames than the file holds: another file of that name
        if resumed is not None:
            self.corr, self.saxs, self.done = resumed.correlator, resumed.saxs, resumed.frames
        else:
            self.corr = MultiTauCorrelator(n_pixels, pixel_index=qm.pixel_index)
            self.saxs = LiveSaxs(qm)
            self.done = 0
        self.resumed_from = self.done
        self.start_time = meta.start_time or datetime.now(UTC).isoformat(timespec="seconds")

    def feed_to(self, available: int, *, until: float = float("inf")) -> int:
        """Read and feed frames up to ``available`` (or until the monotonic time
        ``until``, so that a writer faster than the follower still sees updates)."""
        fed = 0
        while self.done < available and time.monotonic() < until:
            stop = min(available, self.done + self.chunk)
            frames = self.source.read(self.done, stop)
            self._check(frames, self.done, stop)
            if isinstance(frames, np.ndarray):
                self.saxs.feed(frames)
                self.corr.feed(frames)
            else:
                self.saxs.feed_sparse(frames)
                self.corr.feed_sparse(frames.n_frames, frames.indptr, frames.pixels, frames.counts)
            fed += stop - self.done
            self.done = stop
        return fed

    def _check(self, frames: NDArray[Any] | SparseFrames, start: int, stop: int) -> None:
        """NaN, negative or saturated values fail as in the offline run (same check)."""
        if isinstance(frames, np.ndarray):
            values = frames.reshape(stop - start, -1)
            per_row = np.ones(stop - start, dtype=np.int64)
        else:
            values = np.asarray(frames.counts)
            per_row = np.diff(frames.indptr)

        def frame_of() -> NDArray[np.int64]:
            return start + np.repeat(np.arange(stop - start, dtype=np.int64), per_row)

        check_values(
            values,
            frame_of,
            cast(FrameSource, self.source),  # its path and dtype are all the check reads
            allow_saturated=self.opts.allow_saturated,
        )

    def metadata(
        self,
        *,
        complete: bool,
        inputs: tuple[tuple[str, str, int], ...],
        timings: dict[str, float],
    ) -> ResultMetadata:
        params = self.opts.to_dict()
        params["follow"] = {
            "frames": self.done,
            "complete": complete,
            "resumed_from": self.resumed_from,
        }
        return ResultMetadata(
            frame_time=self.frame_time,
            count_time=self.meta.count_time or self.frame_time,
            incident_energy_kev=float(self.energy),
            start_time=self.start_time,
            begin=0,
            end=self.done,
            stride=1,
            avg=1,
            normalize_frame=False,
            input_files=inputs,
            software_version=__version__,
            parameters=params,
            timings=timings,
        )

    def write_partial(self) -> None:
        meta = self.metadata(complete=False, inputs=(), timings={})
        write_result(
            self.output,
            qmap=self.qm,
            saxs=self.saxs.result(),
            metadata=meta,
            multitau=self.corr.g2(self.bins),
        )


def follow_file(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str] | QMap,
    output: str | os.PathLike[str],
    *,
    options: CorrelationOptions | None = None,
    config: FollowConfig | None = None,
    on_update: Callable[[FollowUpdate], None] | None = None,
) -> CorrelationSummary:
    """Correlate ``raw`` while it grows; return the summary of the final result.

    Parameters
    ----------
    raw
        HDF5 (SWMR or closed), IMM or Rigaku ``.bin`` file, possibly still being
        written; it may not exist yet when the follow starts (it must appear,
        with a frame, within ``config.idle`` seconds).
    qmap
        A q-map file or :class:`QMap`.
    output
        The result file, replaced atomically at every update and at the end.
    options
        Multi-tau options (:class:`CorrelationOptions`; every frame is used).
    config
        Timing of the follow (:class:`FollowConfig`).
    on_update
        Called after every result written, partial or final.

    Returns
    -------
    CorrelationSummary
        As :func:`~xpcs_kernel.pipeline.correlate_file` returns.

    Raises
    ------
    UsageError
        For options a follow cannot honour (two-time, frame selection, normalization).
    FrameFormatError
        If no frame arrives within ``idle`` seconds, or the file is invalid.
    """
    opts = options or CorrelationOptions()
    cfg = config or FollowConfig()
    _check_options(opts)
    t_start = time.perf_counter()
    raw_path, out_path = Path(raw), Path(output)
    qm = qmap if isinstance(qmap, QMap) else read_qmap(qmap)
    with _open(raw_path, opts, qm, cfg) as source:
        qmap_file = None if isinstance(qmap, QMap) else Path(qmap)
        f = _Follower(raw_path, qm, qmap_file, out_path, opts, cfg, source)
        last_frame = last_ckpt = time.monotonic()
        last_update = float("-inf")  # the first frames are shown at once
        gap = cfg.update
        written = -1
        budget = max(cfg.update, 0.5)  # feeding pauses this often for an update
        while True:
            # the writer is done once its marker exists or no frame came for `idle` s
            ended = _marker(raw_path, cfg) or time.monotonic() - last_frame >= cfg.idle
            available = source.poll(final=ended)  # when ended, the last frame counts
            fed = f.feed_to(available, until=time.monotonic() + budget)
            now = time.monotonic()
            if fed and not ended:
                last_frame = now
            if ended and f.done >= available:
                break
            if f.done >= 2 and f.done != written and now - last_update >= gap:
                f.write_partial()
                written, last_update = f.done, time.monotonic()
                gap = max(cfg.update, 4.0 * (last_update - now))
                if on_update is not None:
                    on_update(FollowUpdate(f.done, time.time(), False, f.resumed_from))
                if now - last_ckpt >= cfg.checkpoint:
                    f.ckpt.save(f.done, f.corr, f.saxs)
                    last_ckpt = time.monotonic()
            if not fed:
                time.sleep(cfg.poll)
        summary = _finish(f, t_start)
    f.ckpt.remove()
    if on_update is not None:
        on_update(FollowUpdate(f.done, time.time(), True, f.resumed_from))
    return summary


def _finish(f: _Follower, t_start: float) -> CorrelationSummary:
    """Fit and write the final result of the ``f.done`` frames."""
    if f.done < 2:
        raise CorrelationError(f"{f.raw}: {f.done} frame(s) arrived; multi-tau needs at least 2")
    t = time.perf_counter()
    g2 = f.corr.g2(f.bins)
    saxs = f.saxs.result()
    fit_rows: list[dict[str, Any]] = []
    diffusion: dict[str, float] | None = None
    fit_arrays = None
    if f.opts.fit:
        fit_rows, diffusion, fit_arrays = fit_summary(
            g2, f.qm, g2.delays.astype(np.float64) * f.frame_time
        )
    inputs = [(str(f.raw), sha256_file(f.raw), f.raw.stat().st_size)]
    if f.qmap_file is not None:
        inputs.append((str(f.qmap_file), sha256_file(f.qmap_file), f.qmap_file.stat().st_size))
    timings = {"final": time.perf_counter() - t, "total": time.perf_counter() - t_start}
    meta = f.metadata(complete=True, inputs=tuple(inputs), timings=timings)
    write_result(f.output, qmap=f.qm, saxs=saxs, metadata=meta, multitau=g2, fit=fit_arrays)
    return CorrelationSummary(
        output=str(f.output),
        raw=str(f.raw),
        qmap=f.qmap_name,
        mode=f.opts.mode,
        n_frames=f.done,
        frame_shape=f.qm.shape,
        n_pixels=int(f.qm.pixel_index.size),
        n_dynamic=f.qm.n_dynamic,
        n_static=f.qm.n_static,
        path="sparse" if f.source.is_sparse else "dense",
        occupancy=float("nan"),
        frame_time=f.frame_time,
        timings={**timings, "total": time.perf_counter() - t_start},
        fit=fit_rows,
        diffusion=diffusion,
    )
