"""What the workloads share: their options and turning one measured process into a row."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_data import DataSpec
from bench_proc import ProcResult
from bench_tables import G2, Row


@dataclass
class Context:
    """Options shared by the workloads."""

    data_dir: Path
    work: Path
    quick: bool
    debug: bool
    boost_max_memory: float
    mpx_frames: int
    sparse_occupancies: tuple[float, ...]
    sparse_formats: tuple[str, ...] = ("rigaku",)
    rss_boost: bool = False
    warmup: bool = True
    repeat: int = 1
    warmed: set[tuple[str, ...]] = field(default_factory=set)
    rows: list[Row] = field(default_factory=list)

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def out(self, name: str) -> Path:
        return self.work / f"{slug(name)}.npz"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def na_row(workload: str, code: str, size: str, reason: str) -> Row:
    return Row(workload, code, size, note=f"n/a ({reason})")


def measure(
    ctx: Context,
    workload: str,
    code: str,
    spec: DataSpec,
    runner: Callable[[], ProcResult],
    loader: Callable[[ProcResult], G2 | None],
    *,
    whole: bool = False,
) -> tuple[Row, G2 | None]:
    """Run one measured process and turn it into a Row (n/a on failure)."""
    ctx.log(f"  {workload}: {code} ...")
    procs = []
    for _ in range(ctx.repeat):
        try:
            procs.append(runner())
        except FileNotFoundError as err:
            return na_row(workload, code, spec.label(), str(err)), None
        if procs[-1].rc != 0:
            break
    failed = [p for p in procs if p.rc != 0]
    proc = failed[0] if failed else min(procs, key=lambda p: p.wall)
    if proc.rc != 0:
        if ctx.debug:
            ctx.log(proc.stderr)
        return na_row(workload, code, spec.label(), proc.failure()), None
    row = Row(workload, code, spec.label(), spec.pixel_frames, rss_mib=proc.rss_kib / 1024)
    timings = (proc.summary or {}).get("timings", {})
    row.corr_s = timings.get("correlate")
    if whole:
        row.total_s = proc.wall
    row.note = str((proc.summary or {}).get("note", ""))
    if "first_small" in timings and "warm_small" in timings:
        row.jit_s = timings["first_small"] - timings["warm_small"]
    try:
        g2 = loader(proc)
    except (OSError, KeyError, ValueError) as err:
        row.note = f"g2 unreadable: {err}"
        g2 = None
    ctx.log(f"    {proc.wall:.1f} s wall, {row.rss_mib:.0f} MiB")
    return row, g2


def machine_header() -> str:
    """One line naming the CPU, the threads our kernel uses and the load (for the tables)."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        one, five, fifteen = os.getloadavg()
        load = f" load average {one:.2f} {five:.2f} {fifteen:.2f},"
    except OSError:
        load = ""
    return f"# CPU: {model}, {threads} threads (usable CPUs),{load} {platform.python_version()}"
