"""The checked launch that every part of launching shares: :class:`LaunchRequest`.

Built by :func:`flows.launch.api.prepare_launch`; read by the engines that
start an attempt (:mod:`flows.launch.engines`), the facility choice and holds
(:mod:`flows.launch.hold`) and the failover runner
(:mod:`flows.launch.failover`). It lives apart so that none of them imports
the launch API back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployments import Deployment, JobRequest

__all__ = ["LaunchRequest"]


@dataclass(frozen=True)
class LaunchRequest:
    """A checked launch: what to run, where it may run, and its failover identity.

    Attributes
    ----------
    raw, qmap
        Absolute paths of the raw data and the q-map.
    dataset
        The dataset name (the raw file's stem).
    options
        Correlation options (dict form, validated).
    engine, facility
        The engine and the requested facility (a name or ``"auto"``).
    label, tags
        The user's label (``None``: ``<dataset> @ <facility>``) and extra tags.
    db_path, workdir
        The state database and the root of local facilities' directories.
    launch_id, publication_key
        Shared by every failover attempt of this launch.
    job
        What the facility chooser is asked.
    deployments
        The valid deployment descriptors by name.
    live, follow
        A live run (the live flow follows the raw file while it is written,
        on a facility whose endpoint reads the beamline storage) and the
        follower's timing (``idle``, ``update``, ``done_marker``, ``checkpoint``).
    """

    raw: Path
    qmap: Path
    dataset: str
    options: Mapping[str, Any]
    engine: str
    facility: str
    label: str | None
    tags: tuple[str, ...]
    db_path: Path
    workdir: Path
    launch_id: str
    publication_key: str
    job: JobRequest
    deployments: Mapping[str, Deployment]
    live: bool = False
    follow: Mapping[str, Any] = field(default_factory=dict)

    def engine_deployments(self) -> list[str]:
        """Names of the deployments that run on this request's engine."""
        return sorted(n for n, d in self.deployments.items() if d.engine == self.engine)
