"""Pre-launch checks: what :func:`flows.launch.launch` and ``xpcs-flows run`` verify first.

A launch that cannot succeed is refused before anything starts (no run, no
transfer, no history row): the q-map must read, the raw file must open
as frames of the q-map's detector shape (:func:`preflight`), and the engine
must have a configured facility (:func:`check_engine_configured`). The frame
check is the watcher's own (:func:`flows.xpcs.dataset_check.check_against_qmap`), so
``run``, ``launch()`` and ``watch`` accept and refuse the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deployments import DeploymentSet
from flows.xpcs.dataset_check import check_against_qmap, qmap_shape
from xpcs_kernel.errors import ConfigurationError
from xpcs_kernel.options import CorrelationOptions

__all__ = ["PreflightReport", "check_engine_configured", "preflight"]

_ENGINE_NAMES = {"globus": "Globus", "local": "local"}


@dataclass(frozen=True)
class PreflightReport:
    """What the checks found.

    Attributes
    ----------
    raw, qmap
        The checked files.
    frame_shape
        The detector shape ``(H, W)`` shared by the q-map and the frames.
    """

    raw: Path
    qmap: Path
    frame_shape: tuple[int, int]


def preflight(raw: Path, qmap: Path, options: CorrelationOptions) -> PreflightReport:
    """Check that ``raw`` can be correlated with ``qmap`` under ``options``.

    Parameters
    ----------
    raw, qmap
        Existing files (the caller checked that they exist).
    options
        The validated correlation options (``options.dataset`` is where the frames are).

    Returns
    -------
    PreflightReport

    Raises
    ------
    QMapError
        The q-map does not read.
    InputDataError
        The raw file does not open as frames, holds none, or its frames do not
        have the q-map's shape (the message names the file, the shape expected
        and the shape found).
    """
    shape = qmap_shape(qmap)
    check_against_qmap(raw, shape, dataset=options.dataset)
    return PreflightReport(raw=raw, qmap=qmap, frame_shape=shape)


def check_engine_configured(found: DeploymentSet, engine: str) -> None:
    """Refuse an engine none of whose facilities is configured, saying how to configure one.

    Raises
    ------
    ConfigurationError
        No valid descriptor runs on ``engine``; the message names the
        descriptors that still have placeholders and points to
        ``xpcs-flows facilities`` and the user's descriptor directory.
    """
    if any(d.engine == engine for d in found.deployments.values()):
        return
    from deployments.registry import user_config_dir

    pending = sorted(found.problems)
    waiting = f" ({', '.join(pending)} still have placeholders)" if pending else ""
    raise ConfigurationError(
        f"no {_ENGINE_NAMES.get(engine, engine)} facility is configured{waiting}: "
        f"fill one in as {user_config_dir()}/<name>.toml (see deployments/README.md); "
        "`xpcs-flows facilities` says what is missing"
    )
