"""Read an APS XPCS result file written by :func:`xpcs_kernel.result.writer.write_result`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import ResultFileError, UsageError
from xpcs_kernel.result import layout as lay
from xpcs_kernel.result.inputs import ResultMetadata

__all__ = ["ResultFile", "read_result"]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.reshape(-1)[0])
    return str(value)


def _scalar(f: h5py.File, key: str) -> Any:
    return np.asarray(f[key][()]).reshape(-1)[0].item()


def _symmetric(upper: NDArray[Any]) -> NDArray[np.float32]:
    full = upper.astype(np.float32) + upper.T.astype(np.float32)
    full.flat[:: full.shape[0] + 1] *= 0.5
    return full


@dataclass(frozen=True)
class ResultFile:
    """The main contents of a verified result file.

    Multi-tau fields are ``None`` when the file has no ``/xpcs/multitau``,
    two-time fields when it has no ``/xpcs/twotime``.

    Attributes
    ----------
    path : Path
    analysis : tuple of str
        ``"multitau"`` and/or ``"twotime"``.
    metadata : ResultMetadata
        Read back from ``/entry``, the ``config`` groups and ``/xpcs/provenance``.
    qmap : mapping
        The ``/xpcs/qmap`` datasets (strings decoded), ``qmap_attrs`` its attributes.
    saxs_2d : ndarray, shape (H, W)
    saxs_1d : ndarray, shape (n_static,)
    saxs_1d_segments : ndarray, shape (n_seg, n_static)
    intensity_vs_time : ndarray, shape (2, N)
    delay_list : ndarray of int64, shape (n_tau,)
    g2, g2_err : ndarray, shape (n_tau, n_dynamic)
    G2_static, IP_static, IF_static : ndarray, shape (n_tau, n_static)
    pair_counts : ndarray, shape (n_tau,)
    twotime_bins : ndarray of int64
        0-based dynamic bins of the two-time maps.
    twotime_g2 : ndarray, shape (N, n_sel)
    twotime_g2_segments : ndarray, shape (n_segments, N // n_segments, n_sel)
        The :class:`~xpcs_kernel.twotime.correlator.TwoTimeResult` layout (the file stores
        the first two axes swapped).
    twotime_c2 : tuple of ndarray, optional
        Full symmetric maps, only when read with ``load_c2=True`` (see
        :meth:`load_c2` otherwise).
    fit : mapping of str to ndarray
    """

    path: Path
    analysis: tuple[str, ...]
    metadata: ResultMetadata
    qmap: Mapping[str, Any]
    qmap_attrs: Mapping[str, str]
    saxs_2d: NDArray[Any]
    saxs_1d: NDArray[Any]
    saxs_1d_segments: NDArray[Any]
    intensity_vs_time: NDArray[Any]
    delay_list: NDArray[np.int64] | None = None
    g2: NDArray[Any] | None = None
    g2_err: NDArray[Any] | None = None
    G2_static: NDArray[Any] | None = None
    IP_static: NDArray[Any] | None = None
    IF_static: NDArray[Any] | None = None
    pair_counts: NDArray[Any] | None = None
    twotime_bins: NDArray[np.int64] | None = None
    twotime_g2: NDArray[Any] | None = None
    twotime_g2_segments: NDArray[Any] | None = None
    twotime_c2: tuple[NDArray[np.float32], ...] | None = None
    fit: Mapping[str, NDArray[Any]] = field(default_factory=dict)

    @property
    def delays(self) -> NDArray[np.int64] | None:
        """Multi-tau delays in frames (alias of :attr:`delay_list`)."""
        return self.delay_list

    @property
    def n_frames(self) -> int:
        """Frames correlated: the length of :attr:`intensity_vs_time`."""
        return int(self.intensity_vs_time.shape[1])

    def load_c2(self, bin_index: int) -> NDArray[np.float32]:
        """The full symmetric two-time map of a 0-based dynamic bin."""
        if self.twotime_bins is None or bin_index not in self.twotime_bins.tolist():
            raise UsageError(
                f"no two-time map for bin {bin_index} in {self.path}", argument="bin_index"
            )
        with h5py.File(self.path, "r") as f:
            return _symmetric(np.asarray(f[lay.c2_key(int(bin_index) + 1)][()]))


def _metadata(f: h5py.File, path: Path) -> ResultMetadata:
    config = f"{lay.MULTITAU}/config" if lay.MULTITAU in f else f"{lay.TWOTIME}/config"
    prov = lay.PROVENANCE
    where = {  # ResultMetadata field -> key it is read from
        "frame_time": lay.FRAME_TIME,
        "count_time": lay.COUNT_TIME,
        "incident_energy_kev": lay.INCIDENT_ENERGY,
        "start_time": lay.START_TIME,
        "begin": f"{config}/begin_frame",
        "end": f"{config}/end_frame",
        "stride": f"{config}/stride_frame",
        "avg": f"{config}/avg_frame",
        "normalize_frame": f"{config}/normalize_frame",
        "software_version": f"{prov}/software_version",
        "parameters": f"{prov}/parameters",
        "timings": f"{prov}/timings",
        "input_files": f"{prov}/input_files",
    }

    def need(key: str) -> Any:
        if key not in f:
            raise ResultFileError(
                "required metadata key is missing", path=path, key=key, expected="present"
            )
        return f[key]

    for key in where.values():
        need(key)
    files = zip(
        [_text(p) for p in f[f"{prov}/input_files/path"][()]],
        [_text(h) for h in f[f"{prov}/input_files/sha256"][()]],
        [int(s) for s in f[f"{prov}/input_files/size"][()]],
        strict=True,
    )
    try:
        parameters = json.loads(_text(f[where["parameters"]][()]))
    except ValueError as exc:
        raise ResultFileError(
            f"invalid JSON: {exc}", path=path, key=where["parameters"], expected="JSON object"
        ) from exc
    try:
        return ResultMetadata(
            frame_time=float(_scalar(f, lay.FRAME_TIME)),
            count_time=float(_scalar(f, lay.COUNT_TIME)),
            incident_energy_kev=float(_scalar(f, lay.INCIDENT_ENERGY)),
            start_time=_text(f[lay.START_TIME][()]),
            begin=int(_scalar(f, where["begin"])),
            end=int(_scalar(f, where["end"])),
            stride=int(_scalar(f, where["stride"])),
            avg=int(_scalar(f, where["avg"])),
            normalize_frame=bool(_scalar(f, where["normalize_frame"])),
            input_files=tuple(files),
            software_version=_text(f[where["software_version"]][()]),
            parameters=parameters,
            timings={k: float(v[()]) for k, v in f[where["timings"]].items()},
        )
    except UsageError as exc:
        key = where.get(exc.argument or "", config)
        raise ResultFileError(
            f"invalid metadata: {exc}", path=path, key=key, expected="valid metadata"
        ) from exc


def read_result(path: str | os.PathLike[str], *, load_c2: bool = False) -> ResultFile:
    """Verify a result file (:func:`~xpcs_kernel.result.layout.verify_result`) and read it.

    Parameters
    ----------
    path : path
        The result file.
    load_c2 : bool
        Also read every two-time map (full symmetric float32 matrices).

    Returns
    -------
    ResultFile

    Raises
    ------
    ResultFileError
        If a key is missing or has the wrong shape or dtype, naming file and key.
    """
    lay.verify_result(path, strict=True)
    p = Path(path)
    with h5py.File(p, "r") as f:
        qgroup = f[lay.QMAP_GROUP]
        qmap: dict[str, Any] = {}
        for name, ds in qgroup.items():
            value = ds[()]
            qmap[name] = _text(value) if isinstance(value, bytes) else value
        out: dict[str, Any] = {
            "path": p,
            "metadata": _metadata(f, p),
            "qmap": qmap,
            "qmap_attrs": {k: _text(v) for k, v in qgroup.attrs.items()},
            "saxs_2d": f[lay.SAXS_2D][0],
            "saxs_1d": f[lay.SAXS_1D][0],
            "saxs_1d_segments": f[lay.SAXS_1D_SEGMENTS][()],
            "intensity_vs_time": f[lay.INTENSITY_VS_TIME][()],
        }
        analysis: list[str] = []
        if lay.MULTITAU in f:
            analysis.append("multitau")
            mt = f[lay.MULTITAU]
            out["delay_list"] = mt["delay_list"][()].astype(np.int64)
            out["g2"] = mt["normalized_g2"][()]
            out["g2_err"] = mt["normalized_g2_err"][()]
            for name in ("G2_static", "IP_static", "IF_static", "pair_counts"):
                if name in mt:
                    out[name] = mt[name][()]
        if lay.TWOTIME in f:
            analysis.append("twotime")
            tt = f[lay.TWOTIME]
            bins = tt["processed_bins"][()].astype(np.int64) - 1
            out["twotime_bins"] = bins
            out["twotime_g2"] = tt["normalized_g2"][()]
            out["twotime_g2_segments"] = tt["normalized_g2_segments"][()].transpose(1, 0, 2)
            if load_c2:
                out["twotime_c2"] = tuple(
                    _symmetric(f[lay.c2_key(int(b) + 1)][()]) for b in bins.tolist()
                )
        if lay.FIT in f:
            out["fit"] = {name: ds[()] for name, ds in f[lay.FIT].items()}
    return ResultFile(analysis=tuple(analysis), **out)
