"""Benchmark our XPCS kernel against peer codes (boost_corr on CPU, scikit-beam).

Run with the project's environment; peers run in ``.venv-bench`` (see
``benchmarks/setup_peers.sh``) and are left out when it is missing::

    .venv/bin/python benchmarks/kernel.py [--quick] [--workload NAME ...]

Every measurement runs in its own fresh process (ours: this script with
``--child``; peers: ``benchmarks/peers.py``), so peak RSS is per code. All
codes see the same synthetic data, written once to ``bench-data/`` (git
ignored) and reused. A missing piece is reported as ``n/a (reason)`` in the
table instead of stopping the run. ``benchmarks/README.md`` explains the
columns and holds measured numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import MARKER, emit, read_qmap_arrays

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(__file__).resolve().with_name("peers.py")
BENCH_BIN = ROOT / ".venv-bench" / "bin"
OUR_CLI = Path(sys.executable).parent / "xpcs-flows"
WORKLOADS = ("dense", "mpx", "command", "jit", "twotime", "sparse", "rss10k")
DEFAULT_WORKLOADS = ("dense", "mpx", "command", "jit", "twotime", "sparse")


# =========================================================================
# Synthetic data (REFERENCE.md section 6), written once and cached
# =========================================================================
@dataclass(frozen=True)
class DataSpec:
    """A synthetic speckle data set with a known g2.

    Every pixel carries a complex AR(1) field ``E_t = a E_{t-1} + sqrt(1 -
    a^2) n_t`` with ``a = exp(-1 / tau_c)``; counts are Poisson with mean
    ``m ((1 - c) |E|^2 + c)``, so for integer ``tau >= 1``
    ``g2 = 1 + (1 - c)^2 exp(-2 tau / tau_c)``. Dynamic bins are rings around
    the detector centre, each split in ``n_sub`` static rings; ``tau_c``
    is constant inside a dynamic bin and falls as ``1 / r^2`` (Brownian
    motion). The mean intensity falls with radius, so static and dynamic
    normalisations differ. Detectors wider than ``tile`` pixels repeat a
    ``tile x tile`` field (independent Poisson noise everywhere); the
    analytic g2 then no longer holds per ring and is not reported.
    """

    n_frames: int
    height: int
    width: int
    n_dynamic: int = 36
    n_sub: int = 2
    mean: float = 1.0
    contrast_c: float = 0.5
    tau_c_max: float = 100.0
    tile: int = 256
    seed: int = 7

    @property
    def key(self) -> str:
        return (
            f"n{self.n_frames}_{self.height}x{self.width}_d{self.n_dynamic}s{self.n_sub}"
            f"_m{self.mean:g}_c{self.contrast_c:g}_t{self.tau_c_max:g}_T{self.tile}_s{self.seed}"
        )

    @property
    def tiled(self) -> bool:
        return self.height > self.tile or self.width > self.tile

    @property
    def pixel_frames(self) -> int:
        return self.n_frames * self.height * self.width

    def label(self) -> str:
        return f"{self.height}x{self.width}x{self.n_frames}"


def _rings(height: int, width: int, n_dyn: int, n_sub: int) -> tuple[np.ndarray, np.ndarray]:
    """Dynamic and static ring maps (1-based, 0 = masked) of an (H, W) detector."""
    yy, xx = np.mgrid[0:height, 0:width]
    r = np.hypot(yy - (height - 1) / 2.0, xx - (width - 1) / 2.0)
    r_min, r_max = 4.0, min(height, width) / 2.0 - 1.0
    inside = (r >= r_min) & (r < r_max)
    frac = np.clip((r - r_min) / (r_max - r_min), 0.0, 1.0 - 1e-12)
    sq = np.where(inside, (frac * n_dyn * n_sub).astype(np.int64) + 1, 0)
    dq = np.where(inside, (sq - 1) // n_sub + 1, 0)
    return dq, sq


def tau_c_of_bins(spec: DataSpec) -> np.ndarray:
    """Correlation time (frames) of each dynamic bin: ``tau_c_max ((r0 + 20) / (r + 20))^2``.

    ``r`` is the ring's mean radius in pixels of the (un-tiled) detector, so
    tau_c falls roughly as 1/q^2 (Brownian motion) without becoming shorter
    than a few frames in the outer rings.
    """
    side = min(spec.height, spec.width, spec.tile)
    r_min, r_max = 4.0, side / 2.0 - 1.0
    r = r_min + (np.arange(spec.n_dynamic) + 0.5) * (r_max - r_min) / spec.n_dynamic
    return spec.tau_c_max * ((r[0] + 20.0) / (r + 20.0)) ** 2


def theory_g2(spec: DataSpec, delays: np.ndarray) -> np.ndarray:
    """Analytic g2 (n_tau, n_dynamic) for integer delays at multi-tau level 0."""
    beta = (1.0 - spec.contrast_c) ** 2
    tau_c = tau_c_of_bins(spec)
    return 1.0 + beta * np.exp(-2.0 * delays[:, None] / tau_c[None, :])


def iter_frames(spec: DataSpec, chunk: int = 100) -> Iterator[np.ndarray]:
    """Yield the data set as uint8 blocks ``(n, H, W)``."""
    rng = np.random.default_rng(spec.seed)
    th, tw = min(spec.height, spec.tile), min(spec.width, spec.tile)
    dq_t, _ = _rings(th, tw, spec.n_dynamic, spec.n_sub)
    tau_t = np.where(dq_t > 0, tau_c_of_bins(spec)[np.maximum(dq_t - 1, 0)], 10.0)
    a = np.exp(-1.0 / tau_t).astype(np.float32).ravel()
    b = np.sqrt(1.0 - a * a).astype(np.float32) / np.float32(np.sqrt(2.0))
    yy, xx = np.mgrid[0 : spec.height, 0 : spec.width]
    r = np.hypot(yy - (spec.height - 1) / 2.0, xx - (spec.width - 1) / 2.0)
    profile = 1.0 / (1.0 + (r / (0.25 * min(spec.height, spec.width))) ** 2)
    m = (profile * spec.mean / profile.mean()).astype(np.float32)
    re = rng.standard_normal(th * tw, dtype=np.float32) / np.float32(np.sqrt(2.0))
    im = rng.standard_normal(th * tw, dtype=np.float32) / np.float32(np.sqrt(2.0))
    reps = (math.ceil(spec.height / th), math.ceil(spec.width / tw))
    c = np.float32(spec.contrast_c)
    for f0 in range(0, spec.n_frames, chunk):
        n = min(chunk, spec.n_frames - f0)
        block = np.empty((n, spec.height, spec.width), dtype=np.uint8)
        for i in range(n):
            noise = rng.standard_normal((2, th * tw), dtype=np.float32)
            re = a * re + b * noise[0]
            im = a * im + b * noise[1]
            inten = (re * re + im * im).reshape(th, tw)
            if reps != (1, 1):
                inten = np.tile(inten, reps)[: spec.height, : spec.width]
            mu = m * ((1 - c) * inten + c)
            block[i] = np.minimum(rng.poisson(mu), 255)
        yield block


def _write_qmap(path: Path, dq: np.ndarray, sq: np.ndarray) -> None:
    """Write a q-map in the pySimpleMask ``/qmap`` layout (what boost_corr and we read)."""
    import h5py

    n_dyn, n_sta = int(dq.max()), int(sq.max())
    height, width = dq.shape
    pixel_size, distance, energy = 75e-6, 5.0, 10.0
    wavelength = 12.398419843320026 / energy
    q_per_px = 4 * np.pi / wavelength * pixel_size / distance / 2  # small angle, 1/A
    r_edges = np.linspace(4.0, min(height, width) / 2.0 - 1.0, n_sta + 1)
    sq_c = 0.5 * (r_edges[1:] + r_edges[:-1]) * q_per_px
    dq_c = sq_c.reshape(n_dyn, -1).mean(axis=1)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        g = f.create_group("qmap")
        g["dynamic_roi_map"] = dq.astype(np.uint32)
        g["static_roi_map"] = sq.astype(np.uint32)
        g["mask"] = (sq > 0).astype(np.int32)
        g["beam_center_x"] = (width - 1) / 2.0
        g["beam_center_y"] = (height - 1) / 2.0
        g["pixel_size"] = pixel_size
        g["energy"] = energy
        g["detector_distance"] = distance
        g["map_names"] = np.array([b"q", b"phi"])
        g["map_units"] = np.array([b"1/A", b"deg"])
        for part, centres in (("dynamic", dq_c), ("static", sq_c)):
            g[f"{part}_num_pts"] = np.array([centres.size, 1], dtype=np.int64)
            g[f"{part}_v_list_dim0"] = centres
            g[f"{part}_v_list_dim1"] = np.array([0.0])
            g[f"{part}_index_mapping"] = np.arange(centres.size, dtype=np.int64)
        g.attrs["version"] = "bench-0"
    tmp.replace(path)


def _write_metadata(path: Path, spec: DataSpec) -> None:
    """A minimal NeXus metadata file (boost_corr's CLI copies it into its result)."""
    import h5py

    with h5py.File(path, "w") as f:
        f["/entry/schema_version"] = "1.0"
        f["/entry/start_time"] = "2026-01-01T00:00:00"
        f["/entry/instrument/detector_1/frame_time"] = 1e-3
        f["/entry/instrument/detector_1/count_time"] = 1e-3
        f["/entry/instrument/incident_beam/incident_energy"] = 10.0
        f["/entry/instrument/detector_1/x_pixel_size"] = 75e-6
        f.attrs["frames"] = spec.n_frames


def _write_hdf5(path: Path, blocks: Iterator[np.ndarray], spec: DataSpec) -> None:
    """Frames at ``/entry/data/data`` with the LZ4 filter (HDF5 filter 32004)."""
    import h5py
    import hdf5plugin

    shape = (spec.n_frames, spec.height, spec.width)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        ds = f.create_dataset(
            "/entry/data/data",
            shape=shape,
            dtype=np.uint8,
            chunks=(1, spec.height, spec.width),
            **hdf5plugin.LZ4(),
        )
        f0 = 0
        for block in blocks:
            ds[f0 : f0 + block.shape[0]] = block
            f0 += block.shape[0]
        f["/entry/instrument/detector_1/frame_time"] = 1e-3
        f["/entry/instrument/detector_1/count_time"] = 1e-3
    tmp.replace(path)


def _write_rigaku(path: Path, blocks: Iterator[np.ndarray]) -> None:
    """Rigaku 64-bit sparse words: frame << 40 | pixel << 16 | count."""
    tmp = path.with_suffix(".tmp")
    f0 = 0
    last = None
    with open(tmp, "wb") as out:
        for block in blocks:
            n = block.shape[0]
            fr, px = np.nonzero(block.reshape(n, -1))
            cnt = block.reshape(n, -1)[fr, px].astype(np.uint64)
            words = (
                ((fr.astype(np.uint64) + np.uint64(f0)) << np.uint64(40))
                | (px.astype(np.uint64) << np.uint64(16))
                | cnt
            )
            words.astype("<u8").tofile(out)
            last = None if block[-1].any() else f0 + n - 1
            f0 += n
        if last is not None:  # keep the frame count: one zero-count event in the last frame
            np.array([np.uint64(last) << np.uint64(40)], dtype="<u8").tofile(out)
    tmp.replace(path)


@dataclass
class DataFiles:
    """Paths of one cached data set."""

    spec: DataSpec
    folder: Path

    @property
    def frames(self) -> Path:
        return self.folder / "frames.npy"

    @property
    def qmap(self) -> Path:
        return self.folder / "qmap.h5"

    @property
    def raw_h5(self) -> Path:
        return self.folder / "raw.h5"

    @property
    def raw_bin(self) -> Path:
        return self.folder / "raw.bin"

    @property
    def raw_imm(self) -> Path:
        return self.folder / "raw.imm"

    @property
    def meta(self) -> Path:
        return self.folder / "raw_metadata.hdf"


def prepare(
    spec: DataSpec,
    data_dir: Path,
    *,
    npy: bool = True,
    h5: bool = False,
    rigaku: bool = False,
    imm: bool = False,
    log: Callable[[str], None] = print,
) -> DataFiles:
    """Generate (once) the files of ``spec`` that a workload needs."""
    files = DataFiles(spec, data_dir / spec.key)
    files.folder.mkdir(parents=True, exist_ok=True)
    if not files.qmap.exists():
        dq, sq = _rings(spec.height, spec.width, spec.n_dynamic, spec.n_sub)
        _write_qmap(files.qmap, dq, sq)
    if not files.meta.exists():
        _write_metadata(files.meta, spec)
    wanted = [
        (npy, files.frames),
        (h5, files.raw_h5),
        (rigaku, files.raw_bin),
        (imm, files.raw_imm),
    ]
    missing = [p for want, p in wanted if want and not p.exists()]
    if not missing:
        return files
    t0 = time.perf_counter()
    log(f"  generating {spec.label()} ({', '.join(p.name for p in missing)}) ...")
    if files.frames.exists():
        mm = np.load(files.frames, mmap_mode="r")
        blocks: Iterator[np.ndarray] = (
            np.asarray(mm[i : i + 100]) for i in range(0, spec.n_frames, 100)
        )
        source = list(blocks) if len(missing) > 1 else blocks
    elif npy:
        arr = np.concatenate(list(iter_frames(spec)))
        np.save(files.frames, arr)
        source = [arr[i : i + 100] for i in range(0, spec.n_frames, 100)]
    else:
        source = iter_frames(spec)
        if len(missing) > 1:
            source = list(source)
    for path in missing:
        if path == files.raw_h5:
            _write_hdf5(path, iter(source), spec)
        elif path == files.raw_bin:
            _write_rigaku(path, iter(source))
        elif path == files.raw_imm:
            from xpcs_kernel.io import write_imm  # sparse IMM (flag 6); ours, checked by tests

            write_imm(path, iter(source), sparse=True, frame_time=1e-3)
    log(f"  ... {time.perf_counter() - t0:.1f} s")
    return files


# =========================================================================
# Processes: one per measurement, peak RSS from wait4
# =========================================================================
@dataclass
class ProcResult:
    """Outcome of one measured process."""

    rc: int
    wall: float
    rss_kib: int
    stdout: str
    stderr: str
    summary: dict[str, Any] | None

    def failure(self) -> str:
        tail = [ln for ln in self.stderr.strip().splitlines() if ln.strip()][-1:]
        return f"exit {self.rc}: {tail[0][:160] if tail else 'no message'}"


GNU_TIME = Path("/usr/bin/time")
_MAXRSS = re.compile(r"^BENCH_MAXRSS_KIB=(\d+)$", re.MULTILINE)


def run_process(
    cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600.0
) -> ProcResult:
    """Run ``cmd``: wall time and the peak RSS of its largest process.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``) when present:
    a process forked straight from this (large) harness would inherit the
    harness's high-water mark in ``ru_maxrss``. Without GNU time, ``wait4``'s
    value is used and is only an upper bound.
    """
    full = [str(GNU_TIME), "-f", "BENCH_MAXRSS_KIB=%M", *cmd] if GNU_TIME.exists() else cmd
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env, cwd=ROOT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    found = _MAXRSS.findall(stderr)
    rss = int(found[-1]) if found else int(usage.ru_maxrss)
    stderr = _MAXRSS.sub("", stderr)
    if found and proc.returncode != 0:  # GNU time reports the child's failure itself
        stderr = "\n".join(ln for ln in stderr.splitlines() if "Command exited" not in ln)
    summary = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            summary = json.loads(line[len(MARKER) :])
            break
    return ProcResult(proc.returncode, wall, rss, stdout, stderr, summary)


def peers_available() -> str | None:
    """None when the peer environment works, else the reason it does not."""
    if not (BENCH_BIN / "python").exists():
        return "no .venv-bench: run benchmarks/setup_peers.sh"
    return None


def run_peer(task: str, spec: dict[str, Any], timeout: float = 3600.0) -> ProcResult:
    return run_process(
        [str(BENCH_BIN / "python"), str(PEERS), task, json.dumps(spec)], timeout=timeout
    )


def run_ours(
    task: str, spec: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 3600.0
) -> ProcResult:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", task, json.dumps(spec)]
    return run_process(cmd, env=env, timeout=timeout)


# =========================================================================
# Child tasks for our kernel (run in a fresh .venv process)
# =========================================================================
def _our_bins(qmap_path: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """(PixelBins, pixel_index, dynamic index per pixel) from our q-map reader."""
    from xpcs_kernel.multitau import PixelBins
    from xpcs_kernel.qmap import read_qmap

    q = read_qmap(qmap_path)
    bins = PixelBins(q.static_index, q.dynamic_of_static, q.n_dynamic)
    return bins, q.pixel_index, q.dynamic_of_static[q.static_index]


def child_multitau(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: multi-tau of frames in memory (first call on 64 frames, then timed)."""
    t0 = time.perf_counter()
    from xpcs_kernel.multitau import multitau

    t_import = time.perf_counter() - t0
    frames = np.load(spec["frames"])  # read into memory (a memmap would page in during the timer)
    bins, pixel_index, _ = _our_bins(spec["qmap"])
    path = spec.get("path", "auto")
    small = frames[:64]
    t0 = time.perf_counter()
    multitau(small, bins, pixel_index=pixel_index, path=path)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    multitau(small, bins, pixel_index=pixel_index, path=path)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = multitau(frames, bins, pixel_index=pixel_index, path=path)
    t_corr = time.perf_counter() - t0
    np.savez(spec["out"], delays=res.delays, g2=res.g2)
    return {
        "timings": {
            "import": t_import,
            "first_small": t_first,
            "warm_small": t_warm,
            "correlate": t_corr,
        }
    }


def child_jit(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: import, first call and warm call on a tiny stack (compile vs cache)."""
    t0 = time.perf_counter()
    from xpcs_kernel.multitau import PixelBins, multitau

    t_import = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    frames = rng.poisson(1.0, size=(200, 64 * 64)).astype(np.uint8)
    static = np.arange(64 * 64) % 8
    bins = PixelBins(static, np.arange(8) // 2, 4)
    out = {"import": t_import}
    for path in spec.get("paths", ["dense", "sparse"]):
        t0 = time.perf_counter()
        multitau(frames, bins, path=path)
        out[f"first_{path}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        multitau(frames, bins, path=path)
        out[f"warm_{path}"] = time.perf_counter() - t0
    return {"timings": out}


def child_twotime(spec: dict[str, Any]) -> dict[str, Any]:
    """Ours: two-time of frames in memory, all dynamic bins."""
    from xpcs_kernel.twotime import twotime

    frames = np.load(spec["frames"])  # read into memory (a memmap would page in during the timer)
    bins, pixel_index, dyn = _our_bins(spec["qmap"])
    n_dyn = int(dyn.max()) + 1
    # smooth by the static bin's time mean, as the pipeline does (per-pixel means bias C low)
    kw = {
        "pixel_index": pixel_index,
        "dynamic_index": dyn,
        "n_dynamic": n_dyn,
        "static_index": bins.static_index,
    }
    t0 = time.perf_counter()
    twotime(frames[:64], bins=[0], **kw)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = twotime(frames, **kw)
    t_corr = time.perf_counter() - t0
    keep = [int(b) for b in spec.get("keep_c2", [0])]
    np.savez(
        spec["out"],
        g2=res.g2,
        processed_bins=res.bins,
        c2_kept=np.stack([res.c2[b] for b in keep]),
        c2_kept_bins=np.asarray(keep),
    )
    return {"timings": {"first_small": t_first, "correlate": t_corr}}


CHILD_TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "multitau": child_multitau,
    "jit": child_jit,
    "twotime": child_twotime,
}


# =========================================================================
# Results, comparison, table
# =========================================================================
@dataclass
class Row:
    """One line of the table: one code on one workload."""

    workload: str
    code: str
    size: str = ""
    pixel_frames: int = 0
    corr_s: float | None = None
    total_s: float | None = None
    rss_mib: float | None = None
    jit_s: float | None = None
    dg2_short: float | None = None
    dg2_all: float | None = None
    dtheory: float | None = None
    note: str = ""

    @property
    def corr_rate(self) -> float | None:
        return self.pixel_frames / self.corr_s if self.corr_s and self.pixel_frames else None

    @property
    def total_rate(self) -> float | None:
        return self.pixel_frames / self.total_s if self.total_s and self.pixel_frames else None


@dataclass
class G2:
    """Delays (frames) and g2 (n_tau, n_dynamic) of one code."""

    delays: np.ndarray
    g2: np.ndarray


def load_g2(path: Path) -> G2:
    with np.load(path) as z:
        return G2(np.asarray(z["delays"], np.int64), np.asarray(z["g2"], np.float64))


def skbeam_to_dynamic(path: Path, qmap: Path) -> G2:
    """Reduce scikit-beam's per-static-bin g2 to dynamic bins (mean of static g2)."""
    with np.load(path) as z:
        delays, g2s, labels = z["delays"], z["g2_static"], z["static_labels"]
    maps = read_qmap_arrays(str(qmap))
    n_dyn = int(maps["dqmap"].max())
    dyn_of = np.zeros(int(maps["sqmap"].max()) + 1, dtype=np.int64)
    sel = maps["sqmap"] > 0
    dyn_of[maps["sqmap"][sel]] = maps["dqmap"][sel]
    out = np.full((g2s.shape[0], n_dyn), np.nan)
    with np.errstate(invalid="ignore"):
        for d in range(1, n_dyn + 1):
            cols = np.flatnonzero(dyn_of[labels] == d)
            if cols.size:
                out[:, d - 1] = np.nanmean(g2s[:, cols], axis=1)
    return G2(np.asarray(delays, np.int64), out)


def g2_diff(ref: G2, other: G2, max_delay: int | None = None) -> float | None:
    """max |g2_ref - g2_other| over common delays >= 1 and common dynamic bins."""
    common = np.intersect1d(ref.delays, other.delays)
    common = common[common >= 1]
    if max_delay is not None:
        common = common[common <= max_delay]
    if common.size == 0:
        return None
    ir = np.searchsorted(ref.delays, common)
    io = np.searchsorted(other.delays, common)
    n = min(ref.g2.shape[1], other.g2.shape[1])
    a, b = ref.g2[ir, :n], other.g2[io, :n]
    ok = np.isfinite(a) & np.isfinite(b) & (a != 0) & (b != 0)
    return float(np.max(np.abs(a - b)[ok])) if ok.any() else None


def theory_diff(spec: DataSpec, g2: G2, max_delay: int = 8) -> float | None:
    """Mean |g2 - analytic g2| over delays 1..max_delay and all dynamic bins."""
    if spec.tiled:
        return None
    sel = (g2.delays >= 1) & (g2.delays <= max_delay)
    if not sel.any():
        return None
    th = theory_g2(spec, g2.delays[sel].astype(float))
    n = min(th.shape[1], g2.g2.shape[1])
    return float(np.nanmean(np.abs(g2.g2[sel, :n] - th[:, :n])))


def compare_rows(rows: list[tuple[Row, G2 | None]], spec: DataSpec) -> None:
    """Fill the g2 columns: differences to the first code that has a g2."""
    ref = next((g for _, g in rows if g is not None), None)
    for row, g in rows:
        if g is None:
            continue
        row.dtheory = theory_diff(spec, g)
        if ref is not None and g is not ref:
            row.dg2_short = g2_diff(ref, g, max_delay=8)
            row.dg2_all = g2_diff(ref, g)


def _fmt(v: float | None, fmt: str) -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, fmt)


COLUMNS = (
    "code",
    "correlate s",
    "px-frames/s (corr)",
    "whole s",
    "px-frames/s (whole)",
    "peak RSS MiB",
    "JIT s",
    "max Δg2 (τ≤8)",
    "max Δg2 (all τ)",
    "mean dev. from theory (τ≤8)",
    "note",
)


def _cells(row: Row) -> list[str]:
    return [
        row.code,
        _fmt(row.corr_s, ".2f"),
        _fmt(row.corr_rate, ".3g"),
        _fmt(row.total_s, ".2f"),
        _fmt(row.total_rate, ".3g"),
        _fmt(row.rss_mib, ".0f"),
        _fmt(row.jit_s, ".2f"),
        _fmt(row.dg2_short, ".1e"),
        _fmt(row.dg2_all, ".1e"),
        _fmt(row.dtheory, ".1e"),
        row.note,
    ]


def _groups(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    """Rows grouped by workload (in order), titled with the data size."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.workload, []).append(row)
    out = []
    for name, members in groups.items():
        size = next((r.size for r in members if r.size), "")
        out.append((f"{name} ({size})" if size else name, members))
    return out


def print_table(rows: list[Row]) -> None:
    """One rich table per workload, on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # a terminal gets its own width (rich folds cells); a file or pipe gets a wide page
    console = Console(width=None if sys.stdout.isatty() else 220)
    for title, members in _groups(rows):
        table = Table(title=title, title_justify="left")
        for i, name in enumerate(COLUMNS):
            if i == 0:
                table.add_column(name, overflow="fold", min_width=18)
            elif i == len(COLUMNS) - 1:
                table.add_column(name, overflow="fold", min_width=20)
            else:
                table.add_column(name, overflow="fold", justify="right")
        for row in members:
            table.add_row(*(escape(c) for c in _cells(row)))
        console.print(table)


def markdown_table(rows: list[Row]) -> str:
    """The same tables in Markdown (for benchmarks/README.md)."""
    parts = []
    for title, members in _groups(rows):
        parts.append(f"#### {title}\n")
        parts.append("| " + " | ".join(COLUMNS) + " |")
        parts.append("|" + "|".join("---" for _ in COLUMNS) + "|")
        for r in members:
            parts.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
        parts.append("")
    return "\n".join(parts)


# =========================================================================
# Workloads
# =========================================================================
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
        return self.work / f"{_slug(name)}.npz"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _na(workload: str, code: str, size: str, reason: str) -> Row:
    return Row(workload, code, size, note=f"n/a ({reason})")


def _measure(
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
            return _na(workload, code, spec.label(), str(err)), None
        if procs[-1].rc != 0:
            break
    failed = [p for p in procs if p.rc != 0]
    proc = failed[0] if failed else min(procs, key=lambda p: p.wall)
    if proc.rc != 0:
        if ctx.debug:
            ctx.log(proc.stderr)
        return _na(workload, code, spec.label(), proc.failure()), None
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


def _multitau_codes(ctx: Context, workload: str, files: DataFiles, codes: tuple[str, ...]) -> None:
    spec = files.spec
    results: list[tuple[Row, G2 | None]] = []
    base = {"frames": str(files.frames), "qmap": str(files.qmap)}
    peer_reason = peers_available()
    for code in codes:
        out = ctx.out(f"{workload}_{code}")
        if code == "ours":
            results.append(
                _measure(
                    ctx,
                    workload,
                    "ours (xpcs_kernel)",
                    spec,
                    lambda out=out: run_ours("multitau", {**base, "out": str(out)}),
                    lambda _p, out=out: load_g2(out),
                )
            )
        elif peer_reason:
            results.append((_na(workload, code, spec.label(), peer_reason), None))
        elif code == "boost_corr":
            s = {**base, "out": str(out), "max_memory": ctx.boost_max_memory}
            results.append(
                _measure(
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
                _measure(
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
    """Dense 256x256 uint8: correlation alone, ours vs boost_corr vs scikit-beam."""
    n = 500 if ctx.quick else 2000
    spec = DataSpec(n, 256, 256, mean=2.0)
    files = prepare(spec, ctx.data_dir, log=ctx.log)
    _multitau_codes(ctx, "dense", files, ("ours", "boost_corr", "scikit-beam"))


def wl_mpx(ctx: Context) -> None:
    """1 Mpx frames: correlation alone, ours vs boost_corr."""
    n = 200 if ctx.quick else ctx.mpx_frames
    spec = DataSpec(n, 1024, 1024, mean=0.5)
    files = prepare(spec, ctx.data_dir, log=ctx.log)
    _multitau_codes(ctx, "1 Mpx", files, ("ours", "boost_corr"))


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


def _command_rows(
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
        out = ctx.work / f"{_slug(workload)}_{len(results)}_ours.hdf"
        out.unlink(missing_ok=True)
        if not OUR_CLI.exists():
            results.append((_na(workload, label, spec.label(), f"{OUR_CLI} missing"), None))
            continue
        cmd = [str(OUR_CLI), "correlate", str(raw), "--qmap", str(files.qmap), "-o", str(out)]
        cmd += ["--mode", "multitau", "--frame-time", "1e-3", "--no-fit", "--quiet", "--json"]
        cmd += extra
        key = (raw.suffix, *extra)
        if ctx.warmup and key not in ctx.warmed:
            # untimed first run: fills numba's on-disk cache (the JIT workload times that)
            ctx.log(f"  {workload}: {label} (warm-up run) ...")
            run_process(cmd)
            ctx.warmed.add(key)
        row, g2 = _measure(
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
            results.append((_na(workload, label, spec.label(), reason), None))
            continue
        outdir = ctx.work / f"{_slug(workload)}_boost_{len(results)}"
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
            _measure(
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
    _command_rows(
        ctx,
        "whole command (LZ4 HDF5)",
        files,
        files.raw_h5,
        boost_variants=(
            ("boost_corr CLI (CPU), as shipped", False),
            ("boost_corr CLI (CPU), loader race fixed", True),
        ),
    )


def wl_jit(ctx: Context) -> None:
    """Our numba compile time: first vs warm call, empty vs filled on-disk cache."""
    size = "64x64x200"
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("ours, empty numba cache", "ours, on-disk numba cache"):
            ctx.log(f"  jit: {label} ...")
            proc = run_ours("jit", {}, env=env)
            if proc.rc != 0:
                ctx.rows.append(_na("JIT", label, size, proc.failure()))
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
            results.append((_na("two-time", code, spec.label(), str(peers_available())), None))
            c2s.append(None)
            continue
        out = ctx.out(f"twotime_{code.split()[0]}")
        holder: dict[str, np.ndarray] = {}

        def loader(_p: ProcResult, out: Path = out, holder: dict[str, np.ndarray] = holder) -> G2:
            g2, holder["c2"] = _load_twotime(out)
            return g2

        row, g2 = _measure(
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
            _command_rows(
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
    ctx.warmed.add((".h5",))  # no second pass over this file: its time includes JIT loading
    _command_rows(
        ctx,
        "1 Mpx x many frames (RSS)",
        files,
        files.raw_h5,
        boost_variants=(("boost_corr CLI (CPU), loader race fixed", True),)
        if ctx.rss_boost
        else (),
    )


WORKLOAD_FUNCS: dict[str, Callable[[Context], None]] = {
    "dense": wl_dense,
    "mpx": wl_mpx,
    "command": wl_command,
    "jit": wl_jit,
    "twotime": wl_twotime,
    "sparse": wl_sparse,
    "rss10k": wl_rss10k,
}


# =========================================================================
# Command line
# =========================================================================
def _child_main(argv: list[str]) -> int:
    task, spec = argv[0], json.loads(argv[1])
    summary = CHILD_TASKS[task](spec)
    emit(summary)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="Small sizes (about a minute).")
    p.add_argument(
        "--workload",
        action="append",
        choices=WORKLOADS,
        help=f"Workload(s) to run (repeatable). Default: {' '.join(DEFAULT_WORKLOADS)}; "
        "rss10k is opt-in (writes a large file).",
    )
    p.add_argument(
        "--data-dir", type=Path, default=ROOT / "bench-data", help="Cache of generated inputs."
    )
    p.add_argument("--mpx-frames", type=int, default=500, help="Frames of the 1 Mpx workload.")
    p.add_argument(
        "--occupancy",
        type=float,
        action="append",
        help="Mean photons/pixel/frame of the sparse workload (repeatable). "
        "Default: 0.001 0.01 0.1 (--quick: 0.01).",
    )
    p.add_argument(
        "--sparse-format",
        action="append",
        choices=("rigaku", "imm"),
        help="File format(s) of the sparse workload (repeatable). Default: rigaku.",
    )
    p.add_argument(
        "--boost-max-memory",
        type=float,
        default=8.0,
        help="boost_corr's --max-memory in GB (its default 36 exceeds this machine).",
    )
    p.add_argument(
        "--rss-boost", action="store_true", help="Also run boost_corr in the rss10k workload."
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Run each measurement N times and keep the fastest (the CPU is shared).",
    )
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="Do not run our command once untimed first (then its times include JIT loading).",
    )
    p.add_argument("--json", type=Path, help="Also write the rows as JSON to this file.")
    p.add_argument("--markdown", action="store_true", help="Also print a Markdown table.")
    p.add_argument("--debug", action="store_true", help="Show child stderr and tracebacks.")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return _child_main(argv[1:])
    args = _parser().parse_args(argv)
    occ = tuple(args.occupancy or ((0.01,) if args.quick else (0.001, 0.01, 0.1)))
    with tempfile.TemporaryDirectory(prefix="xpcs-bench-") as work:
        ctx = Context(
            data_dir=args.data_dir,
            work=Path(work),
            quick=args.quick,
            debug=args.debug,
            boost_max_memory=args.boost_max_memory,
            mpx_frames=args.mpx_frames,
            sparse_occupancies=occ,
            sparse_formats=tuple(args.sparse_format or ("rigaku",)),
            rss_boost=args.rss_boost,
            warmup=not args.no_warmup,
            repeat=max(1, args.repeat),
        )
        for name in args.workload or DEFAULT_WORKLOADS:
            ctx.log(f"[{name}]")
            try:
                WORKLOAD_FUNCS[name](ctx)
            except Exception as err:  # a broken workload must not hide the others
                if args.debug:
                    traceback.print_exc()
                ctx.rows.append(_na(name, "-", "", f"{type(err).__name__}: {err}"))
    print_table(ctx.rows)
    if args.markdown:
        print(markdown_table(ctx.rows))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {**asdict(r), "corr_rate": r.corr_rate, "total_rate": r.total_rate}
                    for r in ctx.rows
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
