"""Start-up: ``xpcs-flows correlate --help`` and the fit of many q-bins, fresh processes.

* ``correlate --help``: the wall time of the whole process, and which heavy
  modules it imported (``PYTHONPROFILEIMPORTTIME``): a command's help must not
  pay for numba, scipy, h5py, torch or rich.
* ``fit``: :func:`xpcs_kernel.fit.fit_g2` on 24 and 100 dynamic bins of a
  seeded single-exponential g2 with noise, first call in a fresh process (its
  imports included) and a second call; the largest relative error of the
  fitted tau_c against the truth says the fast path still fits.
"""

from __future__ import annotations

import os
import re

from bench_command_workloads import OUR_CLI
from bench_context import Context, na_row
from bench_proc import ProcResult, run_ours, run_process
from bench_tables import Row

__all__ = ["HEAVY_MODULES", "wl_startup"]

HEAVY_MODULES = ("numpy", "numba", "scipy", "h5py", "torch", "rich")
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)\s*$", re.MULTILINE)


def _heavy_imports(stderr: str) -> list[str]:
    names = {name.split(".")[0] for name in _IMPORTED.findall(stderr)}
    return [m for m in HEAVY_MODULES if m in names]


def _help(ctx: Context) -> None:
    name, label = "start-up", "xpcs-flows correlate --help"
    if not OUR_CLI.exists():
        ctx.rows.append(na_row(name, label, "-", f"{OUR_CLI} missing"))
        return
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    procs: list[ProcResult] = []
    for _ in range(max(3, ctx.repeat)):
        procs.append(run_process([str(OUR_CLI), "correlate", "--help"], env=env))
        if procs[-1].rc != 0:
            ctx.rows.append(na_row(name, label, "-", procs[-1].failure()))
            return
    best = min(procs, key=lambda p: p.wall)
    heavy = _heavy_imports(best.stderr)
    row = Row(name, label, "-", rss_mib=best.rss_kib / 1024, total_s=best.wall)
    row.note = "heavy imports: " + (", ".join(heavy) if heavy else "none")
    ctx.rows.append(row)
    ctx.log(f"    {best.wall:.2f} s wall ({row.note})")


def _fit(ctx: Context, n_bins: int) -> None:
    name, label, size = "start-up", f"fit_g2, {n_bins} q-bins", f"{n_bins} bins"
    procs: list[ProcResult] = []
    for _ in range(max(1, ctx.repeat)):
        procs.append(run_ours("fit", {"n_bins": n_bins}))
        if procs[-1].rc != 0:
            ctx.rows.append(na_row(name, label, size, procs[-1].failure()))
            return
    best = min(procs, key=lambda p: (p.summary or {})["timings"]["first"])
    summary = best.summary or {}
    t = summary["timings"]
    row = Row(name, label, size, rss_mib=best.rss_kib / 1024)
    row.corr_s = t["first"]
    row.note = (
        f"first call {t['first'] * 1e3:.0f} ms (imports included), second "
        f"{t['second'] * 1e3:.0f} ms; scipy imported: {summary['scipy']}; "
        f"max |tau_c/truth - 1| {summary['max_rel_err']:.1e}"
    )
    ctx.rows.append(row)
    ctx.log(f"    {row.note}")


def wl_startup(ctx: Context) -> None:
    """``correlate --help`` wall time and imports; fits of 24 and 100 q-bins."""
    ctx.log("  start-up: correlate --help ...")
    _help(ctx)
    for n_bins in (24, 100):
        ctx.log(f"  start-up: fit of {n_bins} q-bins ...")
        _fit(ctx, n_bins)
