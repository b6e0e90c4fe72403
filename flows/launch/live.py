"""The checks and the chooser's request of a live launch (``launch(..., live=True)``).

A live run follows the raw file while the detector writes it, so what a
normal launch checks on the complete file cannot be checked yet: the q-map
must read, the options must be ones a follower honours (multi-tau over
every frame) and the follower's timing must be valid; the raw file itself
is checked by the follower as its frames arrive. The chooser is asked for
a facility whose Compute endpoint reads the beamline storage
(``capabilities.reads_beamline_storage``), sized from the q-map's detector
shape (the frame count is not known yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployments import Deployment, JobRequest
from flows.xpcs.dataset_check import qmap_shape
from xpcs_kernel.errors import UsageError
from xpcs_kernel.live.task import check_live_options, follow_config
from xpcs_kernel.options import CorrelationOptions

__all__ = ["check_live_facility", "live_job", "prepare_live"]


def prepare_live(
    raw: Path, qmap: Path, options: CorrelationOptions, follow: Mapping[str, Any] | None
) -> tuple[JobRequest, dict[str, Any]]:
    """Check a live launch; returns the chooser's request and the follow settings.

    Raises
    ------
    QMapError
        The q-map does not read.
    UsageError
        Options a follower cannot honour, or an invalid follow setting.
    """
    shape = qmap_shape(qmap)
    check_live_options(options)
    settings = dict(follow or {})
    try:
        follow_config(settings)
    except TypeError as exc:  # a mistyped value FollowConfig could not compare
        raise UsageError(str(exc), argument="follow") from None
    return live_job(raw, shape, options.backend), settings


def live_job(raw: Path, shape: tuple[int, int], backend: str) -> JobRequest:
    """The chooser's request for a file still being written: its size so far."""
    return JobRequest(
        dataset=raw.stem,
        bytes_in=raw.stat().st_size if raw.exists() else 0,
        frames=1,
        pixels=max(1, shape[0] * shape[1]),
        allow_local=True,
        backend=backend,
        live=True,
    )


def check_live_facility(deployment: Deployment) -> None:
    """Refuse a named facility whose Compute endpoint cannot read the beamline storage.

    Raises
    ------
    UsageError
        Naming the facility and the descriptor key that would allow it.
    """
    if not deployment.capabilities.reads_beamline_storage:
        raise UsageError(
            f"facility {deployment.name!r} cannot run a live run: its Compute endpoint does "
            "not read the beamline storage (capabilities.reads_beamline_storage in "
            f"{deployment.origin or deployment.name + '.toml'})",
            argument="facility",
        )
