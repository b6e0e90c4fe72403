"""Cold start: the first ``xpcs-flows correlate`` on a node whose numba cache is empty.

Three fresh processes on a small uint16 stack (64x64 x 500, LZ4), each with
its own ``NUMBA_CACHE_DIR``:

* ``empty numba cache``: what a new node, container or install paid before
  ``warmup``: the whole command compiles its kernels (reported as the
  summary's ``compile`` timing, apart from ``correlate``);
* ``xpcs-flows warmup``: the one-off compilation an image build, ``deploy`` or
  an endpoint's ``worker_init`` runs into a shared cache directory;
* ``after warmup``: the first user run on that node (loads the cache).
"""

from __future__ import annotations

import json
import os
import tempfile

from bench_command_workloads import OUR_CLI, _json_summary
from bench_context import Context, na_row
from bench_data import DataSpec, prepare
from bench_proc import run_process
from bench_tables import Row

__all__ = ["wl_coldstart"]


def wl_coldstart(ctx: Context) -> None:
    """Whole first command with an empty cache, the warmup, and the first command after it."""
    spec = DataSpec(500, 64, 64, mean=2.0, n_dynamic=6, dtype="uint16")
    files = prepare(spec, ctx.data_dir, npy=False, h5=True, log=ctx.log)
    size = spec.label()
    name = "cold start (uint16 LZ4)"
    out = ctx.work / "coldstart.hdf"
    cmd = [str(OUR_CLI), "correlate", str(files.raw_h5), "--qmap", str(files.qmap)]
    cmd += ["-o", str(out), "--frame-time", "1e-3", "--quiet", "--json"]
    with (
        tempfile.TemporaryDirectory(prefix="numba-cold-") as cold,
        tempfile.TemporaryDirectory(prefix="numba-warm-") as warm,
    ):
        warmup = [str(OUR_CLI), "warmup", "--json"]
        if ctx.quick:  # the stack's dtype only (a deploy warms every detector dtype)
            warmup += ["--dtype", "uint16", "--no-sparse", "--no-twotime"]
        steps = (
            ("ours, empty numba cache", cold, cmd),
            ("xpcs-flows warmup (once per node)", warm, warmup),
            ("ours, first run after warmup", warm, cmd),
        )
        for label, cache, argv in steps:
            ctx.log(f"  coldstart: {label} ...")
            proc = run_process(argv, env={**os.environ, "NUMBA_CACHE_DIR": cache})
            if proc.rc != 0:
                ctx.rows.append(na_row(name, label, size, proc.failure()))
                continue
            row = Row(name, label, size, rss_mib=proc.rss_kib / 1024, total_s=proc.wall)
            if argv is cmd:
                t = (_json_summary(proc).summary or {}).get("timings", {})
                row.corr_s = t.get("correlate")
                row.jit_s = t.get("compile")
                row.note = ", ".join(f"{k} {v:.2f}" for k, v in t.items())
            else:
                report = json.loads(proc.stdout)
                row.jit_s = report["seconds"]
                row.note = f"dtypes {' '.join(report['dtypes'])}"
            ctx.rows.append(row)
