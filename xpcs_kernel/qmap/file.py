"""HDF5 layouts of q-map files: pySimpleMask ``/qmap`` and legacy APS ``/data``.

This module only moves arrays between files and plain dictionaries whose keys
are the fields of :class:`xpcs_kernel.qmap.model.QMap`; validation happens when the
``QMap`` is built (:func:`xpcs_kernel.qmap.model.read_qmap`). Every failure to find or
read a dataset raises :class:`QMapError` naming the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import QMapError

__all__ = ["read_qmap_fields", "write_qmap_group"]

_GEOMETRY = ("beam_center_x", "beam_center_y", "pixel_size", "energy", "detector_distance")
#: arrays larger than this are stored LZF-compressed (as pySimpleMask does)
_COMPRESS_ABOVE = 1024


def _read(f: h5py.File, key: str, path: str, *, required: bool = True) -> NDArray[Any] | None:
    try:
        present = key in f
        obj = f[key] if present else None
        if obj is not None and not isinstance(obj, h5py.Dataset):
            raise QMapError("is not a dataset", path=path, key=key)
        value = None if obj is None else np.asarray(obj[()])
    except QMapError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise QMapError(f"cannot read dataset ({exc})", path=path, key=key) from exc
    if value is None and required:
        raise QMapError("missing dataset", path=path, key=key)
    return value


def _need(f: h5py.File, key: str, path: str) -> NDArray[Any]:
    value = _read(f, key, path)
    assert value is not None  # _read raises for a missing required key
    return value


def _scalar(value: NDArray[Any] | None, path: str, key: str) -> float:
    if value is None:
        return float("nan")
    if value.size != 1:
        raise QMapError("must be a scalar", path=path, key=key, found=f"shape {value.shape}")
    try:
        return float(value.reshape(-1)[0])
    except (TypeError, ValueError) as exc:
        raise QMapError("must be a number", path=path, key=key) from exc


def _map(value: NDArray[Any], path: str, key: str) -> NDArray[Any]:
    value = np.squeeze(value) if value.ndim > 2 else value
    if value.ndim != 2:
        raise QMapError("must be a 2-D image", path=path, key=key, found=f"shape {value.shape}")
    if value.dtype.kind == "i":
        value = np.where(value < 0, 0, value)  # legacy maps use -1 for "unused"
    elif value.dtype.kind not in "ub":
        raise QMapError("must hold integers", path=path, key=key, found=str(value.dtype))
    return value


def _strings(value: NDArray[Any] | None, default: tuple[str, str]) -> tuple[str, str]:
    if value is None:
        return default
    items = [v.decode() if isinstance(v, bytes) else str(v) for v in value.reshape(-1)]
    return (items[0], items[1]) if len(items) == 2 else default


def _compact(
    roi: NDArray[Any],
    correlated: NDArray[np.bool_],
    mapping: NDArray[np.int64],
    path: str,
    key: str,
) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """Drop bins with no correlated pixel; renumber the rest 1..n in order."""
    roi = roi.astype(np.int64)
    top = int(roi.max())
    if top > mapping.size:
        raise QMapError(
            f"bin numbers go up to {top} but only {mapping.size} bins are described",
            path=path,
            key=key,
        )
    present = np.zeros(mapping.size + 1, dtype=bool)
    present[roi[correlated]] = True
    present[0] = False
    kept = np.flatnonzero(present)
    renumber = np.zeros(mapping.size + 1, dtype=np.uint32)
    renumber[kept] = np.arange(1, kept.size + 1, dtype=np.uint32)
    return renumber[roi], mapping[kept - 1]


def _grid(f: h5py.File, part: str, path: str) -> dict[str, Any]:
    """pySimpleMask grid description of one partition, with per-bin q and phi."""
    root = "/qmap/" + part
    n0, n1 = (int(v) for v in _need(f, root + "_num_pts", path).reshape(-1)[:2])
    v0 = _need(f, root + "_v_list_dim0", path).astype(np.float64).reshape(-1)
    v1 = _need(f, root + "_v_list_dim1", path).astype(np.float64).reshape(-1)
    mapping = _need(f, root + "_index_mapping", path).astype(np.int64).reshape(-1)
    if (v0.size, v1.size) != (n0, n1):
        raise QMapError(
            "bin-centre lists do not match num_pts",
            path=path,
            key=root + "_v_list_dim0",
            expected=f"{n0} and {n1} values",
            found=f"{v0.size} and {v1.size}",
        )
    return {"num_pts": (n0, n1), "v_list_dim0": v0, "v_list_dim1": v1, "index_mapping": mapping}


def _legacy_grid(f: h5py.File, prefix: str, n_bins: int, path: str) -> dict[str, Any]:
    """Grid description from the legacy ``/data/{d,s}qval``-style lists."""
    qval = _need(f, f"/data/{prefix}qval", path).astype(np.float64).reshape(-1)
    pval = _read(f, f"/data/{prefix}phival", path, required=False)
    phival = np.zeros(1) if pval is None else pval.astype(np.float64).reshape(-1)
    noq = _read(f, f"/data/{prefix}noq", path, required=False)
    nophi = _read(f, f"/data/{prefix}nophi", path, required=False)
    n0 = qval.size if noq is None else int(_scalar(noq, path, f"/data/{prefix}noq"))
    n1 = phival.size if nophi is None else int(_scalar(nophi, path, f"/data/{prefix}nophi"))
    if qval.size == n0 * n1 and phival.size == qval.size:
        # one value per grid cell (q-major), NaN for empty cells; bins number the finite cells
        cells = np.flatnonzero(np.isfinite(qval))
        grid_q = np.where(np.isfinite(qval), qval, 0.0).reshape(n0, n1)
        grid_p = np.where(np.isfinite(phival), phival, 0.0).reshape(n0, n1)
        filled = np.isfinite(qval).reshape(n0, n1)
        v0 = grid_q.sum(axis=1) / np.maximum(filled.sum(axis=1), 1)
        v1 = grid_p.sum(axis=0) / np.maximum(filled.sum(axis=0), 1)
        mapping = cells.astype(np.int64)
    elif qval.size == n0 and phival.size == n1:
        # one value per axis; bin b sits at grid position b - 1 (q-major)
        v0, v1 = qval, phival
        mapping = np.arange(min(n_bins, n0 * n1), dtype=np.int64)
    else:
        raise QMapError(
            "q list does not match the grid size",
            path=path,
            key=f"/data/{prefix}qval",
            expected=f"{n0} or {n0 * n1} values",
            found=str(qval.size),
        )
    return {"num_pts": (n0, n1), "v_list_dim0": v0, "v_list_dim1": v1, "index_mapping": mapping}


def read_qmap_fields(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a pySimpleMask or legacy q-map file into ``QMap`` constructor fields.

    See :func:`xpcs_kernel.qmap.model.read_qmap`.
    """
    name = os.fspath(path)
    try:
        f = h5py.File(name, "r")
    except FileNotFoundError as exc:
        raise QMapError("no such file", path=name, key="/") from exc
    except OSError as exc:
        raise QMapError(f"not a readable HDF5 file ({exc})", path=name, key="/") from exc
    with f:
        try:
            modern = "qmap" in f
            legacy = not modern and "data" in f and "dynamicMap" in f["data"]
        except (OSError, KeyError) as exc:
            raise QMapError(f"corrupt file ({exc})", path=name, key="/") from exc
        if modern:
            return _read_modern(f, name)
        if legacy:
            return _read_legacy(f, name)
        raise QMapError(
            "not a q-map file",
            path=name,
            key="/qmap/dynamic_roi_map",
            expected="a pySimpleMask /qmap group or a legacy /data/dynamicMap",
        )


def _finish(
    fields: dict[str, Any], grids: dict[str, dict[str, Any]], keys: dict[str, str], path: str
) -> dict[str, Any]:
    correlated = (fields["static_roi_map"] > 0) & fields["mask"]
    for part, grid in grids.items():
        roi, mapping = _compact(
            fields[f"{part}_roi_map"], correlated, grid["index_mapping"], path, keys[part]
        )
        n0, n1 = grid["num_pts"]
        if mapping.size and (mapping.min() < 0 or mapping.max() >= n0 * n1):
            raise QMapError(
                f"grid positions must lie in [0, {n0 * n1})",
                path=path,
                key=keys[part].replace("roi_map", "index_mapping"),
            )
        fields[f"{part}_roi_map"] = roi
        fields[f"{part}_q"] = grid["v_list_dim0"][mapping // n1]
        fields[f"{part}_phi"] = grid["v_list_dim1"][mapping % n1]
        fields[f"{part}_index_mapping"] = mapping
        for key in ("num_pts", "v_list_dim0", "v_list_dim1"):
            fields[f"{part}_{key}"] = grid[key]
    return fields


def _read_modern(f: h5py.File, path: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("dynamic_roi_map", "static_roi_map"):
        fields[key] = _map(_need(f, "/qmap/" + key, path), path, "/qmap/" + key)
    fields["mask"] = _map(_need(f, "/qmap/mask", path), path, "/qmap/mask").astype(bool)
    blemish = _read(f, "/qmap/blemish", path, required=False)
    if blemish is not None:
        fields["blemish"] = _map(blemish, path, "/qmap/blemish").astype(bool)
    for key in _GEOMETRY:
        fields[key] = _scalar(_need(f, "/qmap/" + key, path), path, "/qmap/" + key)
    fields["map_names"] = _strings(_read(f, "/qmap/map_names", path, required=False), ("q", "phi"))
    fields["map_units"] = _strings(
        _read(f, "/qmap/map_units", path, required=False), ("Å⁻¹", "deg")
    )
    grids = {part: _grid(f, part, path) for part in ("dynamic", "static")}
    keys = {part: f"/qmap/{part}_roi_map" for part in grids}
    return _finish(fields, grids, keys, path)


def _read_legacy(f: h5py.File, path: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, src in (("dynamic_roi_map", "dynamicMap"), ("static_roi_map", "staticMap")):
        fields[key] = _map(_need(f, "/data/" + src, path), path, "/data/" + src)
    fields["mask"] = _map(_need(f, "/data/mask", path), path, "/data/mask").astype(bool)
    for key, src in (("beam_center_x", "/data/x0"), ("beam_center_y", "/data/y0")):
        fields[key] = _scalar(_read(f, src, path, required=False), path, src)
    for key in ("pixel_size", "energy", "detector_distance"):
        fields[key] = float("nan")
    grids = {
        "dynamic": _legacy_grid(f, "d", int(fields["dynamic_roi_map"].max()), path),
        "static": _legacy_grid(f, "s", int(fields["static_roi_map"].max()), path),
    }
    keys = {"dynamic": "/data/dynamicMap", "static": "/data/staticMap"}
    return _finish(fields, grids, keys, path)


def write_qmap_group(
    path: str | os.PathLike[str],
    datasets: dict[str, NDArray[Any] | str | float],
    attrs: dict[str, str],
    *,
    group: str = "qmap",
) -> None:
    """Write ``datasets`` and ``attrs`` as HDF5 group ``group`` of a new file.

    Written to a temporary file in the same directory, then renamed over
    ``path``; on failure the temporary file is removed and the error re-raised.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            g = f.create_group(group)
            for key, value in datasets.items():
                big = isinstance(value, np.ndarray) and value.size > _COMPRESS_ABOVE
                dset = g.create_dataset(key, data=value, compression="lzf" if big else None)
                if "_v_list_dim" in key:
                    dim = int(key[-1])
                    for attr in ("map_units", "map_names"):
                        labels = datasets.get(attr)
                        if isinstance(labels, np.ndarray) and labels.size > dim:
                            dset.attrs[attr[4:-1]] = labels[dim]
                    dset.attrs["size"] = np.asarray(value).size
            for key, text in attrs.items():
                g.attrs[key] = text
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
