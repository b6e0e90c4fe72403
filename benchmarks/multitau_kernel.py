"""Benchmark of the multi-tau correlator kernels (not a test).

Prints one table row per case: pixel-frames per second of the correlation
alone (best and median of ``--repeat`` runs, wall clock), the one-off compile
(or cache load) time, and the peak RSS of the process. Cases:

* ``dense``: uint8 Poisson frames fed as one array (``MultiTauCorrelator.feed``);
* ``sparse``: the same statistics as CSR event lists (``feed_sparse``) at
  several occupancies, against ``dense`` on the densified frames.

Usage::

    .venv/bin/python benchmarks/multitau_kernel.py            # default cases
    .venv/bin/python benchmarks/multitau_kernel.py --case 1mpx --frames 500
    .venv/bin/python benchmarks/multitau_kernel.py --case sparse

Measurements on the 2-core development VM (AMD EPYC, shared with other
jobs, so noisy) are recorded in :mod:`xpcs_kernel.multitau`
(``SPARSE_CROSSOVER``) and in the project notes.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from xpcs_kernel.multitau import MultiTauCorrelator


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def _row(name: str, work: float, best: float, median: float, compile_s: float) -> None:
    print(
        f"{name:<34} {work / best:>11.3e} {work / median:>11.3e} "
        f"{compile_s:>9.2f} {_peak_rss_mb():>9.0f}"
    )


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


def bench_dense(n_frames: int, n_pixels: int, repeat: int, label: str, rate: float) -> None:
    frames = _frames(n_frames, n_pixels, rate)
    t0 = time.perf_counter()
    MultiTauCorrelator(n_pixels).feed(frames[:16])
    compile_s = time.perf_counter() - t0

    def run() -> None:
        MultiTauCorrelator(n_pixels).feed(frames)

    best, median = _timed(run, repeat)
    _row(f"dense {label} x {n_frames}", n_frames * n_pixels, best, median, compile_s)


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
        best, median = _timed(partial(_feed_sparse, n_pixels, csr), repeat)
        _row(f"sparse occ={occ:g}", work, best, median, compile_s)
        best, median = _timed(partial(_feed_dense, n_pixels, frames), repeat)
        _row(f"  dense same frames occ={occ:g}", work, best, median, 0.0)


def bench_memory(n_frames: int, n_pixels: int, chunk: int) -> None:
    """Stream ``n_frames`` frames in chunks (one chunk re-fed): state size, time, RSS."""
    frames = _frames(chunk, n_pixels, 1.0)
    corr = MultiTauCorrelator(n_pixels)
    t0 = time.perf_counter()
    for _ in range(n_frames // chunk):
        corr.feed(frames)
    elapsed = time.perf_counter() - t0
    _row(
        f"stream {n_frames} x {n_pixels} (chunk {chunk})", n_frames * n_pixels, elapsed, elapsed, 0
    )
    state = corr.state()
    state_mb = sum(v.nbytes for v in state.values()) / 2**20
    _row(
        f"stream {n_frames} x {n_pixels} (chunk {chunk})", n_frames * n_pixels, elapsed, elapsed, 0
    )
    print(f"{'':<34} state() arrays: {state_mb:.0f} MiB for {corr.n_frames} frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", choices=["all", "256", "1mpx", "sparse", "memory"], default="all"
    )
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'case':<34} {'best px-fr/s':>11} {'median':>11} {'compile s':>9} {'RSS MB':>9}")
    if args.case in ("all", "256"):
        bench_dense(args.frames or 2000, 256 * 256, args.repeat, "256x256 uint8", 1.0)
    if args.case in ("all", "1mpx"):
        bench_dense(args.frames or 500, 1024 * 1024, args.repeat, "1024x1024 uint8", 1.0)
    if args.case in ("all", "sparse"):
        bench_sparse(args.frames or 1000, 256 * 256, args.repeat, [0.001, 0.01, 0.05, 0.2])
    if args.case == "memory":
        bench_memory(args.frames or 10_000, 1024 * 1024, 500)


if __name__ == "__main__":
    main()
