"""Write and read the APS XPCS result file (the layout pyXpcsViewer opens).

:func:`write_result` writes every key of :mod:`xpcs_kernel.result.layout`
atomically: into a temporary ``.<name>.partial-<random>`` file in the target
directory, which is flushed, fsynced, closed and then renamed onto the final
name with :func:`os.replace`. If anything fails, the temporary file is removed
and nothing appears under the final name (an existing file there is left
untouched). :func:`read_result` verifies the file and returns its main arrays.

Nothing from the process environment (user, host, environment variables) is
stored: only the arrays passed in and :class:`ResultMetadata`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.result import layout as lay
from xpcs_kernel.result.inputs import G2Like, QMapLike, ResultMetadata, SaxsLike, valid_name
from xpcs_kernel.result.layout import (
    REQUIRED_COMMON_KEYS,
    REQUIRED_MULTITAU_KEYS,
    REQUIRED_TWOTIME_KEYS,
    verify_result,
)
from xpcs_kernel.result.reader import ResultFile, read_result
from xpcs_kernel.twotime.correlator import TwoTimeResult

__all__ = [
    "REQUIRED_COMMON_KEYS",
    "REQUIRED_MULTITAU_KEYS",
    "REQUIRED_TWOTIME_KEYS",
    "G2Like",
    "QMapLike",
    "ResultFile",
    "ResultMetadata",
    "SaxsLike",
    "read_result",
    "verify_result",
    "write_result",
]

SOFTWARE_NAME = "xpcs-flows"
_BIG = 8192  # arrays with more elements are compressed (lzf + shuffle)


def _put(group: h5py.Group, name: str, value: Any, *, units: str | None = None) -> h5py.Dataset:
    if isinstance(value, str):
        ds = group.create_dataset(name, data=value, dtype=h5py.string_dtype())
    else:
        arr = np.asarray(value)
        if arr.dtype.kind == "U":
            ds = group.create_dataset(name, data=arr.astype(object), dtype=h5py.string_dtype())
        elif arr.size > _BIG:
            ds = group.create_dataset(name, data=arr, compression="lzf", shuffle=True)
        else:
            ds = group.create_dataset(name, data=arr)
    if units is not None:
        ds.attrs["units"] = units
    return ds


def _array(value: Any, name: str, shape: tuple[int | None, ...]) -> NDArray[Any]:
    arr = np.asarray(value)
    if arr.ndim != len(shape) or any(
        s is not None and s != g for s, g in zip(shape, arr.shape, strict=False)
    ):
        text = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise UsageError(f"expected shape {text}, got {arr.shape}", argument=name)
    return arr


def _write_entry(f: h5py.File, meta: ResultMetadata) -> None:
    entry = f.require_group("/entry")
    entry.attrs["NX_class"] = "NXentry"
    _put(entry, "start_time", meta.start_time)
    det = f.require_group("/entry/instrument/detector_1")
    f["/entry/instrument"].attrs["NX_class"] = "NXinstrument"
    det.attrs["NX_class"] = "NXdetector"
    _put(det, "frame_time", np.float64(meta.frame_time), units="s")
    _put(det, "count_time", np.float64(meta.count_time), units="s")
    beam = f.require_group("/entry/instrument/incident_beam")
    beam.attrs["NX_class"] = "NXbeam"
    _put(beam, "incident_energy", np.float64(meta.incident_energy_kev), units="keV")


def _write_qmap(f: h5py.File, qmap: QMapLike) -> None:
    datasets, attrs = qmap.to_datasets()
    group = f.require_group(lay.QMAP_GROUP)
    for name, value in datasets.items():
        _put(group, name, value)
    for name, text in attrs.items():
        group.attrs[name] = text


def _saxs_arrays(saxs: SaxsLike, qmap: QMapLike) -> dict[str, NDArray[Any]]:
    h, w = qmap.shape
    s2 = _array(saxs.saxs_2d, "saxs.saxs_2d", (h, w))
    s1 = _array(saxs.saxs_1d, "saxs.saxs_1d", (qmap.n_static,))
    seg = _array(saxs.saxs_1d_segments, "saxs.saxs_1d_segments", (None, qmap.n_static))
    intt = _array(saxs.intensity_vs_time, "saxs.intensity_vs_time", (2, None))
    return {
        "scattering_2d": s2.astype(np.float32).reshape(1, h, w),
        "scattering_1d": s1.astype(np.float32).reshape(1, -1),
        "scattering_1d_segments": seg.astype(np.float32),
        "intensity_vs_time": intt.astype(np.float64),
    }


def _write_saxs(f: h5py.File, arrays: dict[str, NDArray[Any]]) -> None:
    temporal = f.require_group("/xpcs/temporal_mean")
    for name in ("scattering_2d", "scattering_1d", "scattering_1d_segments"):
        _put(temporal, name, arrays[name])
    _put(f.require_group("/xpcs/spatial_mean"), "intensity_vs_time", arrays["intensity_vs_time"])


def _write_config(group: h5py.Group, meta: ResultMetadata, kind: str, **extra: Any) -> None:
    config = group.require_group("config")
    for name, value in (
        ("stride_frame", meta.stride),
        ("avg_frame", meta.avg),
        ("begin_frame", meta.begin),
        ("end_frame", meta.end),
    ):
        _put(config, name, np.int64(value))
    _put(config, "normalize_frame", np.bool_(meta.normalize_frame))
    _put(config, "analysis_type", kind)
    for name, value in extra.items():
        _put(config, name, value)


def _multitau_arrays(g2: G2Like, qmap: QMapLike) -> dict[str, NDArray[Any]]:
    delays = _array(g2.delays, "multitau.delays", (None,))
    if delays.dtype.kind not in "iu":
        raise UsageError(f"must be integer frames, got {delays.dtype}", argument="multitau.delays")
    n_tau = delays.size
    out: dict[str, NDArray[Any]] = {"delay_list": delays.astype(np.int64)}
    for name, key in (("g2", "normalized_g2"), ("g2_err", "normalized_g2_err")):
        arr = _array(getattr(g2, name), f"multitau.{name}", (n_tau, qmap.n_dynamic))
        out[key] = arr.astype(np.float32)
    for name in ("G2_static", "IP_static", "IF_static"):
        arr = _array(getattr(g2, name), f"multitau.{name}", (n_tau, qmap.n_static))
        out[name] = arr.astype(np.float64)
    out["pair_counts"] = np.asarray(g2.pair_counts)
    return out


def _write_multitau(
    f: h5py.File, arrays: dict[str, NDArray[Any]], n_frames: int, meta: ResultMetadata
) -> None:
    group = f.require_group(lay.MULTITAU)
    for name, arr in arrays.items():
        _put(group, name, arr, units="frames" if name == "delay_list" else None)
    _write_config(group, meta, "multitau", n_frames=np.int64(n_frames))


def _check_twotime(tt: TwoTimeResult, qmap: QMapLike) -> None:
    n = int(tt.n_frames)
    bins = _array(tt.bins, "twotime.bins", (None,))
    n_sel = bins.size
    if n_sel and (int(bins.min()) < 0 or int(bins.max()) >= qmap.n_dynamic):
        raise UsageError(f"bins must lie in [0, {qmap.n_dynamic})", argument="twotime.bins")
    if len(tt.c2) != n_sel:
        raise UsageError(f"expected {n_sel} maps, got {len(tt.c2)}", argument="twotime.c2")
    for c2 in tt.c2:
        _array(c2, "twotime.c2", (n, n))
    _array(tt.g2, "twotime.g2", (n, n_sel))
    _array(tt.g2_segments, "twotime.g2_segments", (None, None, n_sel))


def _write_twotime(f: h5py.File, tt: TwoTimeResult, meta: ResultMetadata) -> None:
    n = int(tt.n_frames)
    bins = np.asarray(tt.bins, dtype=np.int64)
    seg = np.asarray(tt.g2_segments)
    group = f.require_group(lay.TWOTIME)
    maps = f.require_group(lay.C2_GROUP)
    chunk = (min(n, 512), min(n, 512))
    for b, c2 in zip(bins.tolist(), tt.c2, strict=True):
        upper = np.triu(c2).astype(np.float32, copy=False)
        maps.create_dataset(
            f"c2_{b + 1:05d}", data=upper, chunks=chunk, compression="lzf", shuffle=True
        )
    maps.attrs["populated_elements"] = "upper_half"
    maps.attrs["time_origin_location"] = "upper_left"
    _put(group, "normalized_g2", np.asarray(tt.g2, dtype=np.float32))
    _put(group, "normalized_g2_segments", seg.transpose(1, 0, 2).astype(np.float32))
    _put(group, "delay_list", np.arange(n, dtype=np.int64), units="frames")
    _put(group, "processed_bins", bins + 1)
    _write_config(
        group,
        meta,
        "twotime",
        n_frames=np.int64(n),
        n_segments=np.int64(seg.shape[0]),
        smoothing=str(tt.smoothing),
    )


def _write_provenance(f: h5py.File, meta: ResultMetadata) -> None:
    group = f.require_group(lay.PROVENANCE)
    _put(group, "software_name", SOFTWARE_NAME)
    _put(group, "software_version", str(meta.software_version))
    _put(group, "parameters", meta.parameters_json())
    timings = group.require_group("timings")
    for stage, seconds in meta.timings.items():
        _put(timings, stage, np.float64(seconds), units="s")
    files = group.require_group("input_files")
    _put(files, "path", np.array([p for p, _, _ in meta.input_files], dtype=object).astype(str))
    _put(files, "sha256", np.array([h for _, h, _ in meta.input_files], dtype=str))
    _put(
        files, "size", np.array([s for _, _, s in meta.input_files], dtype=np.int64), units="bytes"
    )


def _fit_arrays(fit: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    out: dict[str, NDArray[Any]] = {}
    for name, value in fit.items():
        if not valid_name(name):
            raise UsageError(f"names must be non-empty without '/', got {name!r}", argument="fit")
        out[name] = np.asarray(value)
        if out[name].dtype.kind not in "biuf":
            raise UsageError(f"{name!r} must be numeric, got {out[name].dtype}", argument="fit")
    return out


def write_result(
    path: str | os.PathLike[str],
    *,
    qmap: QMapLike,
    saxs: SaxsLike,
    metadata: ResultMetadata,
    multitau: G2Like | None = None,
    twotime: TwoTimeResult | None = None,
    fit: Mapping[str, NDArray[Any]] | None = None,
) -> Path:
    """Write an APS result file atomically.

    Parameters
    ----------
    path : path
        The result file to create or replace. Its directory must exist.
    qmap, saxs : QMapLike, SaxsLike
        The q-map (copied into ``/xpcs/qmap``) and the time-averaged scattering.
    metadata : ResultMetadata
        Acquisition facts and provenance.
    multitau, twotime : optional
        The correlation results; at least one is required.
    fit : mapping of str to ndarray, optional
        Fit results, stored under ``/xpcs/fit``.

    Returns
    -------
    Path
        The file written.
    """
    if multitau is None and twotime is None:
        raise UsageError("give multitau or twotime results (or both)", argument="multitau")
    if not isinstance(metadata, ResultMetadata):
        raise UsageError(
            f"must be ResultMetadata, got {type(metadata).__name__}", argument="metadata"
        )
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        raise UsageError(
            f"{target} is a directory or its directory does not exist", argument="path"
        )
    # validate everything before touching the file system
    saxs_arrays = _saxs_arrays(saxs, qmap)
    mt_arrays = _multitau_arrays(multitau, qmap) if multitau is not None else None
    if twotime is not None:
        _check_twotime(twotime, qmap)
    fit_arrays = _fit_arrays(fit) if fit else {}
    temp = target.parent / f".{target.name}.partial-{secrets.token_hex(6)}"
    try:
        with h5py.File(temp, "w") as f:
            _write_entry(f, metadata)
            _write_qmap(f, qmap)
            _write_saxs(f, saxs_arrays)
            if multitau is not None and mt_arrays is not None:
                _write_multitau(f, mt_arrays, int(multitau.n_frames), metadata)
            if twotime is not None:
                _write_twotime(f, twotime, metadata)
            if fit_arrays:
                group = f.require_group(lay.FIT)
                for name, arr in fit_arrays.items():
                    _put(group, name, arr)
            _write_provenance(f, metadata)
            f.flush()
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise
    return target
