"""The summary of one correlation run (:func:`xpcs_kernel.pipeline.correlate_file`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xpcs_kernel._version import __version__
from xpcs_kernel.digest import sha256_file  # re-exported: its public path since the start

__all__ = ["CorrelationSummary", "sha256_file"]


@dataclass(frozen=True)
class CorrelationSummary:
    """What a run did, small enough for a flow's run state (JSON-friendly)."""

    output: str
    raw: str
    qmap: str
    mode: str
    n_frames: int
    frame_shape: tuple[int, int]
    n_pixels: int
    n_dynamic: int
    n_static: int
    path: str
    occupancy: float
    frame_time: float
    timings: dict[str, float]
    fit: list[dict[str, Any]] = field(default_factory=list)
    diffusion: dict[str, float] | None = None
    software_version: str = __version__

    @property
    def correlation_rate(self) -> float:
        """Pixel-frames per second of the correlation alone."""
        seconds = self.timings.get("correlate", 0.0)
        return self.n_pixels * self.n_frames / seconds if seconds > 0 else float("nan")

    @property
    def overall_rate(self) -> float:
        """Pixel-frames per second of the whole run (read, correlate, write)."""
        seconds = self.timings.get("total", 0.0)
        return self.n_pixels * self.n_frames / seconds if seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "raw": self.raw,
            "qmap": self.qmap,
            "mode": self.mode,
            "n_frames": self.n_frames,
            "frame_shape": list(self.frame_shape),
            "n_pixels": self.n_pixels,
            "n_dynamic": self.n_dynamic,
            "n_static": self.n_static,
            "path": self.path,
            "occupancy": self.occupancy,
            "frame_time": self.frame_time,
            "timings": dict(self.timings),
            "correlation_rate": self.correlation_rate,
            "overall_rate": self.overall_rate,
            "fit": list(self.fit),
            "diffusion": self.diffusion,
            "software_version": self.software_version,
        }
