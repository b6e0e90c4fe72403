"""How far a (possibly partial) result file is: for plot titles and status views.

A follower records ``parameters["follow"] = {"frames", "complete",
"resumed_from"}`` in the result's provenance; an offline result has no such
entry and is complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from xpcs_kernel.result import read_result

__all__ = ["ResultProgress", "frames_label", "read_progress"]


def frames_label(parameters: Mapping[str, Any], n_frames: int) -> str:
    """``"1200 frames"``, or ``"1200 frames so far (live)"`` for a partial result."""
    follow = parameters.get("follow")
    if isinstance(follow, Mapping) and not follow.get("complete", True):
        return f"{n_frames} frames so far (live)"
    return f"{n_frames} frames"


@dataclass(frozen=True)
class ResultProgress:
    """The frame count of a result and its g2 so far, per dynamic bin.

    ``g2_first`` and ``g2_last`` are g2 at the shortest and the longest delay
    (the contrast seen so far and how far it has decayed).
    """

    path: str
    frames: int
    complete: bool
    g2_first: tuple[float, ...]
    g2_last: tuple[float, ...]
    longest_delay_s: float

    def lines(self) -> list[str]:
        """A few lines of text for a terminal."""
        state = "complete" if self.complete else "so far (live)"
        out = [f"{self.path}: {self.frames} frames {state}"]
        for b, (first, last) in enumerate(zip(self.g2_first, self.g2_last, strict=True)):
            out.append(
                f"  bin {b}: g2 {first:.4f} at the first delay, "
                f"{last:.4f} at {self.longest_delay_s:.3g} s"
            )
        return out


def read_progress(path: str | os.PathLike[str]) -> ResultProgress:
    """Read the frame count and g2 so far of a multi-tau result file."""
    res = read_result(path)
    meta = res.metadata
    frames = int(meta.end) - int(meta.begin)
    follow = meta.parameters.get("follow")
    complete = not (isinstance(follow, Mapping) and not follow.get("complete", True))
    if res.g2 is None or res.delays is None or res.g2.shape[0] == 0:
        return ResultProgress(str(path), frames, complete, (), (), 0.0)
    g2 = np.asarray(res.g2, dtype=float)
    step = meta.frame_time * meta.stride * meta.avg
    return ResultProgress(
        str(path),
        frames,
        complete,
        tuple(float(v) for v in g2[0]),
        tuple(float(v) for v in g2[-1]),
        float(res.delays[-1]) * step,
    )
