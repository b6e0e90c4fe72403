"""Benchmark of the multi-tau correlator kernels (not a test).

Prints one row per case: pixel-frames per second of the correlation alone,
best and median of ``--repeat`` runs, by wall clock and by process CPU time
(``time.process_time``, all threads: on a shared machine the CPU rate per
core is the stable figure, the wall rate what a user sees), the one-off
compile (or cache load) time and the process's peak RSS. The load average is
printed first and last (the development VM has 2 cores shared with others).
Cases:

* ``256``: 256x256 x 2000 uint8 Poisson frames fed in one call, the reduction
  ``g2(bins)`` of that correlator (100 ring-shaped static bins in 10 dynamic
  ones; its row gives seconds, not rates), then streamed in the chunks the
  pipeline would read (``stream_memory_budget``);
* ``1mpx``: 1024x1024 x 1000 uint8 frames in one call, the reduction, and
  streamed in the pipeline's chunks for 1,000 and for 10,000 frames;
* ``sparse``: CSR event lists (``feed_sparse``) at several occupancies, against
  ``dense`` on the densified frames;
* ``command``: the whole ``xpcs-flows correlate`` command on a 256x256 x 2000
  LZ4 HDF5 file (a subprocess: interpreter start, numba cache load, reading,
  SAXS, correlation, writing); ``--frames`` changes the frame count;
* ``memory``: ``correlate_file`` in a subprocess on a 1 Mpx uint8 LZ4 HDF5
  file of ``--frames`` (default 10,000) frames written to a temporary
  directory and deleted after: peak RSS, wall and CPU time.

Usage::

    .venv/bin/python benchmarks/multitau_kernel.py            # 256, 1mpx, command
    .venv/bin/python benchmarks/multitau_kernel.py --case memory
    .venv/bin/python benchmarks/multitau_kernel.py --case sparse

Measurements on the 2-core development VM (AMD EPYC, shared with other
jobs, so noisy) are recorded in :mod:`xpcs_kernel.multitau.correlator`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from xpcs_kernel.multitau.correlator import MultiTauCorrelator, PixelBins, stream_memory_budget


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn: Callable[[], object], repeat: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each run."""
    runs = []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    return runs


def _row(name: str, work: float, runs: list[tuple[float, float]], compile_s: float) -> None:
    wall = sorted(r[0] for r in runs)
    cpu = sorted(r[1] for r in runs)
    print(
        f"{name:<40} {work / wall[0]:>9.2e} {work / float(np.median(wall)):>9.2e} "
        f"{work / cpu[0]:>9.2e} {work / float(np.median(cpu)):>9.2e} "
        f"{compile_s:>7.2f} {_peak_rss_mb():>7.0f}"
    )


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def pipeline_chunk(n_pixels: int, n_frames: int, itemsize: int = 1) -> int:
    """Frames per chunk that ``correlate_file`` reads (dense, no averaging)."""
    budget = stream_memory_budget(n_pixels, n_frames)
    return max(1, budget // (4 * n_pixels * itemsize))  # iter_chunks: 2 x (raw + out)


def _to_csr(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz_f, nz_p = np.nonzero(frames)
    indptr = np.zeros(frames.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(nz_f, minlength=frames.shape[0]), out=indptr[1:])
    return indptr, nz_p.astype(np.int64), frames[nz_f, nz_p]


def _frames(n_frames: int, n_pixels: int, rate: float, seed: int = 0) -> np.ndarray:
    """Poisson uint8 frames, generated in pieces (no int64 temporary of the whole)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_frames, n_pixels), dtype=np.uint8)
    step = max(1, (1 << 24) // n_pixels)
    for f0 in range(0, n_frames, step):
        part = out[f0 : f0 + step]
        part[...] = rng.poisson(rate, size=part.shape)
    return out


def bench_dense(
    n_frames: int, n_pixels: int, repeat: int, label: str, stream_for: list[int]
) -> None:
    """One call, then streamed in the pipeline's chunks for each of ``stream_for`` frames."""
    frames = _frames(n_frames, n_pixels, 1.0)
    t0 = time.perf_counter()
    MultiTauCorrelator(n_pixels).feed(frames[:16])
    compile_s = time.perf_counter() - t0
    _row(
        f"dense {label} x {n_frames}",
        n_frames * n_pixels,
        _timed(partial(_feed_dense, n_pixels, frames), repeat),
        compile_s,
    )
    bench_reduction(n_pixels, frames, repeat)
    chunks = [min(n_frames, pipeline_chunk(n_pixels, total)) for total in stream_for]
    for chunk in [*dict.fromkeys(chunks), 100]:
        runs = _timed(partial(_stream, n_pixels, frames, chunk), repeat)
        _row(f"  streamed, {chunk}-frame chunks", n_frames * n_pixels, runs, 0.0)


def ring_bins(side: int, n_static: int = 100, n_dynamic: int = 10) -> PixelBins:
    """q-map-like bins of a ``side x side`` detector: rings around the centre."""
    yy, xx = np.mgrid[:side, :side]
    radius = np.hypot(yy - side / 2, xx - side / 2).ravel()
    static = np.minimum((radius / radius.max() * n_static).astype(np.intp), n_static - 1)
    static[:n_static] = np.arange(n_static)  # no empty bin
    return PixelBins(static, np.arange(n_static) * n_dynamic // n_static, n_dynamic)


def bench_reduction(n_pixels: int, frames: np.ndarray, repeat: int) -> None:
    """``g2(bins)`` (the reduction to binned g2) after feeding ``frames`` in one call."""
    corr = MultiTauCorrelator(n_pixels)
    corr.feed(frames)
    bins = ring_bins(round(n_pixels**0.5))
    t0 = time.perf_counter()
    corr.g2(bins)
    compile_s = time.perf_counter() - t0
    runs = _timed(partial(corr.g2, bins), repeat)
    wall = sorted(r[0] for r in runs)
    cpu = sorted(r[1] for r in runs)
    print(
        f"{'  g2() reduction, 100/10 q bins (s)':<40} {wall[0]:>9.4f} "
        f"{float(np.median(wall)):>9.4f} {cpu[0]:>9.4f} {float(np.median(cpu)):>9.4f} "
        f"{compile_s:>7.2f} {_peak_rss_mb():>7.0f}"
    )


def _stream(n_pixels: int, frames: np.ndarray, chunk: int) -> None:
    corr = MultiTauCorrelator(n_pixels)
    for f0 in range(0, frames.shape[0], chunk):
        corr.feed(frames[f0 : f0 + chunk])


def _feed_sparse(n_pixels: int, csr: tuple[int, np.ndarray, np.ndarray, np.ndarray]) -> None:
    MultiTauCorrelator(n_pixels).feed_sparse(*csr)


def _feed_dense(n_pixels: int, frames: np.ndarray) -> None:
    MultiTauCorrelator(n_pixels).feed(frames)


def bench_sparse(n_frames: int, n_pixels: int, repeat: int, occupancies: list[float]) -> None:
    rng = np.random.default_rng(1)
    for occ in occupancies:
        frames = (rng.random((n_frames, n_pixels)) < occ).astype(np.uint8)
        indptr, pixels, counts = _to_csr(frames)
        t0 = time.perf_counter()
        MultiTauCorrelator(n_pixels).feed_sparse(
            1, indptr[:2], pixels[: indptr[1]], counts[: indptr[1]]
        )
        compile_s = time.perf_counter() - t0

        work = n_frames * n_pixels
        csr = (n_frames, indptr, pixels, counts)
        _row(
            f"sparse occ={occ:g}",
            work,
            _timed(partial(_feed_sparse, n_pixels, csr), repeat),
            compile_s,
        )
        runs = _timed(partial(_feed_dense, n_pixels, frames), repeat)
        _row(f"  dense same frames occ={occ:g}", work, runs, 0.0)


def _write_raw(path: Path, n_frames: int, side: int, rate: float) -> Path:
    """Poisson uint8 frames (64 random frames in shuffled order), LZ4 HDF5, and a q-map."""
    from xpcs_kernel.io import write_hdf5_frames
    from xpcs_kernel.qmap.build import qmap_from_geometry
    from xpcs_kernel.qmap.model import write_qmap

    rng = np.random.default_rng(0)
    pool = rng.poisson(rate, size=(64, side, side)).astype(np.uint8)

    def chunks() -> Iterator[np.ndarray]:
        for f0 in range(0, n_frames, 64):
            yield pool[rng.permutation(64)[: min(64, n_frames - f0)]]

    write_hdf5_frames(path, chunks(), compression="lz4")
    qmap = qmap_from_geometry(
        (side, side),
        beam_center=(side / 2, side / 2),
        detector_distance=5.0,
        pixel_size=75e-6,
        energy=10.0,
        n_dynamic_q=10,
        n_static_q=100,
    )
    write_qmap(path.with_name("qmap.h5"), qmap)
    return path.with_name("qmap.h5")


def _child(args: list[str], repeat: int) -> list[tuple[float, float, float]]:
    """(wall, CPU, peak RSS MiB; NaN without ``/usr/bin/time``) of each run of a command."""
    timer = Path("/usr/bin/time")
    out = []
    for _ in range(repeat):
        with tempfile.NamedTemporaryFile("r") as rss:
            # RUSAGE_CHILDREN's maxrss would count this process (fork before exec)
            wrap = [str(timer), "-f", "%M", "-o", rss.name] if timer.exists() else []
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([*wrap, *args], check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            text = rss.read().strip()
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        out.append((wall, cpu, int(text.splitlines()[-1]) / 1024.0 if text else float("nan")))
    return out


def bench_command(n_frames: int, repeat: int) -> None:
    """The whole ``xpcs-flows correlate`` command on a 256x256 LZ4 HDF5 file."""
    with tempfile.TemporaryDirectory(prefix="mt-bench-") as tmp:
        raw = Path(tmp) / "raw.h5"
        qmap = _write_raw(raw, n_frames, 256, 1.0)
        exe = Path(sys.executable).with_name("xpcs-flows")
        args = [str(exe), "correlate", str(raw), "--qmap", str(qmap), "-o"]
        args += [str(Path(tmp) / "out.h5"), "--frame-time", "1e-3", "--quiet"]
        runs = _child(args, repeat)
    work = n_frames * 256 * 256
    for wall, cpu, rss in runs:
        print(
            f"command 256x256 x {n_frames} LZ4: wall {wall:6.2f} s ({work / wall:.2e} px-fr/s), "
            f"CPU {cpu:6.2f} s, peak RSS {rss:.0f} MiB"
        )


_MEMORY_SCRIPT = """
import resource, sys, time
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline.correlate import correlate_file
t0, c0 = time.perf_counter(), time.process_time()
s = correlate_file(sys.argv[1], sys.argv[2], sys.argv[3],
                   options=CorrelationOptions(frame_time=1e-3, fit=False))
print(f"wall {time.perf_counter() - t0:.1f} s, CPU {time.process_time() - c0:.1f} s, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
      f"stages {dict((k, round(v, 1)) for k, v in s.to_dict()['timings'].items())}")
"""


def bench_memory(n_frames: int) -> None:
    """``correlate_file`` on a 1 Mpx x ``n_frames`` uint8 LZ4 file: peak RSS and time."""
    with tempfile.TemporaryDirectory(prefix="mt-bench-", dir="/tmp") as tmp:
        raw = Path(tmp) / "raw.h5"
        t0 = time.perf_counter()
        qmap = _write_raw(raw, n_frames, 1024, 0.3)
        print(f"wrote {raw.stat().st_size / 2**30:.1f} GiB in {time.perf_counter() - t0:.0f} s")
        chunk = pipeline_chunk(1024 * 1024, n_frames)
        args = [sys.executable, "-c", _MEMORY_SCRIPT, str(raw), str(qmap), f"{tmp}/out.h5"]
        print(f"correlate_file 1 Mpx x {n_frames} ({chunk}-frame chunks): ", end="", flush=True)
        subprocess.run(args, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case",
        choices=["all", "256", "1mpx", "sparse", "command", "memory"],
        default="all",
    )
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(_load(), f"({os.cpu_count()} CPUs)")
    print(
        f"{'case (pixel-frames/s)':<40} {'wall best':>9} {'median':>9} {'CPU best':>9} "
        f"{'median':>9} {'compile':>7} {'RSS MB':>7}"
    )
    if args.case in ("all", "256"):
        n = args.frames or 2000
        bench_dense(n, 256 * 256, args.repeat, "256x256 uint8", [n])
    if args.case in ("all", "1mpx"):
        n = args.frames or 1000
        bench_dense(n, 1024 * 1024, args.repeat, "1024x1024 uint8", [n, 10_000])
    if args.case == "sparse":
        bench_sparse(args.frames or 1000, 256 * 256, args.repeat, [0.001, 0.01, 0.05, 0.2])
    if args.case in ("all", "command"):
        bench_command(args.frames or 2000, args.repeat)
    if args.case == "memory":
        bench_memory(args.frames or 10_000)
    print(_load())


if __name__ == "__main__":
    main()
