"""Scattering geometry of a flat area detector and q/phi grid partitions.

Pure numerics used by :func:`xpcs_kernel.qmap.build.qmap_from_geometry`: the
momentum transfer ``q`` and azimuth ``phi`` of every pixel, and the compact
nested (dynamic, static) partitions of the q-phi plane in the pySimpleMask
convention (1-based compact bin numbers plus an ``index_mapping`` into the
``n_q x n_phi`` grid).

Conventions
-----------
* ``beam_center = (x, y)``: ``x`` is the column and ``y`` the row coordinate
  (pixels, 0-based) of the direct beam on the detector.
* ``phi`` is in degrees in ``(-180, 180]``, measured counter-clockwise from the
  +x (column) direction with rows increasing *downwards* as in an image, i.e.
  ``phi = degrees(atan2(-(row - y), col - x))``.
* ``q = 4 pi sin(theta) / lambda`` (1/Angstrom) with ``2 theta`` the scattering
  angle of the pixel centre and ``lambda = 12.398419843320026 / E[keV]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = [
    "HC_KEV_ANGSTROM",
    "GridPartition",
    "grid_partitions",
    "pixel_q_phi",
    "wavelength",
]

#: h c in keV * Angstrom: ``lambda[A] = HC_KEV_ANGSTROM / E[keV]``.
HC_KEV_ANGSTROM = 12.398419843320026


def wavelength(energy: float) -> float:
    """X-ray wavelength in Angstrom for a photon energy in keV.

    ``lambda = 12.398419843320026 / E``.
    """
    if not np.isfinite(energy) or energy <= 0:
        raise UsageError(f"must be a positive number of keV, got {energy!r}", argument="energy")
    return HC_KEV_ANGSTROM / energy


def pixel_q_phi(
    shape: tuple[int, int],
    *,
    beam_center: tuple[float, float],
    detector_distance: float,
    pixel_size: float,
    energy: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Momentum transfer and azimuth of every pixel centre.

    Parameters
    ----------
    shape : (int, int)
        Detector shape ``(H, W)``.
    beam_center : (float, float)
        Direct-beam position ``(x, y)`` = (column, row) in pixels.
    detector_distance : float
        Sample-detector distance (m).
    pixel_size : float
        Pixel pitch (m).
    energy : float
        Photon energy (keV).

    Returns
    -------
    q : ndarray of float64, shape (H, W)
        ``q = 4 pi sin(theta) / lambda`` in 1/Angstrom, where
        ``tan(2 theta) = r / detector_distance`` and ``r`` is the pixel's
        distance from the beam centre.
    phi : ndarray of float64, shape (H, W)
        Azimuth in degrees, ``atan2(-(row - y), col - x)``.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise UsageError(f"must be (H, W) with H, W >= 1, got {shape!r}", argument="shape")
    for name, value in (("detector_distance", detector_distance), ("pixel_size", pixel_size)):
        if not np.isfinite(value) or value <= 0:
            raise UsageError(f"must be a positive number of metres, got {value!r}", argument=name)
    if len(beam_center) != 2 or not np.all(np.isfinite(beam_center)):
        raise UsageError(
            f"must be two finite numbers, got {beam_center!r}", argument="beam_center"
        )
    lam = wavelength(energy)
    rows = (np.arange(shape[0], dtype=np.float64) - beam_center[1]) * pixel_size
    cols = (np.arange(shape[1], dtype=np.float64) - beam_center[0]) * pixel_size
    r = np.hypot(rows[:, None], cols[None, :])
    two_theta = np.arctan2(r, detector_distance)
    q = 4.0 * np.pi * np.sin(two_theta / 2.0) / lam
    phi = np.degrees(np.arctan2(0.0 - rows[:, None], cols[None, :]))  # no -0.0: phi in (-180, 180]
    return q, phi


@dataclass(frozen=True)
class GridPartition:
    """A compact partition of pixels over an ``n_q x n_phi`` grid (pySimpleMask layout).

    Attributes
    ----------
    roi_map : ndarray of uint32, shape (H, W)
        1-based compact bin number of each pixel, 0 = not in any bin.
    num_pts : (int, int)
        Grid size ``(n_q, n_phi)``.
    v_list_dim0, v_list_dim1 : ndarray of float64
        Bin centres of the q axis (``n_q``) and of the phi axis (``n_phi``).
    index_mapping : ndarray of int64, shape (n_bins,)
        0-based grid position ``iq * n_phi + iphi`` of each compact bin.
    """

    roi_map: NDArray[np.uint32]
    num_pts: tuple[int, int]
    v_list_dim0: NDArray[np.float64]
    v_list_dim1: NDArray[np.float64]
    index_mapping: NDArray[np.int64]


def _axis_index(
    values: NDArray[np.float64], lo: float, hi: float, n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """0-based bin of each value in ``n`` equal bins of ``[lo, hi]`` (hi included), else -1."""
    edges = np.linspace(lo, hi, n + 1)
    idx = np.searchsorted(edges, values, side="right").astype(np.int64) - 1
    idx[values == hi] = n - 1
    idx[(values < lo) | (values > hi) | ~np.isfinite(values)] = -1
    return idx, 0.5 * (edges[1:] + edges[:-1])


def _compact(
    grid_index: NDArray[np.int64],
    centres: tuple[NDArray[np.float64], NDArray[np.float64]],
    num_pts: tuple[int, int],
) -> GridPartition:
    """Number the occupied grid cells 1..n in grid order (cells are few: use a lookup)."""
    n_cells = num_pts[0] * num_pts[1]
    occupied = np.bincount(grid_index[grid_index >= 0], minlength=n_cells) > 0
    lookup = np.zeros(n_cells + 1, dtype=np.uint32)  # slot n_cells serves grid index -1
    lookup[:n_cells][occupied] = np.arange(1, np.count_nonzero(occupied) + 1, dtype=np.uint32)
    roi = lookup[grid_index]
    mapping = np.flatnonzero(occupied).astype(np.int64)
    return GridPartition(roi, num_pts, centres[0], centres[1], mapping)


def grid_partitions(
    q: NDArray[np.float64],
    phi: NDArray[np.float64],
    valid: NDArray[np.bool_],
    *,
    n_dynamic_q: int,
    n_static_q: int,
    n_dynamic_phi: int = 1,
    n_static_phi: int = 1,
    q_range: tuple[float, float],
    phi_range: tuple[float, float] = (-180.0, 180.0),
) -> tuple[GridPartition, GridPartition]:
    """Nested dynamic and static partitions of the q-phi plane.

    The static grid has ``n_static_q x n_static_phi`` equal bins over
    ``q_range x phi_range``; each dynamic bin is a block of
    ``(n_static_q / n_dynamic_q) x (n_static_phi / n_dynamic_phi)`` static bins,
    computed from the static bin indices by integer division, so every static
    bin lies in exactly one dynamic bin whatever the floating-point rounding.
    Only pixels with ``valid`` true and q, phi inside the ranges are binned; empty
    grid cells get no compact bin number.

    Returns
    -------
    dynamic, static : GridPartition
    """
    for name, value in (
        ("n_dynamic_q", n_dynamic_q),
        ("n_static_q", n_static_q),
        ("n_dynamic_phi", n_dynamic_phi),
        ("n_static_phi", n_static_phi),
    ):
        if int(value) != value or value < 1:
            raise UsageError(f"must be a positive integer, got {value!r}", argument=name)
    if n_static_q % n_dynamic_q:
        raise UsageError(
            f"must be a multiple of n_dynamic_q={n_dynamic_q}, got {n_static_q}",
            argument="n_static_q",
        )
    if n_static_phi % n_dynamic_phi:
        raise UsageError(
            f"must be a multiple of n_dynamic_phi={n_dynamic_phi}, got {n_static_phi}",
            argument="n_static_phi",
        )
    for name, rng in (("q_range", q_range), ("phi_range", phi_range)):
        if len(rng) != 2 or not np.all(np.isfinite(rng)) or not rng[0] < rng[1]:
            raise UsageError(f"must be (low, high) with low < high, got {rng!r}", argument=name)
    iq, q_centres = _axis_index(q, q_range[0], q_range[1], n_static_q)
    ip, p_centres = _axis_index(phi, phi_range[0], phi_range[1], n_static_phi)
    inside = valid & (iq >= 0) & (ip >= 0)
    static_grid = np.where(inside, iq * n_static_phi + ip, -1)
    fq, fp = n_static_q // n_dynamic_q, n_static_phi // n_dynamic_phi
    dynamic_grid = np.where(inside, (iq // fq) * n_dynamic_phi + ip // fp, -1)
    dq_centres = q_centres.reshape(n_dynamic_q, fq).mean(axis=1)
    dp_centres = p_centres.reshape(n_dynamic_phi, fp).mean(axis=1)
    dynamic = _compact(dynamic_grid, (dq_centres, dp_centres), (n_dynamic_q, n_dynamic_phi))
    static = _compact(static_grid, (q_centres, p_centres), (n_static_q, n_static_phi))
    return dynamic, static
