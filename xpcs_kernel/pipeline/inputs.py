"""The inputs of one correlation run, checked the same way for every backend.

:func:`check_run_inputs` checks the frames against the q-map and finds the
frame time, the incident energy and the frame selection; the numba run
(:func:`xpcs_kernel.pipeline.run.prepare_run`) and the torch run
(:mod:`xpcs_kernel.pipeline.torch_run`) both call it, so they accept and
refuse the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xpcs_kernel.errors import CorrelationError, FrameFormatError
from xpcs_kernel.io import FrameSelection, FrameSource
from xpcs_kernel.metadata import RawMetadata, read_raw_metadata
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.qmap import QMap

__all__ = ["RunInputs", "check_run_inputs"]


@dataclass(frozen=True)
class RunInputs:
    """What the raw file, its q-map and the options fix for a run (checked)."""

    meta: RawMetadata
    frame_time: float
    energy_kev: float
    selection: FrameSelection
    n_out: int


def check_run_inputs(
    raw_path: Path, source: FrameSource, qm: QMap, opts: CorrelationOptions
) -> RunInputs:
    """Check frames against q-map, frame time, energy, selection (the same for every backend).

    Raises
    ------
    QMapError, FrameFormatError, CorrelationError
        Naming the file and what is missing or wrong.
    """
    qm.check_frame_shape(source.frame_shape, frames_source=str(raw_path))
    meta = read_raw_metadata(raw_path) if source.path is not None else RawMetadata()
    frame_time = opts.frame_time or meta.frame_time
    if frame_time is None:
        raise FrameFormatError(
            "frame time unknown: not in the file's metadata; pass frame_time "
            "(--frame-time SECONDS)",
            path=raw_path,
            key="/entry/instrument/detector_1/frame_time",
        )
    energy_kev = meta.energy_kev or qm.energy
    if not (np.isfinite(energy_kev) and energy_kev > 0):
        raise FrameFormatError(
            "incident energy unknown: neither the raw file nor the q-map records it",
            path=raw_path,
            key="/entry/instrument/incident_beam/incident_energy",
            expected="a positive energy in keV",
        )
    selection = FrameSelection(begin=opts.begin, end=opts.end, stride=opts.stride, avg=opts.avg)
    n_out = selection.n_output(source.n_frames)
    if opts.wants_multitau and n_out < 2:
        raise CorrelationError(
            f"{raw_path}: {n_out} frame(s) selected; multi-tau needs at least 2 "
            "(the first delay is one frame)"
        )
    return RunInputs(meta, float(frame_time), float(energy_kev), selection, n_out)
