"""Benchmark live correlation: how far the partial g2 lags the detector, and its CPU cost.

A writer process (``python -m xpcs_kernel.live.detector swmr``) appends
uint16 frames to an HDF5 file in SWMR mode at a fixed rate and logs the time
of every flush; a follower process (this script with ``--child``) runs
:func:`xpcs_kernel.live.follow_file` on it with ``--update`` seconds and logs
the time and frame count of every result it writes. For every frame the lag
is the time from its flush to the first result that includes it; p50/p95 are
over the frames written after the follower's first result (start-up, numba
JIT and file creation excluded, and shown apart). The follower's CPU use is
its user + system time over wall time, in cores, while the writer writes
(steady state) and over its whole run (start-up, final fit and the input's
sha256 included). Side by side, the
offline path: the watcher's settle time (5 s) plus ``correlate`` of the
finished file, i.e. when a result would exist after the last frame without
live mode::

    .venv/bin/python benchmarks/live.py [--quick] [--workload mpx60 fast5k]

Data go to a temporary directory (the 1 Mpx file is about 1.3 GB), removed
at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETTLE_S = 5.0  # the watcher's default settle time


@dataclass(frozen=True)
class Workload:
    name: str
    shape: tuple[int, int]
    rate_hz: float
    n_frames: int
    per_write: int


WORKLOADS = {
    "mpx60": Workload("mpx60", (1024, 1024), 60.0, 600, 1),
    "fast5k": Workload("fast5k", (128, 128), 5000.0, 25000, 50),
}
QUICK = {
    "mpx60": Workload("mpx60", (512, 512), 60.0, 300, 1),
    "fast5k": Workload("fast5k", (128, 128), 5000.0, 15000, 50),
}


def _child(argv: list[str]) -> int:
    """The follower: ``--child RAW QMAP OUT LOG UPDATE``."""
    from xpcs_kernel.live import FollowConfig, FollowUpdate, follow_file

    raw, qmap, out, log, update = argv
    t0 = time.time()
    with open(log, "w") as handle:

        def record(event: FollowUpdate) -> None:
            handle.write(f"{event.frames} {event.wall_time:.6f}\n")
            handle.flush()

        follow_file(
            raw, qmap, out, config=FollowConfig(update=float(update), idle=30), on_update=record
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.time() - t0
    print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall}))
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pairs(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return np.array([(int(n), float(t)) for n, t in rows], dtype=float).reshape(-1, 2)


def _lags(writes: np.ndarray, updates: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-frame lags (frames written after the first update) and the first update's delay."""
    n_total = int(writes[-1, 0])
    written_at = np.empty(n_total)
    prev = 0
    for n, t in writes:
        written_at[prev : int(n)] = t
        prev = int(n)
    seen_at = np.full(n_total, np.nan)
    prev = 0
    for n, t in updates:
        if int(n) > prev:
            seen_at[prev : int(n)] = t
            prev = int(n)
    first_update = updates[0, 1]
    steady = written_at > first_update
    return (seen_at - written_at)[steady], float(first_update - writes[0, 1])


def run_workload(w: Workload, tmp: Path, update: float) -> dict[str, float | str]:
    from xpcs_kernel.pipeline import correlate_file
    from xpcs_kernel.qmap import write_qmap
    from xpcs_kernel.synthetic import SyntheticSpec, synthesize_qmap

    spec = SyntheticSpec(n_frames=2, shape=w.shape, n_dynamic_q=10, n_static_q=40)
    qmap = tmp / f"{w.name}_qmap.h5"
    write_qmap(qmap, synthesize_qmap(spec))
    pool = np.random.default_rng(0).poisson(0.3, size=(32, *w.shape)).astype(np.uint16)
    np.save(tmp / f"{w.name}.npy", pool)
    raw, out = tmp / f"{w.name}.h5", tmp / f"{w.name}_live.hdf"
    wlog, flog = tmp / f"{w.name}_writes.log", tmp / f"{w.name}_updates.log"
    follower = subprocess.Popen(
        [sys.executable, __file__, "--child", *map(str, (raw, qmap, out, flog, update))],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    time.sleep(2.0)  # let the follower import and wait for the file, as a watcher's would
    writer = [
        sys.executable,
        "-m",
        "xpcs_kernel.live.detector",
        "swmr",
        str(tmp / f"{w.name}.npy"),
    ]
    writer += [str(raw), "--n-frames", str(w.n_frames), "--per-write", str(w.per_write)]
    writer += ["--interval", str(w.per_write / w.rate_hz), "--done-marker", ".done"]
    cpu0, t0 = _cpu_seconds(follower.pid), time.monotonic()
    subprocess.run([*writer, "--log", str(wlog)], check=True, cwd=ROOT)
    cpu1, t1 = _cpu_seconds(follower.pid), time.monotonic()
    stdout, _ = follower.communicate(timeout=600)
    if follower.returncode != 0:
        raise RuntimeError(f"follower exited {follower.returncode}")
    usage = json.loads(stdout.decode().strip().splitlines()[-1])
    writes, updates = _pairs(wlog), _pairs(flog)
    lags, first = _lags(writes, updates)
    writer_s = writes[-1, 1] - writes[0, 1]
    t = time.perf_counter()
    correlate_file(raw, qmap, tmp / f"{w.name}_offline.hdf")
    offline = time.perf_counter() - t
    return {
        "workload": f"{w.name}: {w.shape[0]}x{w.shape[1]} uint16 at {w.rate_hz:g} Hz, "
        f"{w.n_frames} frames",
        "writer_s": writer_s,
        "achieved_hz": w.n_frames / writer_s if writer_s > 0 else float("nan"),
        "first_update_s": first,
        "lag_p50_s": float(np.nanpercentile(lags, 50)) if lags.size else float("nan"),
        "lag_p95_s": float(np.nanpercentile(lags, 95)) if lags.size else float("nan"),
        "final_after_last_frame_s": float(updates[-1, 1] - writes[-1, 1]),
        "offline_after_last_frame_s": SETTLE_S + offline,
        "follower_cores": (cpu1 - cpu0) / (t1 - t0),
        "follower_cores_whole": usage["cpu_s"] / usage["wall_s"],
        "updates": float(len(updates)),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        return _child(args[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="Smaller sizes (under a minute).")
    p.add_argument("--workload", nargs="+", choices=sorted(WORKLOADS), default=sorted(WORKLOADS))
    p.add_argument("--update", type=float, default=2.0, help="Follower --update seconds.")
    opts = p.parse_args(args)
    table = QUICK if opts.quick else WORKLOADS
    rows = []
    with tempfile.TemporaryDirectory(prefix="xpcs-live-bench-") as tmp:
        for name in opts.workload:
            rows.append(run_workload(table[name], Path(tmp), opts.update))
    head = (
        "| workload | writer rate (Hz) | first result (s) | lag p50 (s) | lag p95 (s) "
        "| final after last frame (s) | offline: settle + correlate (s) "
        "| follower CPU while writing (cores) | follower CPU whole run (cores) |"
    )
    print(head)
    print("|" + " --- |" * 9)
    for r in rows:
        print(
            f"| {r['workload']} | {r['achieved_hz']:.0f} | {r['first_update_s']:.2f} "
            f"| {r['lag_p50_s']:.2f} | {r['lag_p95_s']:.2f} | {r['final_after_last_frame_s']:.2f} "
            f"| {r['offline_after_last_frame_s']:.2f} | {r['follower_cores']:.2f} "
            f"| {r['follower_cores_whole']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
