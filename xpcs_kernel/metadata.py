"""Acquisition metadata read from a raw HDF5 file (frame time, energy, ...).

APS raw files keep these under ``/entry``; the synthetic writer stores them
at the same keys. Anything absent is ``None`` and the caller decides (the
pipeline asks the user for ``--frame-time`` rather than guessing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np

__all__ = ["METADATA_KEYS", "RawMetadata", "read_raw_metadata"]

METADATA_KEYS = {
    "frame_time": ("/entry/instrument/detector_1/frame_time",),
    "count_time": ("/entry/instrument/detector_1/count_time",),
    "energy_kev": ("/entry/instrument/incident_beam/incident_energy",),
    "start_time": ("/entry/start_time",),
}
"""Where each field is looked up, first match wins."""


@dataclass(frozen=True)
class RawMetadata:
    """Acquisition facts of a raw file; ``None`` where the file does not say."""

    frame_time: float | None = None
    count_time: float | None = None
    energy_kev: float | None = None
    start_time: str | None = None


def _scalar(handle: h5py.File, key: str) -> float | str | None:
    obj = handle.get(key)
    if not isinstance(obj, h5py.Dataset):
        return None
    value = obj[()]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        return None
    number = float(arr.reshape(-1)[0])
    return number if np.isfinite(number) else None


def read_raw_metadata(path: str | os.PathLike[str]) -> RawMetadata:
    """Read :class:`RawMetadata` from an HDF5 raw file; other formats give all ``None``."""
    try:
        if not h5py.is_hdf5(path):
            return RawMetadata()
        with h5py.File(path, "r") as handle:
            found: dict[str, float | str | None] = {}
            for name, keys in METADATA_KEYS.items():
                found[name] = next(
                    (v for v in (_scalar(handle, k) for k in keys) if v is not None), None
                )
    except OSError:
        return RawMetadata()  # unreadable files are reported by the frame reader

    def number(name: str) -> float | None:
        value = found[name]
        return float(value) if isinstance(value, float) and value > 0 else None

    start = found["start_time"]
    return RawMetadata(
        frame_time=number("frame_time"),
        count_time=number("count_time"),
        energy_kev=number("energy_kev"),
        start_time=start if isinstance(start, str) else None,
    )
