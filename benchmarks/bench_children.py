"""Our measured child tasks (``kernel.py --child TASK SPEC_JSON``).

Each runs in a fresh ``.venv`` process, imports our kernel itself (so the
import and JIT loading are measured), writes its arrays to ``spec["out"]``
and returns a summary with its timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _our_bins(qmap_path: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """(PixelBins, pixel_index, dynamic index per pixel) from our q-map reader."""
    from xpcs_kernel.multitau.correlator import PixelBins
    from xpcs_kernel.qmap.model import read_qmap

    q = read_qmap(qmap_path)
    bins = PixelBins(q.static_index, q.dynamic_of_static, q.n_dynamic)
    return bins, q.pixel_index, q.dynamic_of_static[q.static_index]


def child_multitau(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: multi-tau of frames in memory (first call on 64 frames, then timed).

    With ``spec["stream"]`` the same stack goes chunk by chunk through the
    pipeline's streaming :class:`MultiTauSink` (two chunks per kernel call), in
    the chunks ``correlate_file`` reads when it streams (its memory budget: 4
    frame copies per chunk).
    """
    t0 = time.perf_counter()
    from xpcs_kernel.multitau import stream_memory_budget
    from xpcs_kernel.multitau.correlator import multitau
    from xpcs_kernel.multitau.sink import MultiTauSink

    t_import = time.perf_counter() - t0
    frames = np.load(spec["frames"])  # read into memory (a memmap would page in during the timer)
    if spec.get("dtype"):
        frames = frames.astype(spec["dtype"])  # same counts, another detector dtype
    bins, pixel_index, _ = _our_bins(spec["qmap"])
    path = spec.get("path", "auto")
    flat = frames.reshape(len(frames), -1)
    chunk = max(1, stream_memory_budget(pixel_index.size, len(flat)) // (4 * flat[0].nbytes))

    def correlate(stack: np.ndarray) -> tuple[Any, float]:
        """(result, seconds): streamed, the state is touched first and not timed,
        as ``correlate`` touches it while its kernels load."""
        if not spec.get("stream"):
            t0 = time.perf_counter()
            return multitau(stack, bins, pixel_index=pixel_index, path=path), (
                time.perf_counter() - t0
            )
        sink = MultiTauSink(
            flat.shape[1], pixel_index=pixel_index, n_frames=len(stack), in_memory_bytes=0
        )
        sink.prefault(stack.dtype, events=False)
        t0 = time.perf_counter()
        for start in range(0, len(stack), chunk):
            sink.feed(stack[start : start + chunk])
        return sink.g2(bins), time.perf_counter() - t0

    small = flat[:64]
    _, t_first = correlate(small)
    _, t_warm = correlate(small)
    res, t_corr = correlate(flat)
    np.savez(spec["out"], delays=res.delays, g2=res.g2)
    note = (
        f"streamed, {chunk}-frame chunks in pairs, state touched first"
        if spec.get("stream")
        else ""
    )
    return {
        "timings": {
            "import": t_import,
            "first_small": t_first,
            "warm_small": t_warm,
            "correlate": t_corr,
        },
        "note": note,
    }


def child_jit(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: import, first call and warm call on a tiny stack (compile vs cache)."""
    t0 = time.perf_counter()
    from xpcs_kernel.multitau.correlator import PixelBins, multitau

    t_import = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    frames = rng.poisson(1.0, size=(200, 64 * 64)).astype(np.uint8)
    static = np.arange(64 * 64) % 8
    bins = PixelBins(static, np.arange(8) // 2, 4)
    out = {"import": t_import}
    for path in spec.get("paths", ["dense", "sparse"]):
        t0 = time.perf_counter()
        multitau(frames, bins, path=path)
        out[f"first_{path}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        multitau(frames, bins, path=path)
        out[f"warm_{path}"] = time.perf_counter() - t0
    return {"timings": out}


def child_twotime(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: two-time of frames in memory, all dynamic bins."""
    from xpcs_kernel.twotime.correlator import twotime

    frames = np.load(spec["frames"])  # read into memory (a memmap would page in during the timer)
    if spec.get("dtype"):
        frames = frames.astype(spec["dtype"])  # same counts, another detector dtype
    bins, pixel_index, dyn = _our_bins(spec["qmap"])
    n_dyn = int(dyn.max()) + 1
    # smooth by the static bin's time mean, as the pipeline does (per-pixel means bias C low)
    kw = {
        "pixel_index": pixel_index,
        "dynamic_index": dyn,
        "n_dynamic": n_dyn,
        "static_index": bins.static_index,
    }
    t0 = time.perf_counter()
    twotime(frames[:64], bins=[0], **kw)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = twotime(frames, **kw)
    t_corr = time.perf_counter() - t0
    keep = [int(b) for b in spec.get("keep_c2", [0])]
    np.savez(
        spec["out"],
        g2=res.g2,
        processed_bins=res.bins,
        c2_kept=np.stack([res.c2[b] for b in keep]),
        c2_kept_bins=np.asarray(keep),
    )
    return {"timings": {"first_small": t_first, "correlate": t_corr}}


def child_fit(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: ``fit_g2`` of ``n_bins`` seeded g2 curves, first call and second call."""
    import sys

    n_bins = int(spec["n_bins"])
    rng = np.random.default_rng(7)
    # multi-tau delays of 2000 frames (8 per level), 1 ms frames
    delays = (
        np.unique(
            np.concatenate([np.arange(1, 16)] + [np.arange(8, 16) * 2**lev for lev in range(1, 7)])
        ).astype(np.float64)
        * 1e-3
    )
    tau_c = np.geomspace(3e-3, 0.1, n_bins)
    beta = rng.uniform(0.15, 0.3, n_bins)
    err = np.full((delays.size, n_bins), 2e-3)
    g2 = 1 + beta * np.exp(-2 * delays[:, None] / tau_c) + rng.normal(0, 2e-3, err.shape)
    t0 = time.perf_counter()
    from xpcs_kernel.fit import fit_g2

    fit = fit_g2(delays, g2, err)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit_g2(delays, g2, err)
    t_second = time.perf_counter() - t0
    rel = np.abs(1.0 / fit.gamma / tau_c - 1)
    return {
        "timings": {"first": t_first, "second": t_second},
        "scipy": "scipy.optimize" in sys.modules,
        "max_rel_err": float(np.max(rel)),
    }


CHILD_TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "fit": child_fit,
    "multitau": child_multitau,
    "jit": child_jit,
    "twotime": child_twotime,
}
