"""The q-map: which pixels are correlated together, and at what q.

A :class:`QMap` holds the two nested partitions of the detector used by XPCS
(REFERENCE.md section 4): *dynamic* bins, over which g2 is reported, and finer
*static* bins, over which intensities are pooled before normalization. Every
static bin lies inside exactly one dynamic bin.

Validity rules (checked by ``QMap.__post_init__``, :class:`QMapError` naming
the source file and key on failure):

* all maps have the same 2-D shape and at least one pixel is valid (``mask``);
* a pixel is *correlated* when ``static_roi_map > 0`` and ``mask``; at least
  one pixel is correlated;
* bin numbers are compact: the dynamic (static) bins are exactly
  ``1..n_dynamic`` (``1..n_static``), where ``n`` is the length of the q list,
  and **no bin number may be empty**: every static bin holds at least one
  correlated pixel and every dynamic bin holds at least one static bin. An
  in-memory map never has empty bins; :func:`read_qmap` renumbers files whose
  bins were emptied by their mask (pySimpleMask does the same when it saves),
  dropping the empty bins and their ``index_mapping`` entries;
* every correlated pixel of a static bin has the same, non-zero, dynamic bin.

The pySimpleMask grid description (``num_pts``, ``v_list_dim0/1``,
``index_mapping``) is kept so that :func:`write_qmap` and
:meth:`QMap.to_datasets` write the layout back faithfully; when it is not
given it is derived from the distinct q and phi values of the bins.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import QMapError, UsageError
from xpcs_kernel.qmap.file import read_qmap_fields, write_qmap_group

__all__ = ["QMap", "read_qmap", "write_qmap"]

_PARTS = ("dynamic", "static")
_GEOMETRY = ("beam_center_x", "beam_center_y", "pixel_size", "energy", "detector_distance")


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False, repr=False)
class QMap:
    """Dynamic and static partitions of a detector, with geometry.

    Bin numbers in the maps are 1-based and compact, 0 = unused; q in
    1/Angstrom, phi in degrees, ``pixel_size`` and ``detector_distance`` in m,
    ``energy`` in keV, beam centre in pixels (x = column, y = row). See the
    module docstring for the validity rules.
    """

    dynamic_roi_map: NDArray[np.uint32]
    static_roi_map: NDArray[np.uint32]
    mask: NDArray[np.bool_]
    dynamic_q: NDArray[np.float64]
    dynamic_phi: NDArray[np.float64]
    static_q: NDArray[np.float64]
    static_phi: NDArray[np.float64]
    beam_center_x: float
    beam_center_y: float
    pixel_size: float
    energy: float
    detector_distance: float
    dynamic_num_pts: tuple[int, int] | None = None
    static_num_pts: tuple[int, int] | None = None
    dynamic_v_list_dim0: NDArray[np.float64] | None = None
    dynamic_v_list_dim1: NDArray[np.float64] | None = None
    static_v_list_dim0: NDArray[np.float64] | None = None
    static_v_list_dim1: NDArray[np.float64] | None = None
    dynamic_index_mapping: NDArray[np.int64] | None = None
    static_index_mapping: NDArray[np.int64] | None = None
    map_names: tuple[str, str] = ("q", "phi")
    map_units: tuple[str, str] = ("Å⁻¹", "deg")
    blemish: NDArray[np.bool_] | None = None
    source: str | None = None
    _pixel_index: NDArray[np.intp] = field(init=False, repr=False)
    _static_index: NDArray[np.intp] = field(init=False, repr=False)
    _dynamic_of_static: NDArray[np.intp] = field(init=False, repr=False)

    # ------------------------------------------------------------ validation
    def _error(
        self, message: str, key: str, *, expected: str | None = None, found: str | None = None
    ) -> QMapError:
        return QMapError(message, path=self.source, key=key, expected=expected, found=found)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        maps = {}
        for key in ("dynamic_roi_map", "static_roi_map", "mask", "blemish"):
            raw = getattr(self, key)
            if raw is None:
                continue
            arr = np.asarray(raw)
            if arr.ndim != 2:
                raise self._error("must be a 2-D array", key, found=f"shape {arr.shape}")
            if key.endswith("roi_map"):
                if arr.dtype.kind not in "iu" or (arr.size and arr.min() < 0):
                    raise self._error("must hold non-negative integers", key, found=str(arr.dtype))
                arr = arr.astype(np.uint32)
            else:
                arr = arr.astype(bool)
            maps[key] = arr
        shape = maps["mask"].shape
        for key, arr in maps.items():
            if arr.shape != shape:
                raise self._error(
                    "shape differs from the mask", key, expected=str(shape), found=str(arr.shape)
                )
            self._set(key, _frozen(arr))  # astype made a private copy
        if not self.mask.any():
            raise self._error("every pixel is masked: nothing to correlate", "mask")
        for key in _GEOMETRY:
            self._set(key, float(getattr(self, key)))
        for key in ("dynamic_q", "dynamic_phi", "static_q", "static_phi"):
            arr = np.array(getattr(self, key), dtype=np.float64).reshape(-1)  # a private copy
            self._set(key, _frozen(arr))
        for part in _PARTS:
            q, phi = getattr(self, f"{part}_q"), getattr(self, f"{part}_phi")
            if q.size != phi.size or q.size == 0:
                raise self._error(
                    "q and phi lists must have one entry per bin, at least one",
                    f"{part}_phi",
                    expected=f"{q.size} values",
                    found=str(phi.size),
                )
            top = int(getattr(self, f"{part}_roi_map").max())
            if top > q.size:
                raise self._error(
                    f"bin numbers go up to {top} but only {q.size} bins have a q value",
                    f"{part}_roi_map",
                )
        self._check_bins()
        for part in _PARTS:
            self._check_grid(part)
        self._set("map_names", tuple(str(v) for v in self.map_names))
        self._set("map_units", tuple(str(v) for v in self.map_units))

    def _check_bins(self) -> None:
        flat_static = self.static_roi_map.reshape(-1)
        pixel_index = np.flatnonzero((flat_static > 0) & self.mask.reshape(-1))
        if pixel_index.size == 0:
            raise self._error("no valid pixel lies in a static bin", "static_roi_map")
        static_index = flat_static[pixel_index].astype(np.intp) - 1
        dyn = self.dynamic_roi_map.reshape(-1)[pixel_index].astype(np.intp)
        counts = np.bincount(static_index, minlength=self.n_static)
        if not counts.all():
            empty = int(np.flatnonzero(counts == 0)[0]) + 1
            raise self._error(
                f"static bin {empty} has no valid pixel (bin numbers must be compact)",
                "static_roi_map",
            )
        lo = np.full(self.n_static, np.iinfo(np.intp).max, dtype=np.intp)
        hi = np.zeros(self.n_static, dtype=np.intp)
        np.minimum.at(lo, static_index, dyn)
        np.maximum.at(hi, static_index, dyn)
        bad = np.flatnonzero((lo != hi) | (lo == 0))
        if bad.size:
            spans = np.unique(dyn[static_index == bad[0]]).tolist()
            raise self._error(
                f"static bin {int(bad[0]) + 1} spans dynamic bins {spans} (0 = none): "
                "every static bin must lie inside exactly one dynamic bin",
                "static_roi_map",
            )
        dynamic_of_static = lo - 1
        dcounts = np.bincount(dynamic_of_static, minlength=self.n_dynamic)
        if not dcounts.all():
            empty = int(np.flatnonzero(dcounts == 0)[0]) + 1
            raise self._error(
                f"dynamic bin {empty} holds no valid static bin (bin numbers must be compact)",
                "dynamic_roi_map",
            )
        self._set("_pixel_index", _frozen(pixel_index.astype(np.intp)))
        self._set("_static_index", _frozen(static_index))
        self._set("_dynamic_of_static", _frozen(dynamic_of_static))

    def _check_grid(self, part: str) -> None:
        q, phi = getattr(self, f"{part}_q"), getattr(self, f"{part}_phi")
        names = [f"{part}_{s}" for s in ("num_pts", "v_list_dim0", "v_list_dim1", "index_mapping")]
        given = [getattr(self, n) is not None for n in names]
        if not any(given):
            v0, i0 = np.unique(q, return_inverse=True)
            v1, i1 = np.unique(phi, return_inverse=True)
            self._set(names[0], (int(v0.size), int(v1.size)))
            self._set(names[1], _frozen(v0.astype(np.float64)))
            self._set(names[2], _frozen(v1.astype(np.float64)))
            self._set(names[3], _frozen((i0 * v1.size + i1).astype(np.int64)))
            return
        if not all(given):
            missing = names[given.index(False)]
            raise self._error("the grid description is incomplete", missing)
        n0, n1 = (int(v) for v in getattr(self, names[0]))
        v0 = np.asarray(getattr(self, names[1]), dtype=np.float64).reshape(-1)
        v1 = np.asarray(getattr(self, names[2]), dtype=np.float64).reshape(-1)
        index = np.asarray(getattr(self, names[3])).reshape(-1).astype(np.int64)
        if (v0.size, v1.size) != (n0, n1):
            raise self._error(
                "bin-centre lists do not match num_pts",
                names[1],
                expected=f"{n0} and {n1} values",
                found=f"{v0.size} and {v1.size}",
            )
        if index.size != q.size or (index.size and (index.min() < 0 or index.max() >= n0 * n1)):
            raise self._error(
                f"must give, for each of the {q.size} bins, a grid position in [0, {n0 * n1})",
                names[3],
            )
        if not (
            np.allclose(v0[index // n1], q, equal_nan=True)
            and np.allclose(v1[index % n1], phi, equal_nan=True)
        ):
            raise self._error("disagrees with the per-bin q/phi values", names[3])
        self._set(names[0], (n0, n1))
        self._set(names[1], _frozen(v0.copy()))
        self._set(names[2], _frozen(v1.copy()))
        self._set(names[3], _frozen(index.copy()))

    def __repr__(self) -> str:
        return (
            f"QMap(shape={self.shape}, n_dynamic={self.n_dynamic}, n_static={self.n_static}, "
            f"pixels={self.pixel_index.size}, source={self.source!r})"
        )

    # ------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        """Detector shape ``(H, W)``."""
        h, w = self.mask.shape
        return int(h), int(w)

    @property
    def n_dynamic(self) -> int:
        """Number of dynamic bins."""
        return int(self.dynamic_q.size)

    @property
    def n_static(self) -> int:
        """Number of static bins."""
        return int(self.static_q.size)

    @property
    def pixel_index(self) -> NDArray[np.intp]:
        """Flat indices ``row * W + col`` of the correlated pixels (static bin > 0 and mask)."""
        return self._pixel_index

    @property
    def static_index(self) -> NDArray[np.intp]:
        """0-based static bin of each correlated pixel (aligned with :attr:`pixel_index`)."""
        return self._static_index

    @property
    def dynamic_of_static(self) -> NDArray[np.intp]:
        """0-based dynamic bin of each static bin, shape ``(n_static,)``."""
        return self._dynamic_of_static

    @cached_property
    def hash(self) -> str:
        """SHA-256 (hex) over the maps, bin lists, grid description and geometry.

        Stable across processes and platforms (fixed little-endian dtypes); the
        ``source`` path does not enter it.
        """
        datasets, _ = self._datasets()
        h = hashlib.sha256(b"xpcs_kernel.qmap.model/1")
        for key in sorted(datasets):
            value = datasets[key]
            h.update(key.encode())
            if isinstance(value, np.ndarray):
                kind = value.dtype.kind
                if kind == "f":
                    value = value.astype("<f8")
                elif kind in "iub":
                    value = value.astype("<i8")
                h.update(str(value.shape).encode())
                h.update(np.ascontiguousarray(value).tobytes())
            else:
                h.update(repr(value).encode())
        return h.hexdigest()

    # ----------------------------------------------------------------- output
    def check_frame_shape(
        self, frame_shape: tuple[int, int], *, frames_source: str | None = None
    ) -> None:
        """Raise :class:`QMapError` unless the frames have this q-map's shape."""
        if tuple(int(v) for v in frame_shape) != self.shape:
            frames = f"frames of {frames_source}" if frames_source else "the frames"
            raise QMapError(
                f"q-map does not fit {frames}",
                path=self.source,
                key="dynamic_roi_map",
                expected=f"frames of shape {self.shape}",
                found=f"{tuple(frame_shape)}",
            )

    def _datasets(self) -> tuple[dict[str, NDArray[Any] | str | float], dict[str, str]]:
        out: dict[str, NDArray[Any] | str | float] = {
            "dynamic_roi_map": self.dynamic_roi_map,
            "static_roi_map": self.static_roi_map,
            "mask": self.mask.astype(np.uint8),
            "map_names": np.array(self.map_names, dtype="S"),
            "map_units": np.array([u.encode() for u in self.map_units]),
        }
        if self.blemish is not None:
            out["blemish"] = self.blemish.astype(np.uint8)
        for key in _GEOMETRY:
            out[key] = float(getattr(self, key))
        for part in _PARTS:
            out[f"{part}_num_pts"] = np.array(getattr(self, f"{part}_num_pts"), dtype=np.int64)
            for suffix in ("v_list_dim0", "v_list_dim1", "index_mapping"):
                out[f"{part}_{suffix}"] = getattr(self, f"{part}_{suffix}")
        from xpcs_kernel._version import __version__

        return out, {"version": __version__}

    def to_datasets(self) -> tuple[dict[str, NDArray[Any] | str | float], dict[str, str]]:
        """Datasets and attributes of the pySimpleMask ``/qmap`` group.

        Returns
        -------
        datasets : dict
            ``dynamic_roi_map``, ``static_roi_map``, ``mask`` (uint8), optional
            ``blemish``, the geometry scalars, ``map_names``, ``map_units``
            (bytes), and per partition ``{dynamic,static}_num_pts``,
            ``_v_list_dim0``, ``_v_list_dim1``, ``_index_mapping``; plus
            ``source_file`` when known.
        attrs : dict
            ``hash`` (:attr:`hash`) and ``version`` (of xpcs_kernel).
        """
        datasets, attrs = self._datasets()
        if self.source is not None:
            datasets["source_file"] = self.source
        return datasets, {"hash": self.hash, **attrs}


def read_qmap(path: str | os.PathLike[str]) -> QMap:
    """Read a q-map file.

    Two layouts are understood (REFERENCE.md section 4):

    * pySimpleMask: group ``/qmap`` with ``dynamic_roi_map``, ``static_roi_map``,
      ``mask``, the geometry scalars and per partition ``*_num_pts``,
      ``*_v_list_dim0``, ``*_v_list_dim1``, ``*_index_mapping``;
    * legacy APS: ``/data/dynamicMap``, ``/data/staticMap``, ``/data/mask`` with
      the q/phi lists ``/data/{d,s}qval``, ``/data/{d,s}phival`` and grid sizes
      ``/data/{d,s}noq``, ``/data/{d,s}nophi``; beam centre from ``/data/x0``,
      ``/data/y0`` when present, other geometry NaN.

    Bins that hold no valid pixel are dropped and the rest renumbered
    compactly (see the module docstring).

    Raises
    ------
    QMapError
        Naming the file and the key for a missing, unreadable or inconsistent
        dataset, or a file that is not HDF5.
    """
    fields = read_qmap_fields(path)
    return QMap(**fields, source=os.fspath(path))


def write_qmap(path: str | os.PathLike[str], qmap: QMap) -> None:
    """Write ``qmap`` in the pySimpleMask layout (group ``/qmap``).

    The file is written under a temporary name in the same directory and
    renamed into place, so readers never see a partial file.
    """
    if not isinstance(qmap, QMap):
        raise UsageError(f"must be a QMap, got {type(qmap).__name__}", argument="qmap")
    datasets, attrs = qmap.to_datasets()
    datasets.pop("source_file", None)
    write_qmap_group(path, datasets, attrs)
