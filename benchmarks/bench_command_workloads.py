"""Whole-command workloads: read a file, correlate, write the result.

``xpcs-flows correlate`` against boost_corr's own CLI on an LZ4 HDF5 file
(``command``), on sparse Rigaku / IMM files (``sparse``), and our peak RSS on
1 Mpx x many frames (``rss10k``).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from bench_context import Context, measure, na_row, slug
from bench_data import DataFiles, DataSpec, prepare
from bench_proc import ProcResult, peers_available, run_peer, run_process
from bench_tables import G2, Row, compare_rows

OUR_CLI = Path(sys.executable).parent / "xpcs-flows"


def _read_result_g2(path: Path) -> G2:
    import h5py

    with h5py.File(path, "r") as f:
        delays = np.asarray(f["/xpcs/multitau/delay_list"][()]).reshape(-1)
        g2 = np.asarray(f["/xpcs/multitau/normalized_g2"][()], np.float64)
    # delays may be stored in seconds (frame_time 1 ms in our files)
    if delays.dtype.kind == "f":
        delays = np.rint(delays / 1e-3)
    return G2(delays.astype(np.int64), g2)


_BOOST_CORR_TIME = re.compile(r"correlation finished in ([0-9.]+)s")


def command_rows(
    ctx: Context,
    workload: str,
    files: DataFiles,
    raw: Path,
    extra_ours: tuple[tuple[str, list[str]], ...] = (("ours (xpcs-flows correlate)", []),),
    boost_variants: tuple[tuple[str, bool], ...] = (("boost_corr CLI (CPU)", False),),
) -> None:
    """Whole command (read, correlate, write) for ours and boost_corr's CLI."""
    spec = files.spec
    results: list[tuple[Row, G2 | None]] = []
    for label, extra in extra_ours:
        out = ctx.work / f"{slug(workload)}_{len(results)}_ours.hdf"
        out.unlink(missing_ok=True)
        if not OUR_CLI.exists():
            results.append((na_row(workload, label, spec.label(), f"{OUR_CLI} missing"), None))
            continue
        cmd = [str(OUR_CLI), "correlate", str(raw), "--qmap", str(files.qmap), "-o", str(out)]
        cmd += ["--mode", "multitau", "--frame-time", "1e-3", "--no-fit", "--quiet", "--json"]
        cmd += extra
        key = (str(raw), *extra)  # numba compiles per dtype: warm each file once
        if ctx.warmup and key not in ctx.warmed:
            # untimed first run: fills numba's on-disk cache (the JIT workload times that)
            ctx.log(f"  {workload}: {label} (warm-up run) ...")
            run_process(cmd)
            ctx.warmed.add(key)
        row, g2 = measure(
            ctx,
            workload,
            label,
            spec,
            lambda cmd=cmd: _json_summary(run_process(cmd)),
            lambda _p, out=out: _read_result_g2(out),
            whole=True,
        )
        results.append((row, g2))
    reason = peers_available()
    for label, patch in boost_variants:
        if reason:
            results.append((na_row(workload, label, spec.label(), reason), None))
            continue
        outdir = ctx.work / f"{slug(workload)}_boost_{len(results)}"
        shutil.rmtree(outdir, ignore_errors=True)
        argv = ["-r", str(raw), "-q", str(files.qmap), "-o", str(outdir), "-i", "-1"]
        argv += ["-nf", "0", "-t", "Multitau", "-w", "-v", "--meta-fname", str(files.meta)]
        argv += ["--max-memory", str(ctx.boost_max_memory)]

        def boost_run(
            argv: list[str] = argv, patch: bool = patch, out: Path = outdir
        ) -> ProcResult:
            proc = run_peer("boost-cli", {"argv": argv, "patch_loader": patch})
            found = _BOOST_CORR_TIME.findall(proc.stderr)
            proc.summary = {"timings": {"correlate": float(found[-1])}} if found else {}
            if proc.rc == 0 and not list(out.glob("*_results.hdf")):
                proc.rc = 1
                proc.stderr += "\nno result file written"
            return proc

        results.append(
            measure(
                ctx,
                workload,
                label,
                spec,
                boost_run,
                lambda _p, out=outdir: _read_result_g2(next(out.glob("*_results.hdf"))),
                whole=True,
            )
        )
    compare_rows(results, spec)
    ctx.rows.extend(r for r, _ in results)


def _json_summary(proc: ProcResult) -> ProcResult:
    """Parse ``xpcs-flows correlate --json`` output into the summary timings."""
    if proc.rc == 0:
        try:
            summary = json.loads(proc.stdout[proc.stdout.index("{") :])
            occ = summary.get("occupancy")
            note = f"{summary.get('path')} path"
            if isinstance(occ, float) and math.isfinite(occ):
                note += f", occupancy {occ:.3g}"
            proc.summary = {"timings": summary.get("timings", {}), "note": note}
        except ValueError:
            proc.summary = {}
    return proc


def wl_command(ctx: Context) -> None:
    """Whole command on an LZ4 HDF5 file: xpcs-flows correlate vs boost_corr's CLI."""
    n = 500 if ctx.quick else 2000
    spec = DataSpec(n, 256, 256, mean=2.0)
    files = prepare(spec, ctx.data_dir, h5=True, log=ctx.log)
    command_rows(
        ctx,
        "whole command (LZ4 HDF5)",
        files,
        files.raw_h5,
        boost_variants=(
            ("boost_corr CLI (CPU), as shipped", False),
            ("boost_corr CLI (CPU), loader race fixed", True),
        ),
    )


def wl_sparse(ctx: Context) -> None:
    """Sparse files at several occupancies: ours sparse vs dense path, boost_corr."""
    n = 500 if ctx.quick else 2000
    for occ in ctx.sparse_occupancies:
        spec = DataSpec(n, 512, 1024, mean=-math.log1p(-occ), n_dynamic=36)
        for fmt in ctx.sparse_formats:
            files = prepare(
                spec,
                ctx.data_dir,
                npy=False,
                rigaku=fmt == "rigaku",
                imm=fmt == "imm",
                log=ctx.log,
            )
            raw = files.raw_bin if fmt == "rigaku" else files.raw_imm
            before = len(ctx.rows)
            command_rows(
                ctx,
                f"sparse {'Rigaku' if fmt == 'rigaku' else 'IMM'}, {occ:g} ph/px/frame",
                files,
                raw,
                extra_ours=(
                    ("ours, sparse path", ["--path", "sparse"]),
                    ("ours, densify + dense path", ["--path", "dense"]),
                ),
            )
            size_mb = raw.stat().st_size / 2**20
            for row in ctx.rows[before:]:
                row.note = (row.note + f"; file {size_mb:.0f} MiB").strip("; ")


def wl_rss10k(ctx: Context) -> None:
    """Peak RSS of our whole command on 1 Mpx x 10,000 frames (opt-in: big file)."""
    n = 2000 if ctx.quick else 10_000
    spec = DataSpec(n, 1024, 1024, mean=0.05)
    files = prepare(spec, ctx.data_dir, npy=False, h5=True, log=ctx.log)
    ctx.warmed.add(
        (str(files.raw_h5),)
    )  # no second pass over this file: its time includes JIT loading
    command_rows(
        ctx,
        "1 Mpx x many frames (RSS)",
        files,
        files.raw_h5,
        boost_variants=(("boost_corr CLI (CPU), loader race fixed", True),)
        if ctx.rss_boost
        else (),
    )
