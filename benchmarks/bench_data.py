"""Synthetic data of the benchmark (REFERENCE.md section 6), written once and cached.

:class:`DataSpec` describes a speckle data set with a known g2,
:func:`iter_frames` generates it, and :func:`prepare` writes the files a
workload needs (frames ``.npy``, q-map, NeXus metadata, LZ4 HDF5, Rigaku,
sparse IMM) under ``bench-data/`` and reuses them on later runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
    dtype: str = "uint8"
    """Stored frame dtype: ``uint8`` (counts clipped at 255) or ``uint16``."""
    compression: str = "lz4"
    """HDF5 filter of ``raw.h5``: ``lz4`` (32004) or ``bitshuffle`` (32008, LZ4 inside)."""

    @property
    def key(self) -> str:
        key = (
            f"n{self.n_frames}_{self.height}x{self.width}_d{self.n_dynamic}s{self.n_sub}"
            f"_m{self.mean:g}_c{self.contrast_c:g}_t{self.tau_c_max:g}_T{self.tile}_s{self.seed}"
        )
        if self.dtype != "uint8":
            key += f"_{self.dtype}"
        if self.compression != "lz4":
            key += f"_{self.compression}"
        return key

    @property
    def tiled(self) -> bool:
        return self.height > self.tile or self.width > self.tile

    @property
    def pixel_frames(self) -> int:
        return self.n_frames * self.height * self.width

    def label(self) -> str:
        return f"{self.height}x{self.width}x{self.n_frames}"

    def masked_fraction(self) -> float:
        """Fraction of the detector's pixels that the ring q-map leaves out."""
        dq, _ = _rings(self.height, self.width, self.n_dynamic, self.n_sub)
        return float(np.mean(dq == 0))


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
    """Yield the data set as blocks ``(n, H, W)`` of ``spec.dtype``."""
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
        dtype = np.dtype(spec.dtype)
        top = np.iinfo(dtype).max
        block = np.empty((n, spec.height, spec.width), dtype=dtype)
        for i in range(n):
            noise = rng.standard_normal((2, th * tw), dtype=np.float32)
            re = a * re + b * noise[0]
            im = a * im + b * noise[1]
            inten = (re * re + im * im).reshape(th, tw)
            if reps != (1, 1):
                inten = np.tile(inten, reps)[: spec.height, : spec.width]
            mu = m * ((1 - c) * inten + c)
            block[i] = np.minimum(rng.poisson(mu), top)
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
    """Frames at ``/entry/data/data``, one frame per HDF5 chunk, LZ4 (32004) or bitshuffle."""
    import h5py
    import hdf5plugin

    shape = (spec.n_frames, spec.height, spec.width)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        ds = f.create_dataset(
            "/entry/data/data",
            shape=shape,
            dtype=np.dtype(spec.dtype),
            chunks=(1, spec.height, spec.width),
            **(
                hdf5plugin.LZ4()
                if spec.compression == "lz4"
                else hdf5plugin.Bitshuffle(cname="lz4")
            ),
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
