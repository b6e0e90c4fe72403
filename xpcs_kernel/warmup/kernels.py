"""Compile (or load from numba's on-disk cache) the kernels a run will call.

numba compiles a kernel for each argument type the first time it is called,
and caches the machine code on disk (``cache=True``; the directory is
``NUMBA_CACHE_DIR`` when set, else ``__pycache__`` beside the sources). A
fresh node or container therefore pays the compilation inside its first
correlation (14-50 s on a 2-core VM). :func:`warm_kernels` runs every kernel
of one run on a few tiny frames, so that

* a run reports the compilation apart from the correlation (the pipeline's
  ``compile`` timing: loading the cache, 0.1-0.3 s, or compiling);
* an install, a ``deploy`` or an endpoint's ``worker_init`` can compile once
  into a shared ``NUMBA_CACHE_DIR`` (``python -m xpcs_kernel warmup``) so that
  no user's run compiles.

The tiny inputs go through the same public entry points as a run (the
streaming :class:`~xpcs_kernel.multitau.MultiTauCorrelator`, the eager
:func:`~xpcs_kernel.multitau.multitau`, the SAXS accumulator, two-time), so
the kernels compiled are the ones a run with frames of ``dtype`` calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from xpcs_kernel.errors import UsageError

if TYPE_CHECKING:
    from xpcs_kernel.multitau.sink import MultiTauSink

__all__ = ["DETECTOR_DTYPES", "warm_for_run", "warm_kernels"]

#: frame dtypes detectors and our readers produce (averaged/normalised frames are float32)
DETECTOR_DTYPES: tuple[str, ...] = ("uint8", "uint16", "uint32", "float32")

_WARMED: set[tuple[str, bool, bool, bool, bool, bool]] = set()  # done in this process
_SHAPE = (8, 40)  # 320 pixels: two tiles of the dense kernel (one partial)
_FRAMES = 24


def _tiny_frames(dtype: np.dtype[Any]) -> NDArray[Any]:
    rng = np.random.default_rng(0)
    counts = rng.poisson(2.0, size=(_FRAMES, *_SHAPE)) + 1  # no zero frame
    return counts.astype(dtype)


def _tiny_qmap() -> Any:
    from xpcs_kernel.qmap import QMap

    h, w = _SHAPE
    mask = np.ones(_SHAPE, dtype=bool)
    mask[:, :3] = False  # a masked column: the gather of masked tiles
    static = (np.arange(h * w).reshape(_SHAPE) % 4).astype(np.int64) + 1
    dynamic = (static - 1) // 2 + 1
    return QMap(
        dynamic_roi_map=np.where(mask, dynamic, 0).astype(np.uint32),
        static_roi_map=np.where(mask, static, 0).astype(np.uint32),
        mask=mask,
        dynamic_q=np.array([0.01, 0.02]),
        dynamic_phi=np.zeros(2),
        static_q=np.array([0.005, 0.01, 0.015, 0.02]),
        static_phi=np.zeros(4),
        beam_center_x=0.0,
        beam_center_y=0.0,
        pixel_size=75e-6,
        energy=10.0,
        detector_distance=5.0,
    )


def _warm_one(
    dtype: np.dtype[Any],
    *,
    sparse: bool,
    twotime: bool,
    gathered: bool,
    streamed: bool,
    bright: bool,
    qm: Any,
) -> None:
    from xpcs_kernel.multitau import MultiTauCorrelator, PixelBins, multitau
    from xpcs_kernel.multitau.sink import MultiTauSink
    from xpcs_kernel.saxs import SaxsAccumulator

    frames = _tiny_frames(dtype)
    flat = frames.reshape(_FRAMES, -1)
    bins = PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic)
    sx = SaxsAccumulator(qm, n_frames=_FRAMES)
    sx.feed(frames)
    sx.result()
    if gathered:
        multitau(flat, bins, pixel_index=qm.pixel_index, path="dense")
        sink = MultiTauSink(flat.shape[1], pixel_index=qm.pixel_index, n_frames=_FRAMES)
        sink.feed(frames[: _FRAMES // 2])  # as the pipeline feeds it: (n, H, W) chunks
        sink.feed(frames[_FRAMES // 2 :])
        sink.g2(bins)
    if streamed:
        corr = MultiTauCorrelator(flat.shape[1], pixel_index=qm.pixel_index)
        corr.feed(flat[: _FRAMES // 2])
        corr.feed(flat[_FRAMES // 2 :])
        corr.g2(bins)
    if sparse:
        nz_frame, nz_pixel = np.nonzero(flat)
        indptr = np.zeros(_FRAMES + 1, dtype=np.int64)
        np.cumsum(np.bincount(nz_frame, minlength=_FRAMES), out=indptr[1:])
        pixels = nz_pixel.astype(np.int64)
        # the event readers (Rigaku, IMM) give uint32 counts; normalised events are float
        counts = flat[nz_frame, nz_pixel].astype(np.uint32 if dtype.kind in "ui" else dtype)
        sp = MultiTauCorrelator(flat.shape[1], pixel_index=qm.pixel_index)
        sp.feed_sparse(_FRAMES, indptr, pixels, counts)
        sp.g2(bins)
        if bright and counts.dtype.kind == "u":  # bright pixels: the stage's uint16 rows
            large = counts * counts.dtype.type(300)
            sp = MultiTauCorrelator(flat.shape[1], pixel_index=qm.pixel_index)
            sp.feed_sparse(_FRAMES, indptr, pixels, large)
            sp.g2(bins)
        sxs = SaxsAccumulator(qm, n_frames=_FRAMES)
        sxs.feed_sparse(_FRAMES, indptr, pixels, counts)
        _warm_event_readers(frames)
    if twotime:
        from xpcs_kernel.twotime import TwoTimeCorrelator

        tt = TwoTimeCorrelator(
            flat.shape[1],
            pixel_index=qm.pixel_index,
            dynamic_index=qm.dynamic_of_static[qm.static_index],
            n_dynamic=qm.n_dynamic,
            static_index=qm.static_index,
        )
        try:
            tt.feed(flat)
            tt.result()
        finally:
            tt.close()


def _warm_event_readers(frames: NDArray[Any]) -> None:
    """The compiled decoders of event files (sparse IMM, Rigaku), and dense-to-event conversion."""
    import tempfile
    from pathlib import Path

    from xpcs_kernel.io import FrameSelection, iter_chunks, open_frames, write_imm, write_rigaku

    with tempfile.TemporaryDirectory(prefix="xpcs-warmup-") as tmp:
        path = Path(tmp) / "tiny.imm"
        write_imm(path, frames.astype(np.uint16), sparse=True)
        with open_frames(path) as source:
            for _ in iter_chunks(source, FrameSelection(), sparse=True, chunk_frames=_FRAMES):
                pass
            for _ in iter_chunks(source, FrameSelection(avg=2), sparse=True):
                pass
        rigaku = Path(tmp) / "tiny.bin"  # its index and decoding passes are compiled too
        write_rigaku(rigaku, frames.astype(np.uint16))
        with open_frames(rigaku, frame_shape=frames.shape[1:]) as source:
            for _ in iter_chunks(source, FrameSelection(), sparse=True, chunk_frames=_FRAMES):
                pass


def warm_kernels(
    dtypes: DTypeLike | Iterable[DTypeLike] = np.uint16,
    *,
    sparse: bool = False,
    twotime: bool = False,
    gathered: bool = True,
    streamed: bool = True,
    bright_events: bool = True,
) -> float:
    """Compile or load the kernels of a run on frames of ``dtypes``; return the seconds.

    Parameters
    ----------
    dtypes : dtype or iterable of dtypes
        Frame dtype(s) of the runs to prepare (integer or floating).
    sparse : bool, optional
        Also the event-list (sparse) path.
    twotime : bool, optional
        Also the two-time correlator.
    gathered, streamed : bool, optional
        The dense multi-tau paths to prepare: frames gathered in memory (the
        eager kernel) and frames streamed chunk by chunk. A run asks for the
        one it takes, so it loads no kernel it does not call.
    bright_events : bool, optional
        With ``sparse``, also the path of event lists whose sums exceed 255 at
        a pixel (staged in uint16 rows instead of uint8). A run leaves it out:
        loading those kernels costs every event run, and only bright data
        use them (from the cache that ``xpcs-flows warmup`` filled).

    Returns
    -------
    float
        Wall seconds spent (compiling on an empty cache, loading otherwise;
        about 0 for what this process has already warmed).
    """
    single = isinstance(dtypes, (str, type, np.dtype))
    wanted: list[Any] = [dtypes] if single else list(dtypes)  # type: ignore[arg-type]
    resolved: list[np.dtype[Any]] = []
    for item in wanted:
        try:
            dt = np.dtype(item)
        except TypeError:
            raise UsageError(f"not a numpy dtype: {item!r}", argument="dtypes") from None
        if dt.kind not in "uif":
            raise UsageError(f"must be integer or floating, got {dt}", argument="dtypes")
        resolved.append(dt.newbyteorder("="))
    t0 = time.perf_counter()
    key = (sparse, twotime, gathered, streamed, bright_events)
    todo = [dt for dt in resolved if (dt.str, *key) not in _WARMED]
    if todo:
        from xpcs_kernel.warmup.startup import start_numba

        start_numba()  # numba's target first: lean in a console command
        qm = _tiny_qmap()
        for dt in todo:
            _warm_one(
                dt,
                sparse=sparse,
                twotime=twotime,
                gathered=gathered,
                streamed=streamed,
                bright=bright_events,
                qm=qm,
            )
            _WARMED.add((dt.str, *key))
    return time.perf_counter() - t0


def warm_for_run(
    dtype: np.dtype[Any], *, sink: MultiTauSink | None, sparse: bool, twotime: bool
) -> float:
    """:func:`warm_kernels` for one run: only the multi-tau path its ``sink`` will take.

    A run gathers its frames in memory (the eager kernel) or streams them (the
    streaming correlator), never both, so it loads only that path's kernels.
    """
    gathers = sink is not None and not sparse and sink.will_gather(dtype)
    return warm_kernels(
        dtype,
        sparse=sparse,
        twotime=twotime,
        gathered=gathers,
        streamed=sink is not None and not gathers,
        bright_events=False,
    )
