"""A q-map of equal q and phi bins built from the detector geometry.

:func:`qmap_from_geometry` joins the pure numerics of
:mod:`xpcs_kernel.qmap.geometry` (pixel q and phi, grid partitions) and the
:class:`~xpcs_kernel.qmap.model.QMap` they fill, so neither of those imports the
other.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.qmap.geometry import grid_partitions, pixel_q_phi
from xpcs_kernel.qmap.model import QMap

__all__ = ["qmap_from_geometry"]


def qmap_from_geometry(
    shape: tuple[int, int],
    *,
    beam_center: tuple[float, float],
    detector_distance: float,
    pixel_size: float,
    energy: float,
    n_dynamic_q: int,
    n_static_q: int,
    n_dynamic_phi: int = 1,
    n_static_phi: int = 1,
    q_range: tuple[float, float] | None = None,
    mask: NDArray[np.bool_] | None = None,
) -> QMap:
    """Build a q-map of equal q and phi bins from the detector geometry.

    Each pixel gets ``q = 4 pi sin(theta) / lambda`` (``2 theta`` its scattering
    angle, ``lambda[A] = 12.398419843320026 / E[keV]``) and an azimuth phi (see
    :mod:`xpcs_kernel.qmap.geometry`). Static bins are ``n_static_q x
    n_static_phi`` equal cells of ``q_range x [-180, 180]`` degrees; dynamic bins
    are blocks of static cells, so ``n_static_q`` must be a multiple of
    ``n_dynamic_q`` (likewise phi). Empty cells get no bin number (compact
    numbering, q-major as in pySimpleMask).

    Parameters
    ----------
    shape : (int, int)
        Detector shape ``(H, W)``.
    beam_center : (float, float)
        Direct beam ``(x, y)`` = (column, row), pixels.
    detector_distance, pixel_size : float
        In metres.
    energy : float
        In keV.
    n_dynamic_q, n_static_q, n_dynamic_phi, n_static_phi : int
        Grid sizes.
    q_range : (float, float), optional
        q interval to bin (1/Angstrom); default: all valid pixels.
    mask : ndarray of bool, shape (H, W), optional
        True = valid pixel; default all valid. The stored mask is this mask
        restricted to the binned pixels (as pySimpleMask stores it).

    Returns
    -------
    QMap
    """
    q, phi = pixel_q_phi(
        shape,
        beam_center=beam_center,
        detector_distance=detector_distance,
        pixel_size=pixel_size,
        energy=energy,
    )
    valid = np.ones(q.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if valid.shape != q.shape:
        raise UsageError(f"shape {valid.shape} differs from {q.shape}", argument="mask")
    if not valid.any():
        raise UsageError("selects no pixel", argument="mask")
    if q_range is None:
        q_range = (float(q[valid].min()), float(q[valid].max()))
    dyn, sta = grid_partitions(
        q,
        phi,
        valid,
        n_dynamic_q=n_dynamic_q,
        n_static_q=n_static_q,
        n_dynamic_phi=n_dynamic_phi,
        n_static_phi=n_static_phi,
        q_range=q_range,
    )
    if not sta.index_mapping.size:
        raise UsageError(f"no valid pixel has q in {q_range}", argument="q_range")
    n1d, n1s = dyn.num_pts[1], sta.num_pts[1]
    return QMap(
        dynamic_roi_map=dyn.roi_map,
        static_roi_map=sta.roi_map,
        mask=valid & (sta.roi_map > 0),
        dynamic_q=dyn.v_list_dim0[dyn.index_mapping // n1d],
        dynamic_phi=dyn.v_list_dim1[dyn.index_mapping % n1d],
        static_q=sta.v_list_dim0[sta.index_mapping // n1s],
        static_phi=sta.v_list_dim1[sta.index_mapping % n1s],
        beam_center_x=float(beam_center[0]),
        beam_center_y=float(beam_center[1]),
        pixel_size=float(pixel_size),
        energy=float(energy),
        detector_distance=float(detector_distance),
        dynamic_num_pts=dyn.num_pts,
        static_num_pts=sta.num_pts,
        dynamic_v_list_dim0=dyn.v_list_dim0,
        dynamic_v_list_dim1=dyn.v_list_dim1,
        static_v_list_dim0=sta.v_list_dim0,
        static_v_list_dim1=sta.v_list_dim1,
        dynamic_index_mapping=dyn.index_mapping,
        static_index_mapping=sta.index_mapping,
    )
