"""Synthetic XPCS frames with a known answer.

Model (REFERENCE.md section 6): every pixel carries a complex AR(1) field

    E_t = a E_{t-1} + sqrt(1 - a^2) n_t,   a = exp(-1 / tau_c),

with ``n_t`` circular complex Gaussian noise and ``<|E|^2> = 1``; the expected
count is ``mu_t = m ((1 - c) |E_t|^2 + c)`` and the recorded count is
``Poisson(mu_t)``. For an integer delay ``tau >= 1`` the intensity
autocorrelation is exactly

    g2(tau) = 1 + beta exp(-2 tau / tau_c),   beta = (1 - c)^2,

so the contrast ``beta`` fixes ``c = 1 - sqrt(beta)``. All pixels of a dynamic
bin share one ``tau_c``.

Brownian diffusion: the relaxation rate of dynamic bin ``k`` is
``Gamma_k = D q_k^2 + Gamma_0`` (in 1/frame), with ``D`` and ``Gamma_0`` chosen
so that the bin of smallest q gets ``tau_c_range[1]`` and the bin of largest q
gets ``tau_c_range[0]`` (``Gamma_0 = 0`` would be pure diffusion; two end
points need the offset). ``tau_c = 1 / Gamma``. In physical units
``tau_c[s] = tau_c[frames] * frame_time``, ``D[A^2/s] = D / frame_time`` and
``Gamma_0[1/s] = Gamma_0 / frame_time``.

Frames are produced in chunks whose content does not depend on the chunk size:
the field and the Poisson draws use two independent random streams (spawned
from ``seed``) consumed strictly in frame order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.qmap.build import qmap_from_geometry
from xpcs_kernel.qmap.geometry import pixel_q_phi
from xpcs_kernel.qmap.model import QMap, write_qmap
from xpcs_kernel.synthetic.spec import BEAMSTOP_RADIUS, SyntheticSpec

if TYPE_CHECKING:
    from xpcs_kernel.io.hdf5 import Compression

__all__ = [
    "SyntheticDataset",
    "SyntheticSpec",
    "generate_frames",
    "synthesize",
    "synthesize_dataset",
    "synthesize_qmap",
    "write_synthetic",
]


@dataclass(frozen=True, eq=False)
class SyntheticDataset:
    """Ground truth of a synthetic data set.

    Attributes
    ----------
    qmap : QMap
    tau_c : ndarray of float64, shape (n_dynamic,)
        Correlation time of each dynamic bin, in frames.
    beta : float
        Contrast.
    spec : SyntheticSpec
    diffusion : float
        ``D`` in Angstrom^2 per frame: ``1 / tau_c = D q^2 + gamma_offset``.
    gamma_offset : float
        ``Gamma_0`` in 1/frame.
    """

    qmap: QMap
    tau_c: NDArray[np.float64]
    beta: float
    spec: SyntheticSpec
    diffusion: float = 0.0
    gamma_offset: float = 0.0

    @property
    def tau_c_seconds(self) -> NDArray[np.float64]:
        """``tau_c * frame_time`` (s)."""
        return self.tau_c * self.spec.frame_time

    def expected_g2(self, delays: NDArray[np.int64]) -> NDArray[np.float64]:
        """Exact ``g2 = 1 + beta exp(-2 tau / tau_c)`` per dynamic bin.

        Parameters
        ----------
        delays : ndarray of int, shape (n_tau,)
            Delays in frames, each >= 1.

        Returns
        -------
        ndarray of float64, shape (n_tau, n_dynamic)
        """
        tau = np.asarray(delays, dtype=np.float64).reshape(-1)
        if tau.size and (tau.min() < 1 or not np.all(tau == np.round(tau))):
            raise UsageError("must be integer delays >= 1 (frames)", argument="delays")
        return 1.0 + self.beta * np.exp(-2.0 * tau[:, None] / self.tau_c[None, :])

    def mean_count_per_pixel(self) -> NDArray[np.float64]:
        """Expected count ``m`` of every pixel: ``mean_count (q / q_min)^-intensity_exponent``."""
        spec, qm = self.spec, self.qmap
        if spec.intensity_exponent == 0:
            return np.full(qm.shape, float(spec.mean_count))
        q, _ = pixel_q_phi(
            qm.shape,
            beam_center=(qm.beam_center_x, qm.beam_center_y),
            detector_distance=qm.detector_distance,
            pixel_size=qm.pixel_size,
            energy=qm.energy,
        )
        binned = q[qm.static_roi_map > 0]
        lo, hi = float(binned.min()), float(binned.max())
        if lo <= 0:
            raise UsageError("a power-law intensity needs q > 0 in every bin", argument="q_range")
        relative: NDArray[np.float64] = (np.clip(q, lo, hi) / lo) ** -spec.intensity_exponent
        return spec.mean_count * relative

    def tau_c_per_pixel(self) -> NDArray[np.float64]:
        """``tau_c`` (frames) of every pixel: its dynamic bin's, the largest outside bins."""
        lookup = np.concatenate([[self.spec.tau_c_range[1]], self.tau_c])
        return lookup[self.qmap.dynamic_roi_map.astype(np.intp)]


def _beam_center(spec: SyntheticSpec) -> tuple[float, float]:
    if spec.beam_center is not None:
        return (float(spec.beam_center[0]), float(spec.beam_center[1]))
    return ((spec.shape[1] - 1) / 2.0, (spec.shape[0] - 1) / 2.0)


def synthesize_qmap(spec: SyntheticSpec) -> QMap:
    """The q-map of a synthetic data set (equal q bins of full rings by default)."""
    center = _beam_center(spec)
    geometry = {
        "beam_center": center,
        "detector_distance": spec.detector_distance,
        "pixel_size": spec.pixel_size,
        "energy": spec.energy,
    }
    q_range = spec.q_range
    if q_range is None:
        q, _ = pixel_q_phi(spec.shape, **geometry)  # type: ignore[arg-type]
        h, w = spec.shape
        rows, cols = np.indices(spec.shape)
        r = np.hypot(rows - center[1], cols - center[0])
        edge = min(center[0], center[1], w - 1 - center[0], h - 1 - center[1])
        if edge <= BEAMSTOP_RADIUS + 1:
            raise UsageError("beam centre too close to the frame edge", argument="beam_center")
        q_range = (float(q[r >= BEAMSTOP_RADIUS].min()), float(q[r <= edge].max()))
    return qmap_from_geometry(
        spec.shape,
        n_dynamic_q=spec.n_dynamic_q,
        n_static_q=spec.n_static_q,
        n_dynamic_phi=spec.n_dynamic_phi,
        n_static_phi=spec.n_static_phi,
        q_range=q_range,
        **geometry,  # type: ignore[arg-type]
    )


def synthesize_dataset(spec: SyntheticSpec, qmap: QMap | None = None) -> SyntheticDataset:
    """Ground truth (q-map, ``tau_c`` per dynamic bin) without generating frames."""
    qmap = synthesize_qmap(spec) if qmap is None else qmap
    q = qmap.dynamic_q
    tau_lo, tau_hi = spec.tau_c_range
    q_lo, q_hi = float(q.min()), float(q.max())
    spread = q_hi**2 - q_lo**2
    diffusion = (1.0 / tau_lo - 1.0 / tau_hi) / spread if spread > 0 else 0.0
    gamma_offset = 1.0 / tau_hi - diffusion * q_lo**2
    tau_c = 1.0 / (diffusion * q**2 + gamma_offset)
    tau_c.setflags(write=False)
    return SyntheticDataset(qmap, tau_c, float(spec.beta), spec, diffusion, gamma_offset)


def generate_frames(
    spec: SyntheticSpec,
    qmap: QMap,
    tau_c_per_pixel: NDArray[np.float64],
    *,
    mean_count_per_pixel: NDArray[np.float64] | None = None,
    chunk_frames: int = 256,
) -> Iterator[NDArray[np.unsignedinteger[Any]]]:
    """Yield the frames of ``spec`` in chunks of shape ``(n, H, W)``.

    The AR(1) field carries across chunks, so memory stays bounded by one
    chunk; the output is identical for every ``chunk_frames``. Counts above
    the dtype's range (probability ~exp(-50)) saturate, as on a detector.

    Parameters
    ----------
    spec : SyntheticSpec
    qmap : QMap
        Only its shape is used (it must equal ``spec.shape``).
    tau_c_per_pixel : ndarray of float64, shape (H, W)
        Correlation time of each pixel in frames (> 0), e.g.
        :meth:`SyntheticDataset.tau_c_per_pixel`.
    mean_count_per_pixel : ndarray of float64, shape (H, W), optional
        Expected count ``m`` of each pixel, each ``<= spec.mean_count`` (which
        sets the dtype), e.g. :meth:`SyntheticDataset.mean_count_per_pixel`;
        default ``spec.mean_count`` everywhere.
    chunk_frames : int
        Frames per yielded chunk (the last may be shorter).
    """
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, (int, np.integer)):
        raise UsageError(f"must be an integer, got {chunk_frames!r}", argument="chunk_frames")
    if chunk_frames < 1:
        raise UsageError(f"must be >= 1, got {chunk_frames}", argument="chunk_frames")
    if qmap.shape != tuple(spec.shape):
        raise UsageError(f"shape {qmap.shape} differs from spec {spec.shape}", argument="qmap")
    tau = np.asarray(tau_c_per_pixel, dtype=np.float64)
    if tau.shape != qmap.shape or not np.all(np.isfinite(tau) & (tau > 0)):
        raise UsageError(
            f"must be a positive finite array of shape {qmap.shape}", argument="tau_c_per_pixel"
        )
    if mean_count_per_pixel is None:
        m = np.full(qmap.shape, float(spec.mean_count))
    else:
        m = np.asarray(mean_count_per_pixel, dtype=np.float64)
        if m.shape != qmap.shape or not np.all(np.isfinite(m) & (m >= 0)):
            raise UsageError(
                f"must be a finite array >= 0 of shape {qmap.shape}",
                argument="mean_count_per_pixel",
            )
        if m.max() > spec.mean_count * (1 + 1e-12):
            raise UsageError("must not exceed spec.mean_count", argument="mean_count_per_pixel")
    return _frames(spec, tau, m, int(chunk_frames))


def _frames(
    spec: SyntheticSpec, tau: NDArray[np.float64], mean: NDArray[np.float64], chunk: int
) -> Iterator[NDArray[np.unsignedinteger[Any]]]:
    field_rng, count_rng = (
        np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(spec.seed).spawn(2)
    )
    dtype = spec.frame_dtype()
    top = np.iinfo(dtype).max
    a = np.exp(-1.0 / tau)
    s = np.sqrt((1.0 - a * a) / 2.0)  # per real component of the unit-power noise
    scale = mean * (1.0 - spec.speckle_floor)
    offset = mean * spec.speckle_floor
    z = field_rng.standard_normal((2, *tau.shape)) * np.sqrt(0.5)
    re, im = z[0], z[1]
    for start in range(0, spec.n_frames, chunk):
        n = min(chunk, spec.n_frames - start)
        mu = np.empty((n, *tau.shape), dtype=np.float64)
        for i in range(n):
            if start + i > 0:
                z = field_rng.standard_normal((2, *tau.shape))
                re = a * re + s * z[0]
                im = a * im + s * z[1]
            np.multiply(re * re + im * im, scale, out=mu[i])
        mu += offset
        counts = count_rng.poisson(mu)
        np.minimum(counts, top, out=counts)
        yield counts.astype(dtype)


def synthesize(spec: SyntheticSpec) -> tuple[SyntheticDataset, NDArray[Any]]:
    """Ground truth and all frames ``(n_frames, H, W)`` in memory (for small sets)."""
    dataset = synthesize_dataset(spec)
    chunks = generate_frames(
        spec,
        dataset.qmap,
        dataset.tau_c_per_pixel(),
        mean_count_per_pixel=dataset.mean_count_per_pixel(),
    )
    return dataset, np.concatenate(list(chunks), axis=0)


def write_synthetic(
    raw_path: str | os.PathLike[str],
    qmap_path: str | os.PathLike[str],
    spec: SyntheticSpec,
    *,
    compression: str | None = None,
) -> SyntheticDataset:
    """Write a synthetic raw HDF5 file and its q-map file; return the ground truth.

    Frames go to ``/entry/data/data`` through
    :func:`xpcs_kernel.io.write_hdf5_frames` (streamed, chunk by chunk); the
    q-map in the pySimpleMask layout. The ground truth is stored under
    ``/entry/synthetic/`` of the raw file: datasets ``tau_c`` (frames),
    ``tau_c_seconds``, ``dynamic_q``, ``expected_contrast`` and attributes
    ``beta``, ``diffusion`` (A^2/s), ``gamma_offset`` (1/s), ``frame_time`` and
    ``spec`` (JSON of every option). ``/entry/instrument/detector_1/frame_time``
    is written when the frame writer did not write it.
    """
    import h5py

    from xpcs_kernel.io import write_hdf5_frames

    if compression not in (None, "lz4", "bitshuffle", "gzip"):
        raise UsageError(
            f"must be None, 'lz4', 'bitshuffle' or 'gzip', got {compression!r}",
            argument="compression",
        )
    dataset = synthesize_dataset(spec)
    write_qmap(qmap_path, dataset.qmap)
    chunks = generate_frames(
        spec,
        dataset.qmap,
        dataset.tau_c_per_pixel(),
        mean_count_per_pixel=dataset.mean_count_per_pixel(),
    )
    write_hdf5_frames(raw_path, chunks, compression=cast("Compression", compression))
    with h5py.File(raw_path, "a") as f:
        g = f.require_group("/entry/synthetic")
        for key, value in (
            ("tau_c", dataset.tau_c),
            ("tau_c_seconds", dataset.tau_c_seconds),
            ("dynamic_q", dataset.qmap.dynamic_q),
            ("expected_contrast", np.full(dataset.qmap.n_dynamic, dataset.beta)),
        ):
            if key in g:
                del g[key]
            g.create_dataset(key, data=value)
        g.attrs["beta"] = dataset.beta
        g.attrs["diffusion"] = dataset.diffusion / spec.frame_time
        g.attrs["gamma_offset"] = dataset.gamma_offset / spec.frame_time
        g.attrs["frame_time"] = spec.frame_time
        g.attrs["spec"] = json.dumps(asdict(spec))
        if "/entry/instrument/detector_1/frame_time" not in f:
            f.create_dataset("/entry/instrument/detector_1/frame_time", data=spec.frame_time)
    return dataset
