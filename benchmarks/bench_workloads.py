"""Workloads on frames in memory (dense, 1 Mpx, JIT, two-time) and the workload registry.

The whole-command workloads (read, correlate, write) are in
``bench_command_workloads``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bench_coldstart import wl_coldstart
from bench_command_workloads import wl_command, wl_rss10k, wl_sparse
from bench_context import Context, measure, na_row
from bench_data import DataFiles, DataSpec, prepare
from bench_proc import ProcResult, peers_available, run_ours, run_peer
from bench_startup import wl_startup
from bench_tables import G2, Row, compare_rows, load_g2, skbeam_to_dynamic
from bench_u16_workloads import wl_u16, wl_u16long, wl_u16mpx

OUR_CODES = {
    "ours": "ours (xpcs_kernel)",
    "ours-stream": "ours, streamed",
    "ours-u16": "ours, frames as uint16",
    "ours-u16-stream": "ours, uint16, streamed",
}


def _multitau_codes(ctx: Context, workload: str, files: DataFiles, codes: tuple[str, ...]) -> None:
    spec = files.spec
    results: list[tuple[Row, G2 | None]] = []
    base = {"frames": str(files.frames), "qmap": str(files.qmap)}
    peer_reason = peers_available()
    for code in codes:
        out = ctx.out(f"{workload}_{code}")
        if code in OUR_CODES:
            task = {**base, "out": str(out)}
            if "u16" in code:
                task["dtype"] = "uint16"
            if code.endswith("-stream"):
                task["stream"] = "1"
            results.append(
                measure(
                    ctx,
                    workload,
                    OUR_CODES[code],
                    spec,
                    lambda task=task: run_ours("multitau", task),
                    lambda _p, out=out: load_g2(out),
                )
            )
        elif peer_reason:
            results.append((na_row(workload, code, spec.label(), peer_reason), None))
        elif code == "boost_corr":
            s = {**base, "out": str(out), "max_memory": ctx.boost_max_memory}
            results.append(
                measure(
                    ctx,
                    workload,
                    "boost_corr (CPU)",
                    spec,
                    lambda s=s: run_peer("boost-multitau", s),
                    lambda _p, out=out: load_g2(out),
                )
            )
        elif code == "scikit-beam":
            levels = max(1, int(math.log2(max(spec.n_frames, 16) / 4)))
            s = {**base, "out": str(out), "num_levels": levels, "num_bufs": 8}
            results.append(
                measure(
                    ctx,
                    workload,
                    "scikit-beam",
                    spec,
                    lambda s=s: run_peer("skbeam-multitau", s),
                    lambda _p, out=out: skbeam_to_dynamic(out, files.qmap),
                )
            )
    compare_rows(results, spec)
    ctx.rows.extend(r for r, _ in results)


def wl_dense(ctx: Context) -> None:
    """Dense 256x256 uint8 (ours also as uint16, and streamed): correlation alone, vs peers."""
    n = 500 if ctx.quick else 2000
    spec = DataSpec(n, 256, 256, mean=2.0)
    files = prepare(spec, ctx.data_dir, log=ctx.log)
    codes = ("ours", "ours-stream", "ours-u16", "ours-u16-stream", "boost_corr", "scikit-beam")
    _multitau_codes(ctx, "dense", files, codes)


def wl_mpx(ctx: Context) -> None:
    """1 Mpx frames: correlation alone, ours vs boost_corr."""
    n = 200 if ctx.quick else ctx.mpx_frames
    spec = DataSpec(n, 1024, 1024, mean=0.5)
    files = prepare(spec, ctx.data_dir, log=ctx.log)
    _multitau_codes(ctx, "1 Mpx", files, ("ours", "boost_corr"))


def wl_jit(ctx: Context) -> None:
    """Our numba compile time: first vs warm call, empty vs filled on-disk cache."""
    size = "64x64x200"
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("ours, empty numba cache", "ours, on-disk numba cache"):
            ctx.log(f"  jit: {label} ...")
            proc = run_ours("jit", {}, env=env)
            if proc.rc != 0:
                ctx.rows.append(na_row("JIT", label, size, proc.failure()))
                continue
            t = (proc.summary or {}).get("timings", {})
            row = Row("JIT", label, size, rss_mib=proc.rss_kib / 1024, total_s=proc.wall)
            row.jit_s = t["first_dense"] - t["warm_dense"]
            row.note = (
                f"import {t['import']:.2f} s; dense first/warm {t['first_dense']:.2f}/"
                f"{t['warm_dense']:.3f} s; sparse first/warm {t['first_sparse']:.2f}/"
                f"{t['warm_sparse']:.3f} s"
            )
            ctx.rows.append(row)


def _load_twotime(path: Path) -> tuple[G2, np.ndarray]:
    with np.load(path) as z:
        g2 = np.asarray(z["g2"], np.float64)
        c2 = np.asarray(z["c2_kept"][0], np.float64)
    return G2(np.arange(g2.shape[0], dtype=np.int64), g2), c2


def wl_twotime(ctx: Context) -> None:
    """Two-time, 36 dynamic bins: ours vs boost_corr (frames in memory)."""
    n = 500 if ctx.quick else 2000
    spec = DataSpec(n, 256, 256, mean=2.0)
    files = prepare(spec, ctx.data_dir, log=ctx.log)
    base = {"frames": str(files.frames), "qmap": str(files.qmap), "keep_c2": [0]}
    results: list[tuple[Row, G2 | None]] = []
    c2s: list[np.ndarray | None] = []
    for code, run in (
        ("ours (xpcs_kernel)", lambda s: run_ours("twotime", s)),
        ("boost_corr (CPU)", lambda s: run_peer("boost-twotime", {**s, "smooth": "sqmap"})),
    ):
        if code.startswith("boost") and peers_available():
            results.append((na_row("two-time", code, spec.label(), str(peers_available())), None))
            c2s.append(None)
            continue
        out = ctx.out(f"twotime_{code.split()[0]}")
        holder: dict[str, np.ndarray] = {}

        def loader(_p: ProcResult, out: Path = out, holder: dict[str, np.ndarray] = holder) -> G2:
            g2, holder["c2"] = _load_twotime(out)
            return g2

        row, g2 = measure(
            ctx,
            "two-time",
            code,
            spec,
            lambda run=run, out=out: run({**base, "out": str(out)}),
            loader,
        )
        results.append((row, g2))
        c2s.append(holder.get("c2"))
    compare_rows(results, spec)
    if len(c2s) == 2 and c2s[0] is not None and c2s[1] is not None:
        iu = np.triu_indices(c2s[0].shape[0], 1)
        d = float(np.max(np.abs(c2s[0][iu] - c2s[1][iu])))
        results[1][0].note = (
            results[1][0].note + f" max Δc2 bin 0 (off-diagonal) {d:.1e}"
        ).strip()
    ctx.rows.extend(r for r, _ in results)


WORKLOAD_FUNCS: dict[str, Callable[[Context], None]] = {
    "dense": wl_dense,
    "mpx": wl_mpx,
    "command": wl_command,
    "u16": wl_u16,
    "u16long": wl_u16long,
    "u16mpx": wl_u16mpx,
    "jit": wl_jit,
    "coldstart": wl_coldstart,
    "twotime": wl_twotime,
    "sparse": wl_sparse,
    "rss10k": wl_rss10k,
    "startup": wl_startup,
}
