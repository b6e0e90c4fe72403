"""Key layout of the APS "nexus-style" XPCS result file, and its verifier.

The layout is the one the APS viewer pyXpcsViewer reads and boost_corr
writes (key names, shapes and the upper-triangle convention of the two-time
maps were checked against both); ``/xpcs/provenance`` is ours.

::

    /entry/start_time                                   str, ISO 8601
    /entry/instrument/detector_1/frame_time             float64, s
    /entry/instrument/detector_1/count_time             float64, s
    /entry/instrument/incident_beam/incident_energy     float64, keV
    /xpcs/qmap/...                                      the pySimpleMask q-map group, attr hash
    /xpcs/temporal_mean/scattering_2d                   (1, H, W) float32
    /xpcs/temporal_mean/scattering_1d                   (1, n_static) float32
    /xpcs/temporal_mean/scattering_1d_segments          (n_seg, n_static) float32
    /xpcs/spatial_mean/intensity_vs_time                (2, N) float64: frame, mean
    /xpcs/multitau/delay_list                           (n_tau,) int64, frames
    /xpcs/multitau/normalized_g2, normalized_g2_err     (n_tau, n_dynamic) float32
    /xpcs/multitau/{G2,IP,IF}_static                    (n_tau, n_static) float64
    /xpcs/multitau/pair_counts                          (n_tau,)
    /xpcs/multitau/config/{stride_frame, avg_frame, begin_frame, end_frame,
                           normalize_frame, n_frames, analysis_type}
    /xpcs/twotime/correlation_map/c2_%05d               (N, N) float32, upper triangle
                                                        (lower = 0), %05d = 1-based bin
    /xpcs/twotime/normalized_g2                         (N, n_sel) float32
    /xpcs/twotime/normalized_g2_segments                (N // n_seg, n_seg, n_sel) float32
    /xpcs/twotime/delay_list                            (N,) int64, frames
    /xpcs/twotime/processed_bins                        (n_sel,) int64, 1-based dynamic bins
    /xpcs/twotime/config/...                            as multitau, plus n_segments
    /xpcs/fit/<name>                                    optional fit arrays
    /xpcs/provenance/{software_name, software_version, parameters (JSON),
                      timings/<stage> (s), input_files/{path, sha256, size}}

The viewer expects ``scattering_1d`` to be a multiple of the length of
``static_index_mapping``, reads ``normalized_g2_segments`` with its first and
last axes swapped relative to ``g2``, and rebuilds each ``c2`` as
``c2 + c2.T`` with the diagonal halved.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from xpcs_kernel.errors import ResultFileError

__all__ = [
    "C2_GROUP",
    "PROVENANCE_KEYS",
    "QMAP_KEYS",
    "REQUIRED_COMMON_KEYS",
    "REQUIRED_MULTITAU_KEYS",
    "REQUIRED_TWOTIME_KEYS",
    "c2_key",
    "verify_result",
]

START_TIME = "/entry/start_time"
FRAME_TIME = "/entry/instrument/detector_1/frame_time"
COUNT_TIME = "/entry/instrument/detector_1/count_time"
INCIDENT_ENERGY = "/entry/instrument/incident_beam/incident_energy"
SAXS_2D = "/xpcs/temporal_mean/scattering_2d"
SAXS_1D = "/xpcs/temporal_mean/scattering_1d"
SAXS_1D_SEGMENTS = "/xpcs/temporal_mean/scattering_1d_segments"
INTENSITY_VS_TIME = "/xpcs/spatial_mean/intensity_vs_time"
QMAP_GROUP = "/xpcs/qmap"
MULTITAU = "/xpcs/multitau"
TWOTIME = "/xpcs/twotime"
C2_GROUP = "/xpcs/twotime/correlation_map"
FIT = "/xpcs/fit"
PROVENANCE = "/xpcs/provenance"

#: The q-map datasets the viewer reads (under ``/xpcs/qmap``).
QMAP_KEYS: tuple[str, ...] = (
    "mask",
    "dynamic_roi_map",
    "static_roi_map",
    "dynamic_v_list_dim0",
    "dynamic_v_list_dim1",
    "static_v_list_dim0",
    "static_v_list_dim1",
    "dynamic_index_mapping",
    "static_index_mapping",
    "dynamic_num_pts",
    "static_num_pts",
    "beam_center_x",
    "beam_center_y",
    "pixel_size",
    "detector_distance",
    "map_names",
    "map_units",
)

REQUIRED_COMMON_KEYS: tuple[str, ...] = (
    START_TIME,
    FRAME_TIME,
    COUNT_TIME,
    INCIDENT_ENERGY,
    SAXS_2D,
    SAXS_1D,
    SAXS_1D_SEGMENTS,
    INTENSITY_VS_TIME,
    *(f"{QMAP_GROUP}/{k}" for k in QMAP_KEYS),
)
REQUIRED_MULTITAU_KEYS: tuple[str, ...] = (
    f"{MULTITAU}/delay_list",
    f"{MULTITAU}/normalized_g2",
    f"{MULTITAU}/normalized_g2_err",
    f"{MULTITAU}/config/stride_frame",
    f"{MULTITAU}/config/avg_frame",
)
REQUIRED_TWOTIME_KEYS: tuple[str, ...] = (
    C2_GROUP,
    f"{TWOTIME}/normalized_g2",
    f"{TWOTIME}/normalized_g2_segments",
    f"{TWOTIME}/delay_list",
    f"{TWOTIME}/processed_bins",
    f"{TWOTIME}/config/stride_frame",
    f"{TWOTIME}/config/avg_frame",
)
#: Written by xpcs-flows; required by :func:`verify_result` when ``strict``.
PROVENANCE_KEYS: tuple[str, ...] = (
    f"{PROVENANCE}/software_name",
    f"{PROVENANCE}/software_version",
    f"{PROVENANCE}/parameters",
    f"{PROVENANCE}/timings",
    f"{PROVENANCE}/input_files/path",
    f"{PROVENANCE}/input_files/sha256",
    f"{PROVENANCE}/input_files/size",
)


def c2_key(bin_number: int) -> str:
    """Key of the two-time map of a 1-based dynamic bin number."""
    return f"{C2_GROUP}/c2_{bin_number:05d}"


class _Checker:
    """Checks of one open result file; every failure names the file and key."""

    def __init__(self, handle: h5py.File, path: str | os.PathLike[str]) -> None:
        self.f = handle
        self.path = path

    def fail(self, key: str, message: str, expected: str, found: str) -> ResultFileError:
        return ResultFileError(message, path=self.path, key=key, expected=expected, found=found)

    def need(self, key: str) -> Any:
        if key not in self.f:
            raise ResultFileError(
                "required key is missing", path=self.path, key=key, expected="present"
            )
        return self.f[key]

    def dataset(self, key: str, kinds: str, ndim: int | None = None) -> h5py.Dataset:
        obj = self.need(key)
        if not isinstance(obj, h5py.Dataset):
            raise self.fail(key, "not a dataset", "a dataset", type(obj).__name__)
        kind = obj.dtype.kind
        if kinds == "str":
            ok = kind in "SO" or h5py.check_string_dtype(obj.dtype) is not None
        else:
            ok = kind in kinds
        if not ok:
            raise self.fail(key, "wrong data type", _KIND_NAMES.get(kinds, kinds), str(obj.dtype))
        if ndim is not None and obj.ndim != ndim:
            raise self.fail(key, "wrong number of dimensions", f"{ndim}-D", f"shape {obj.shape}")
        return obj

    def shape(self, key: str, kinds: str, shape: tuple[int | None, ...]) -> tuple[int, ...]:
        obj = self.dataset(key, kinds, len(shape))
        if any(
            want is not None and want != got for want, got in zip(shape, obj.shape, strict=True)
        ):
            want_text = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise self.fail(key, "wrong shape", want_text, str(obj.shape))
        return tuple(int(s) for s in obj.shape)

    def positive_scalar(self, key: str, kinds: str) -> None:
        obj = self.dataset(key, kinds)
        if obj.size != 1:
            raise self.fail(key, "not a scalar", "one value", f"shape {obj.shape}")
        value = float(np.asarray(obj[()]).reshape(-1)[0])
        if not value > 0:
            raise self.fail(key, "must be positive", "> 0", repr(value))


_KIND_NAMES = {"f": "floating point", "iu": "integer", "iuf": "numeric", "str": "string"}


def _check_common(c: _Checker) -> tuple[int, int]:
    c.dataset(START_TIME, "str")
    for key in (FRAME_TIME, COUNT_TIME, INCIDENT_ENERGY):
        c.positive_scalar(key, "iuf")
    qmap = c.need(QMAP_GROUP)
    if "hash" not in qmap.attrs:
        raise c.fail(QMAP_GROUP, "q-map group lacks its hash attribute", "attr hash", "none")
    h, w = c.shape(f"{QMAP_GROUP}/dynamic_roi_map", "iu", (None, None))
    for name in ("static_roi_map", "mask"):
        c.shape(f"{QMAP_GROUP}/{name}", "iub", (h, w))
    for name in ("map_names", "map_units"):
        c.dataset(f"{QMAP_GROUP}/{name}", "str")
    n_dyn = c.shape(f"{QMAP_GROUP}/dynamic_index_mapping", "iu", (None,))[0]
    n_sta = c.shape(f"{QMAP_GROUP}/static_index_mapping", "iu", (None,))[0]
    for part in ("dynamic", "static"):
        c.shape(f"{QMAP_GROUP}/{part}_num_pts", "iu", (2,))
        for dim in ("dim0", "dim1"):
            c.dataset(f"{QMAP_GROUP}/{part}_v_list_{dim}", "iuf", 1)
    for name in ("beam_center_x", "beam_center_y", "pixel_size", "detector_distance"):
        c.dataset(f"{QMAP_GROUP}/{name}", "iuf")
    c.shape(SAXS_2D, "f", (1, h, w))
    size = c.shape(SAXS_1D, "f", (1, None))[1]
    if n_sta == 0 or size % n_sta:
        raise c.fail(
            SAXS_1D,
            "length is not a multiple of static_index_mapping",
            f"a multiple of {n_sta}",
            str(size),
        )
    c.shape(SAXS_1D_SEGMENTS, "f", (None, size))
    c.shape(INTENSITY_VS_TIME, "f", (2, None))
    return n_dyn, n_sta


def _check_config(c: _Checker, group: str) -> None:
    for name in ("stride_frame", "avg_frame"):
        key = f"{group}/config/{name}"
        c.positive_scalar(key, "iu")


def _check_multitau(c: _Checker, n_dyn: int) -> None:
    n_tau = c.shape(f"{MULTITAU}/delay_list", "iu", (None,))[0]
    c.shape(f"{MULTITAU}/normalized_g2", "f", (n_tau, n_dyn))
    c.shape(f"{MULTITAU}/normalized_g2_err", "f", (n_tau, n_dyn))
    _check_config(c, MULTITAU)


def _check_twotime(c: _Checker, n_dyn: int) -> None:
    n = c.shape(f"{TWOTIME}/delay_list", "iu", (None,))[0]
    (n_sel,) = c.shape(f"{TWOTIME}/processed_bins", "iu", (None,))
    bins = np.asarray(c.f[f"{TWOTIME}/processed_bins"][()])
    if bins.size and (bins.min() < 1 or bins.max() > n_dyn):
        raise c.fail(
            f"{TWOTIME}/processed_bins",
            "bin outside the q-map",
            f"1-based bins in [1, {n_dyn}]",
            f"[{bins.min()}, {bins.max()}]",
        )
    c.shape(f"{TWOTIME}/normalized_g2", "f", (n, n_sel))
    c.shape(f"{TWOTIME}/normalized_g2_segments", "f", (None, None, n_sel))
    c.need(C2_GROUP)
    for b in bins.tolist():
        c.shape(c2_key(int(b)), "f", (n, n))
    _check_config(c, TWOTIME)


def verify_result(path: str | os.PathLike[str], *, strict: bool = True) -> list[str]:
    """Check that a result file has every key, shape and dtype the viewer needs.

    Parameters
    ----------
    path : path
        The result file.
    strict : bool
        Also require the xpcs-flows provenance keys (:data:`PROVENANCE_KEYS`);
        pass ``False`` for files written by other software.

    Returns
    -------
    list of str
        Every dataset key present in the file, sorted.

    Raises
    ------
    ResultFileError
        On the first problem, naming the file, the key, what was expected and
        what was found.
    """
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ResultFileError(
            f"cannot open as HDF5: {exc}", path=path, expected="an HDF5 result file"
        ) from exc
    with handle as f:
        c = _Checker(f, path)
        has_multitau = MULTITAU in f
        has_twotime = TWOTIME in f
        if not (has_multitau or has_twotime):
            raise c.fail(MULTITAU, "no correlation results", f"{MULTITAU} or {TWOTIME}", "neither")
        for key in REQUIRED_COMMON_KEYS:
            c.need(key)
        for key in REQUIRED_MULTITAU_KEYS if has_multitau else ():
            c.need(key)
        for key in REQUIRED_TWOTIME_KEYS if has_twotime else ():
            c.need(key)
        for key in PROVENANCE_KEYS if strict else ():
            c.need(key)
        n_dyn, _ = _check_common(c)
        if has_multitau:
            _check_multitau(c, n_dyn)
        if has_twotime:
            _check_twotime(c, n_dyn)
        if strict:
            n_files = c.shape(f"{PROVENANCE}/input_files/path", "str", (None,))[0]
            c.shape(f"{PROVENANCE}/input_files/sha256", "str", (n_files,))
            c.shape(f"{PROVENANCE}/input_files/size", "iu", (n_files,))
            for name in ("software_name", "software_version", "parameters"):
                c.dataset(f"{PROVENANCE}/{name}", "str", 0)
        keys: list[str] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                keys.append("/" + name)

        f.visititems(visit)
    return sorted(keys)
