"""Roofline of the eager dense multi-tau kernel on this machine (issue 10, target 3).

Prints, side by side and in one run:

* the machine's float32 FMA rate from independent scalar chains (times the
  SIMD lanes: the vector peak);
* the machine's float32 multiply-add rate as numba reaches it on the kernel's
  own access pattern (multiply-adds into L1-resident float32 rows, one load
  and one store per multiply-add vector, every core busy), and its streaming
  read bandwidth (a sum over a 1 GiB uint8 array);
* what ``xpcs_kernel.multitau.multitau`` achieves on a 256x256 x N stack with a
  real ring q-map: pixel-frames/s, the multiply-adds per pixel-frame its delay
  scheme needs, hence multiply-adds/s, and bytes/s read.

Run: ``.venv/bin/python benchmarks/roofline.py [--frames N] [--repeat R]``. It is a
script, never a test; the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from numba import njit, prange

from xpcs_kernel.multitau import PixelBins, multitau
from xpcs_kernel.multitau.scheme import delay_list
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

_LANES = 256  # floats per chain tile: 1 KiB, stays in registers / L1


@njit(parallel=True, fastmath={"contract"}, cache=False)
def _fma_chains(n_iter: int, n_threads: int) -> float:  # pragma: no cover - timing kernel
    total = 0.0
    for t in prange(n_threads):
        a0 = np.full(_LANES, 1.0 + t, dtype=np.float32)
        a1 = a0 + np.float32(0.5)
        a2 = a0 + np.float32(0.25)
        a3 = a0 + np.float32(0.125)
        b = np.float32(0.999999)
        c = np.float32(1e-7)
        for _ in range(n_iter):
            for p in range(_LANES):
                a0[p] = a0[p] * b + c
                a1[p] = a1[p] * b + c
                a2[p] = a2[p] * b + c
                a3[p] = a3[p] * b + c
        total += float(a0.sum() + a1.sum() + a2.sum() + a3.sum())
    return total


@njit(parallel=True, fastmath={"contract"}, cache=False)
def _scalar_chains(n_iter: int, n_threads: int) -> float:  # pragma: no cover - timing kernel
    # 16 independent scalar FMA chains per thread: enough in flight to fill the
    # FMA pipes; the vector peak is this rate times the SIMD float32 lanes
    total = 0.0
    for t in prange(n_threads):
        a0 = np.float32(1.0 + 0.001 * 0 + t)
        a1 = np.float32(1.0 + 0.001 * 1 + t)
        a2 = np.float32(1.0 + 0.001 * 2 + t)
        a3 = np.float32(1.0 + 0.001 * 3 + t)
        a4 = np.float32(1.0 + 0.001 * 4 + t)
        a5 = np.float32(1.0 + 0.001 * 5 + t)
        a6 = np.float32(1.0 + 0.001 * 6 + t)
        a7 = np.float32(1.0 + 0.001 * 7 + t)
        a8 = np.float32(1.0 + 0.001 * 8 + t)
        a9 = np.float32(1.0 + 0.001 * 9 + t)
        a10 = np.float32(1.0 + 0.001 * 10 + t)
        a11 = np.float32(1.0 + 0.001 * 11 + t)
        a12 = np.float32(1.0 + 0.001 * 12 + t)
        a13 = np.float32(1.0 + 0.001 * 13 + t)
        a14 = np.float32(1.0 + 0.001 * 14 + t)
        a15 = np.float32(1.0 + 0.001 * 15 + t)
        b = np.float32(0.999999)
        c = np.float32(1e-7)
        for _ in range(n_iter):
            a0 = a0 * b + c
            a1 = a1 * b + c
            a2 = a2 * b + c
            a3 = a3 * b + c
            a4 = a4 * b + c
            a5 = a5 * b + c
            a6 = a6 * b + c
            a7 = a7 * b + c
            a8 = a8 * b + c
            a9 = a9 * b + c
            a10 = a10 * b + c
            a11 = a11 * b + c
            a12 = a12 * b + c
            a13 = a13 * b + c
            a14 = a14 * b + c
            a15 = a15 * b + c
        total += float(
            a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15
        )
    return total


@njit(parallel=True, cache=False)
def _read_sum(data: np.ndarray) -> int:  # pragma: no cover - timing kernel
    s = 0
    for i in prange(data.size):
        s += data[i]
    return s


def _best(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return best


def macs_per_pixel_frame(n_frames: int) -> float:
    """Multiply-adds per pixel-frame of the multi-tau scheme (pairs summed, all levels)."""
    return float(delay_list(n_frames).pair_counts.sum()) / n_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--lanes", type=int, default=8, help="float32 SIMD lanes (8: AVX2, 16: AVX-512)"
    )
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    print(f"# CPU threads {threads}, load average {os.getloadavg()}")

    _scalar_chains(10, threads)
    n_scalar = 4_000_000
    s = _best(lambda: _scalar_chains(n_scalar, threads), args.repeat)
    scalar_rate = 16 * n_scalar * threads / s
    n_iter = 20_000
    _fma_chains(10, threads)
    s = _best(lambda: _fma_chains(n_iter, threads), args.repeat)
    fma_rate = 4 * _LANES * n_iter * threads / s
    big = np.ones(1 << 30, dtype=np.uint8)
    _read_sum(big[:1024])
    s = _best(lambda: _read_sum(big), args.repeat)
    read_bw = big.nbytes / s

    spec = SyntheticSpec(n_frames=args.frames, shape=(256, 256), mean_count=2.0, seed=7)
    truth, frames = synthesize(spec)
    qm = truth.qmap
    flat = np.ascontiguousarray(frames.reshape(args.frames, -1))
    bins = PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic)
    n_px = qm.pixel_index.size
    macs = macs_per_pixel_frame(args.frames)
    print(
        f"# kernel: 256x256 x {args.frames}, {n_px} correlated pixels, "
        f"{macs:.1f} multiply-adds per pixel-frame (the delay scheme's pairs)"
    )
    print(f"{'what':<34}{'px-frames/s':>14}{'multiply-adds/s':>18}{'GB/s read':>12}")
    print(f"{'machine: f32 FMA, scalar chains':<34}{'-':>14}{scalar_rate:>18.3g}{'-':>12}")
    vector = scalar_rate * args.lanes
    print(f"{f'  x {args.lanes} SIMD lanes (vector peak)':<34}{'-':>14}{vector:>18.3g}{'-':>12}")
    print(f"{'machine: f32 multiply-add into L1':<34}{'-':>14}{fma_rate:>18.3g}{'-':>12}")
    print(f"{'machine: uint8 streaming read':<34}{'-':>14}{'-':>18}{read_bw / 1e9:>12.2f}")
    for dtype in (np.uint8, np.uint16):
        stack = flat.astype(dtype)
        multitau(stack, bins, pixel_index=qm.pixel_index, path="dense")
        s = _best(
            lambda st=stack: multitau(st, bins, pixel_index=qm.pixel_index, path="dense"),
            args.repeat,
        )
        rate = args.frames * n_px / s
        label = f"multitau() eager, {np.dtype(dtype).name}"
        print(f"{label:<34}{rate:>14.3g}{rate * macs:>18.3g}{stack.nbytes / s / 1e9:>12.2f}")
    print("# share reached = kernel multiply-adds/s / machine multiply-adds into L1")


if __name__ == "__main__":
    main()
