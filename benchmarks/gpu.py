"""GPU benchmark: our torch backend against boost_corr's GPU path and our numba kernel.

One run, one table, every code on the same frames::

    .venv/bin/python benchmarks/gpu.py            # 1 Mpx uint16 x 10,000 frames (a GPU node)
    .venv/bin/python benchmarks/gpu.py --quick    # 256x256 x 1,000: a couple of minutes on CPU

Workloads (``--quick`` sizes in brackets):

* ``dense``: H x W uint16 frames, Poisson counts of mean 1, 1024x1024 x 10,000
  [256x256 x 1,000], 36 dynamic bins of rings: multi-tau;
* ``sparse``: the same detector and frame count at 0.01 photons/pixel/frame,
  as CSR event lists (ours) or dense frames (boost_corr's GPU path is dense);
* ``twotime``: 256x256 x 10,000 [128x128 x 1,000], 36 dynamic bins, every bin;
* ``command`` (opt-in, ``--workload command``): the whole ``correlate`` (read an
  LZ4 HDF5 file of the ``dense`` frames, SAXS, multi-tau, fit, write the result
  file) with each backend, in this process after a small warm-up run; it
  first writes that file (20 GB at full size) in a temporary folder
  (``--tmp``).

The frames cycle through a pool of ``--pool`` distinct chunks of ``--chunk``
frames (the work does not depend on the values; 20 GB of distinct frames
would not fit host memory). Figures per row: seconds; pixel-frames/s (frames x
detector pixels / seconds) with the frames already in device memory
(``device``) and streamed from host memory through pinned buffers (``host``);
the host-to-device GB/s achieved while streaming and, once, the raw pinned
copy bandwidth; the peak device memory; and the largest relative difference
of g2 from our numba kernel on the same frames (a check, not a speed).
boost_corr runs in ``.venv-bench`` (``bash benchmarks/setup_peers.sh``) through
``peers.py boost-gpu``, only where torch sees a CUDA (or ROCm) device; its
rows read ``n/a (no CUDA device)`` elsewhere.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_data import _rings, _write_qmap
from bench_proc import peers_available, run_peer

from xpcs_kernel.io import write_hdf5_frames
from xpcs_kernel.multitau import MultiTauCorrelator, PixelBins
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.qmap import QMap, read_qmap
from xpcs_kernel.torch_backend.device import DeviceInfo, import_torch, index_tensor, resolve_device
from xpcs_kernel.torch_backend.multitau import TorchMultiTau
from xpcs_kernel.torch_backend.transfer import Stager
from xpcs_kernel.torch_backend.twotime import TorchTwoTime
from xpcs_kernel.twotime import TwoTimeCorrelator

FULL = {
    "command": (1024, 1024, 10_000),
    "dense": (1024, 1024, 10_000),
    "sparse": (1024, 1024, 10_000),
    "twotime": (256, 256, 10_000),
}
QUICK = {
    "command": (256, 256, 1_000),
    "dense": (256, 256, 1_000),
    "sparse": (256, 256, 1_000),
    "twotime": (128, 128, 1_000),
}
COLUMNS = ("workload", "code", "feed", "s", "pixel-frames/s", "H2D GB/s", "peak MiB", "vs numba")


class Bench:
    """The device, the torch module and the rows printed at the end."""

    def __init__(self, info: DeviceInfo, chunk: int, pool: int, workdir: Path) -> None:
        self.torch = import_torch()
        self.info = info
        self.chunk = chunk
        self.pool = pool
        self.workdir = workdir
        self.rows: list[tuple[str, ...]] = []

    def timed(self, fn: Callable[[], Any]) -> tuple[float, Any, int | None]:
        """Seconds (device work included), result and peak device bytes of ``fn()``."""
        self.info.synchronize()
        self.info.reset_peak()
        t0 = time.perf_counter()
        out = fn()
        self.info.synchronize()
        return time.perf_counter() - t0, out, self.info.peak_bytes()

    def row(
        self, workload: str, code: str, feed: str, seconds: float, work: float, **extra: Any
    ) -> None:
        gbs = extra.get("h2d_bytes")
        peak = extra.get("peak")
        diff = extra.get("diff")
        self.rows.append(
            (
                workload,
                code,
                feed,
                f"{seconds:.3f}",
                f"{work / seconds:.3g}",
                "" if gbs is None else f"{gbs / seconds / 1e9:.2f}",
                "" if peak is None else f"{peak / 2**20:.0f}",
                "" if diff is None else f"{diff:.1e}",
            )
        )

    def missing(self, workload: str, code: str, feed: str, why: str) -> None:
        self.rows.append((workload, code, feed, f"n/a ({why})", "", "", "", ""))


def make_qmap(workdir: Path, height: int, width: int) -> tuple[Path, QMap]:
    dq, sq = _rings(height, width, 36, 2)
    path = workdir / f"qmap_{height}x{width}.h5"
    _write_qmap(path, dq, sq)
    return path, read_qmap(path)


def make_pool(height: int, width: int, bench: Bench, mean: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(mean, (bench.pool, bench.chunk, height, width)).astype(np.uint16)


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    return float(np.max(np.abs(a[ok] / b[ok] - 1.0))) if ok.any() else float("nan")


def numba_multitau(qm: QMap, feed: Callable[[Any], None], n_chunks: int) -> Any:
    """Our numba kernel; ``feed(corr)`` gives it the next chunk (dense or events)."""
    corr = MultiTauCorrelator(qm.shape[0] * qm.shape[1], pixel_index=qm.pixel_index)
    for _ in range(n_chunks):
        feed(corr)
    return corr.g2(PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic))


def torch_multitau(bench: Bench, qm: QMap, feed: Callable[[int], Any], n_chunks: int) -> Any:
    torch = bench.torch
    pix = index_tensor(qm.pixel_index, bench.info.device)
    corr = TorchMultiTau(qm.pixel_index.size, device=bench.info.device)
    for i in range(n_chunks):
        corr.feed(feed(i).index_select(1, pix).to(torch.float32))
    return corr.g2(PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic))


def h2d_bandwidth(bench: Bench, nbytes: int) -> float | None:
    """Raw pinned host-to-device copy bandwidth (GB/s), None on CPU."""
    torch = bench.torch
    if bench.info.accelerator is None:
        return None
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    dev = torch.empty(nbytes, dtype=torch.uint8, device=bench.info.device)
    dev.copy_(host, non_blocking=True)
    seconds, _, _ = bench.timed(lambda: [dev.copy_(host, non_blocking=True) for _ in range(10)])
    return 10 * nbytes / seconds / 1e9


def boost_rows(
    bench: Bench, workload: str, pool: np.ndarray, qmap: Path, n: int, mode: str
) -> None:
    torch = bench.torch
    feeds = ("device",) if mode == "twotime" else ("device", "host")
    if not torch.cuda.is_available():
        for feed in feeds:
            bench.missing(workload, "boost_corr GPU", feed, "no CUDA device")
        return
    why = peers_available()
    if why is None:
        pool_path = bench.workdir / f"pool_{workload}.npy"
        np.save(pool_path, pool)
        spec = {"pool": str(pool_path), "n_frames": n, "qmap": str(qmap), "mode": mode}
        proc = run_peer("boost-gpu", {**spec, "device": "cuda"})
        if proc.rc == 0 and proc.summary is not None:
            s = proc.summary
            work = float(s["n_frames"]) * pool.shape[2] * pool.shape[3]
            for feed in feeds:
                bench.row(
                    workload,
                    "boost_corr GPU",
                    feed,
                    s["timings"][feed],
                    work,
                    peak=s["peak_device_bytes"],
                )
            return
        why = proc.failure()
    for feed in feeds:
        bench.missing(workload, "boost_corr GPU", feed, why)


def multitau_workload(
    bench: Bench, name: str, shape: tuple[int, int, int], occupancy: float
) -> None:
    height, width, n = shape
    qmap_path, qm = make_qmap(bench.workdir, height, width)
    pool = make_pool(height, width, bench, occupancy, seed=3)
    n_chunks = n // bench.chunk
    work = float(n_chunks * bench.chunk * height * width)
    flat = [c.reshape(bench.chunk, -1) for c in pool]
    stager = Stager(bench.info)
    count = iter(range(1 << 62))
    numba_feed: Callable[[Any], None] = lambda corr: corr.feed(flat[next(count) % len(flat)])  # noqa: E731
    if occupancy >= 0.5:  # dense frames
        resident = [stager.dense(c) for c in flat]
        host_feed: Callable[[int], Any] = lambda i: stager.dense(flat[i % len(flat)])  # noqa: E731
    else:  # events: CSR on the host, scattered into frames on the device
        events = [np.nonzero(c) for c in flat]
        csr = []
        for c, (rows, cols) in zip(flat, events, strict=True):
            indptr = np.zeros(bench.chunk + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=bench.chunk), out=indptr[1:])
            csr.append((indptr, cols, c[rows, cols].astype(np.uint32)))
        resident = [stager.sparse(bench.chunk, height * width, *e) for e in csr]
        host_feed = lambda i: stager.sparse(bench.chunk, height * width, *csr[i % len(csr)])  # noqa: E731
        numba_feed = lambda corr: corr.feed_sparse(bench.chunk, *csr[next(count) % len(csr)])  # noqa: E731
    seconds, ref, _ = bench.timed(lambda: numba_multitau(qm, numba_feed, n_chunks))
    bench.row(name, "ours numba", "host", seconds, work)
    torch_multitau(bench, qm, lambda i: resident[i % len(resident)], 2)  # warm-up (not timed)
    seconds, g2, peak = bench.timed(
        lambda: torch_multitau(bench, qm, lambda i: resident[i % len(resident)], n_chunks)
    )
    bench.row(name, "ours torch", "device", seconds, work, peak=peak, diff=rel_diff(g2.g2, ref.g2))
    moved0 = stager.bytes_moved
    seconds, g2, peak = bench.timed(lambda: torch_multitau(bench, qm, host_feed, n_chunks))
    moved = stager.bytes_moved - moved0 if bench.info.accelerator is not None else None
    bench.row(
        name,
        "ours torch",
        "host",
        seconds,
        work,
        peak=peak,
        h2d_bytes=moved,
        diff=rel_diff(g2.g2, ref.g2),
    )
    # boost_corr's GPU path takes dense frames (of the same pool)
    boost_rows(bench, name, pool, qmap_path, n_chunks * bench.chunk, "multitau")


def twotime_workload(bench: Bench, shape: tuple[int, int, int]) -> None:
    torch = bench.torch
    height, width, n = shape
    qmap_path, qm = make_qmap(bench.workdir, height, width)
    pool = make_pool(height, width, bench, 1.0, seed=5)
    n_chunks = n // bench.chunk
    n_out = n_chunks * bench.chunk
    work = float(n_out * height * width)
    flat = [c.reshape(bench.chunk, -1) for c in pool]
    dyn = qm.dynamic_of_static[qm.static_index]

    def numba() -> Any:
        with TwoTimeCorrelator(
            height * width, pixel_index=qm.pixel_index, dynamic_index=dyn,
            n_dynamic=qm.n_dynamic, static_index=qm.static_index, memory_budget=2**62,
        ) as corr:  # fmt: skip
            for i in range(n_chunks):
                corr.feed(flat[i % len(flat)])
            return corr.result()

    seconds, ref, _ = bench.timed(numba)
    bench.row("twotime", "ours numba", "host", seconds, work)
    pix = index_tensor(qm.pixel_index, bench.info.device)
    resident = [Stager(bench.info).dense(c).index_select(1, pix).to(torch.float32) for c in flat]

    def ours() -> Any:
        corr = TorchTwoTime(
            dyn, n_dynamic=qm.n_dynamic, device=bench.info.device, budget=bench.info.budget,
            n_frames=n_out, static_index=qm.static_index,
        )  # fmt: skip
        for i in range(n_chunks):
            corr.feed(resident[i % len(resident)])
        return corr.result()

    seconds, got, peak = bench.timed(ours)
    bench.row(
        "twotime", "ours torch", "device", seconds, work, peak=peak, diff=rel_diff(got.g2, ref.g2)
    )
    boost_rows(bench, "twotime", pool, qmap_path, n_out, "twotime")


def command_workload(bench: Bench, shape: tuple[int, int, int]) -> None:
    height, width, n = shape
    qmap_path, _ = make_qmap(bench.workdir, height, width)
    pool = make_pool(height, width, bench, 1.0, seed=9)
    n_chunks = n // bench.chunk
    raw = bench.workdir / "raw.h5"
    write_hdf5_frames(raw, (pool[i % len(pool)] for i in range(n_chunks)), compression="lz4")
    work = float(n_chunks * bench.chunk * height * width)
    small = bench.workdir / "small.h5"
    write_hdf5_frames(small, pool[0], compression="lz4")
    warnings.simplefilter("ignore", RuntimeWarning)  # Poisson noise: nothing to fit in g2
    for code, backend in (("ours numba", "numba"), ("ours torch", "torch")):
        device = str(bench.info.device) if backend == "torch" else "auto"
        opts = CorrelationOptions(frame_time=1e-3, backend=backend, device=device)  # type: ignore[arg-type]
        correlate_file(small, qmap_path, bench.workdir / "warm.h5", options=opts)
        out = bench.workdir / f"{backend}.h5"
        run = functools.partial(correlate_file, raw, qmap_path, out, options=opts)
        seconds, _, peak = bench.timed(run)
        diff = None if backend == "numba" else rel_diff(_g2(out), _g2(bench.workdir / "numba.h5"))
        bench.row("command", code, "file", seconds, work, peak=peak, diff=diff)
    raw.unlink()


def _g2(path: Path) -> np.ndarray:
    from xpcs_kernel.result import read_result

    g2 = read_result(path).g2
    assert g2 is not None
    return np.asarray(g2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (CPU: a couple of minutes)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or xpu[:N]")
    parser.add_argument("--chunk", type=int, default=64, help="frames per chunk (default 64)")
    parser.add_argument("--pool", type=int, default=4, help="distinct chunks cycled (default 4)")
    parser.add_argument(
        "--workload",
        action="append",
        choices=sorted(FULL),
        help="repeatable; default dense, sparse, twotime",
    )
    parser.add_argument("--tmp", default=None, help="folder of the temporary files")
    args = parser.parse_args(argv)
    info = resolve_device(args.device)
    torch = import_torch()
    sizes = QUICK if args.quick else FULL
    print(f"device: {info.name} ({info.device}), torch {torch.__version__}")
    if info.accelerator is None:
        print("NO GPU: torch sees no CUDA/ROCm/XPU device; the torch rows ran on CPU torch")
        print("(correctness and plumbing only: these figures say nothing about GPU speed)")
    with tempfile.TemporaryDirectory(prefix="xpcs-gpu-bench-", dir=args.tmp) as tmp:
        bench = Bench(info, args.chunk, args.pool, Path(tmp))
        h, w, _ = sizes["dense"]
        raw = h2d_bandwidth(bench, bench.chunk * h * w * 2)
        print("pinned H2D copy: " + ("n/a (no GPU)" if raw is None else f"{raw:.2f} GB/s"))
        for name in args.workload or ["dense", "sparse", "twotime"]:
            print(
                f"running {name} {sizes[name][0]}x{sizes[name][1]} x {sizes[name][2]} frames ..."
            )
            if name == "twotime":
                twotime_workload(bench, sizes[name])
            elif name == "command":
                command_workload(bench, sizes[name])
            else:
                multitau_workload(bench, name, sizes[name], 1.0 if name == "dense" else 0.01)
    widths = [max(len(str(r[i])) for r in [COLUMNS, *bench.rows]) for i in range(len(COLUMNS))]
    for r in [COLUMNS, *bench.rows]:
        print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(r)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
