"""Where a follower keeps its state so that a killed follower resumes.

One ``.npz`` file next to the result (``.<result name>.follow.npz``) holds the
:meth:`MultiTauCorrelator.state <xpcs_kernel.multitau.MultiTauCorrelator.state>`
arrays, the :class:`~xpcs_kernel.live.saxs_live.LiveSaxs` arrays and a JSON
record of what the state belongs to (raw file, q-map, options, the first
frame's digest and the frame count). It is written under a temporary name
and renamed, so a kill leaves either the previous checkpoint or the new one.
A checkpoint that does not match the file being followed is ignored and the
follower recomputes from the first frame.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.live.saxs_live import LiveSaxs
from xpcs_kernel.multitau import MultiTauCorrelator
from xpcs_kernel.qmap import QMap

__all__ = ["Checkpoint", "Resumed", "checkpoint_path"]

_RECORD = "follow_record"


def checkpoint_path(output: str | os.PathLike[str]) -> Path:
    """The checkpoint file of a result file."""
    out = Path(output)
    return out.with_name(f".{out.name}.follow.npz")


@dataclass
class Resumed:
    """State read back from a checkpoint."""

    frames: int
    correlator: MultiTauCorrelator
    saxs: LiveSaxs


class Checkpoint:
    """Save and load a follower's state for one (raw, q-map, options) identity.

    Parameters
    ----------
    path : Path
        The checkpoint file.
    identity : mapping
        JSON-friendly facts the state belongs to; a checkpoint whose identity
        differs is not resumed.
    """

    def __init__(self, path: str | os.PathLike[str], identity: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.identity = json.loads(json.dumps(dict(identity)))

    def save(self, frames: int, correlator: MultiTauCorrelator, saxs: LiveSaxs) -> None:
        """Replace the checkpoint atomically with the state after ``frames`` frames."""
        record = json.dumps({"identity": self.identity, "frames": int(frames)})
        arrays: dict[str, NDArray[Any]] = {**correlator.state(), **saxs.state()}
        arrays[_RECORD] = np.frombuffer(record.encode(), dtype=np.uint8)
        tmp = self.path.with_name(f"{self.path.name}.partial-{secrets.token_hex(4)}.npz")
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def load(self, qmap: QMap) -> Resumed | None:
        """The saved state if it exists and belongs to this identity, else ``None``."""
        try:
            with np.load(self.path) as data:
                record = json.loads(bytes(data[_RECORD]).decode())
                if record.get("identity") != self.identity:
                    return None
                arrays = {k: data[k] for k in data.files if k != _RECORD}
        except (OSError, ValueError, KeyError):  # absent or unreadable: recompute
            return None
        try:
            correlator = MultiTauCorrelator.from_state(arrays)
            saxs = LiveSaxs.from_state(qmap, arrays)
        except (UsageError, KeyError):  # a state of another layout: recompute
            return None
        frames = int(record["frames"])
        if correlator.n_frames != frames or saxs.frames_fed != frames:
            return None
        return Resumed(frames=frames, correlator=correlator, saxs=saxs)

    def remove(self) -> None:
        """Delete the checkpoint (the final result is written)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
