"""Launching the XPCS flow from beamline Python: :func:`launch` returns a :class:`Run`.

::

    from flows.launch import launch

    run = launch("A001.h5", "qmap.h5", facility="auto", engine="local",
                 options={"mode": "multitau"})
    run.wait(timeout=600)
    print(run.status(), run.facility, run.outputs.result_path)

:func:`launch` checks the input before anything starts (the files exist, the
q-map reads, the options are valid, the facility is known or ``"auto"``),
asks the facility chooser when ``facility="auto"`` (:func:`choose_facility`,
in :mod:`flows.launch.hold`, which also holds a launch deferred past a
planned window when the chooser's policy allows that), records the decision and
the start in the run history and the run index, and starts the flow: on the
local engine in a background thread (the caller is not blocked unless
``wait=True``), or on Globus Flows (label ``<dataset> @ <facility>``, tags,
run monitors and managers from the deployment). With ``wait=True`` it waits
through :func:`flows.launch.failover.run_with_failover`: a run that fails for
an infrastructure reason is relaunched on the next best facility.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from deployments import (
    JobRequest,
    load_deployments,
    publication_key,
)
from flows.launch.attempt import start_attempt
from flows.launch.engines import standard_tags
from flows.launch.failover import run_with_failover
from flows.launch.hold import LaunchHold, choose_facility
from flows.launch.request import LaunchRequest
from flows.local import default_state_db
from flows.runs.handle import Run, RunOutputs
from flows.runs.progress import spawn_driver
from xpcs_kernel.errors import UsageError
from xpcs_kernel.options import CorrelationOptions

__all__ = [
    "ENGINES",
    "EngineName",
    "LaunchHold",
    "LaunchRequest",
    "Run",
    "RunOutputs",
    "choose_facility",
    "launch",
    "prepare_launch",
    "standard_tags",
    "start_attempt",
]

EngineName = Literal["local", "globus"]
#: The engines a flow can run on.
ENGINES: tuple[str, ...] = ("local", "globus")


def _job(raw: Path, dataset: str, backend: str = "numba") -> JobRequest:
    """The chooser's request: sizes from the raw file's header (file size if unreadable)."""
    from xpcs_kernel.errors import InputDataError
    from xpcs_kernel.io import open_frames

    size = raw.stat().st_size
    try:
        with open_frames(raw) as frames:
            n_frames, (h, w) = frames.n_frames, frames.frame_shape
    except InputDataError:
        # the flow reports the data error on the facility; estimate from the size meanwhile
        n_frames, h, w = 1, 1, max(1, size // 2)
    return JobRequest(
        dataset=dataset,
        bytes_in=size,
        frames=max(1, int(n_frames)),
        pixels=max(1, int(h) * int(w)),
        allow_local=True,
        backend=backend,
    )


def prepare_launch(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str],
    *,
    facility: str = "auto",
    engine: str = "local",
    label: str | None = None,
    tags: Sequence[str] = (),
    options: CorrelationOptions | Mapping[str, Any] | None = None,
    db_path: Path | None = None,
    workdir: Path | None = None,
    live: bool = False,
    follow: Mapping[str, Any] | None = None,
) -> LaunchRequest:
    """Check a launch before anything starts; see :func:`launch` for the parameters.

    Raises
    ------
    UsageError
        A missing file, bad options, an unknown engine or a facility that
        cannot run on the engine.
    ConfigurationError
        An unknown or invalid facility descriptor.
    QMapError, InputDataError
        The q-map does not read, or the raw file is not frames of its shape
        (:func:`flows.launch.preflight.preflight`).
    """
    from flows.launch.preflight import check_engine_configured, preflight

    if engine not in ENGINES:
        raise UsageError(f"must be one of {ENGINES}, not {engine!r}", argument="engine")
    raw_path, qmap_path = Path(raw).resolve(), Path(qmap).resolve()
    for name, path in (("raw", raw_path), ("qmap", qmap_path)):
        if not path.is_file():
            raise UsageError(f"no such file: {path}", argument=name)
    if options is None:
        opts = CorrelationOptions()
    elif isinstance(options, CorrelationOptions):
        opts = options
    else:
        try:
            opts = CorrelationOptions.from_dict(dict(options))
        except TypeError as exc:
            raise UsageError(str(exc), argument="options") from None
    if live:  # the file is still being written: the follower checks its frames
        from flows.launch.live import prepare_live

        job, follow_settings = prepare_live(raw_path, qmap_path, opts, follow)
    elif follow is not None:
        raise UsageError("follow settings are for a live run (live=True)", argument="follow")
    else:
        preflight(raw_path, qmap_path, opts)  # the q-map reads and fits the frames
        job, follow_settings = _job(raw_path, raw_path.stem, opts.backend), {}
    clean_tags = tuple(str(t).strip() for t in tags)
    if any(not t for t in clean_tags):
        raise UsageError("tags must not be empty", argument="tags")
    found = load_deployments()
    # nothing configured for the engine: say so (a configuration error), not "no facility"
    check_engine_configured(found, engine)
    if facility != "auto":
        deployment = found.get(facility)  # ConfigurationError naming the known ones
        if deployment.engine != engine:
            raise UsageError(
                f"facility {facility!r} runs on the {deployment.engine} engine, not {engine};"
                f" pass engine={deployment.engine!r}",
                argument="facility",
            )
        if live:
            from flows.launch.live import check_live_facility

            check_live_facility(deployment)
    db = Path(db_path) if db_path is not None else default_state_db()
    dataset = raw_path.stem
    launch_id = str(uuid.uuid4())
    option_dict = opts.to_dict()
    return LaunchRequest(
        raw=raw_path,
        qmap=qmap_path,
        dataset=dataset,
        options=option_dict,
        engine=engine,
        facility=facility,
        label=label,
        tags=clean_tags,
        db_path=db,
        workdir=Path(workdir).resolve() if workdir is not None else db.parent / "local-runs",
        launch_id=launch_id,
        publication_key=publication_key(dataset, options={**option_dict, "launch": launch_id}),
        job=job,
        deployments=dict(found.deployments),
        live=live,
        follow=follow_settings,
    )


def launch(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str],
    *,
    facility: str = "auto",
    engine: EngineName = "local",
    label: str | None = None,
    tags: Sequence[str] = (),
    options: CorrelationOptions | Mapping[str, Any] | None = None,
    db_path: Path | None = None,
    workdir: Path | None = None,
    wait: bool = False,
    timeout: float | None = None,
    progress: bool = False,
    detach: bool = False,
    live: bool = False,
    follow: Mapping[str, Any] | None = None,
) -> Run:
    """Launch the XPCS flow for one dataset; returns the :class:`Run` at once (or when done).

    Parameters
    ----------
    raw, qmap
        The raw data and q-map files on this (beamline) machine.
    facility
        A deployment name, or ``"auto"`` to let the facility chooser decide.
    engine
        ``"local"`` (this machine, the local engine) or ``"globus"`` (Globus Flows).
    label
        The run label (default ``<dataset> @ <facility>``); cut to 64 characters.
    tags
        Extra run tags (beamline, experiment, facility and engine tags are added).
    options
        Correlation options (default :class:`~xpcs_kernel.options.CorrelationOptions()`).
    db_path
        The state database (runs, run index, history, catalog); default the per-user one.
    workdir
        Where local facilities keep their staging and publication directories
        (``<workdir>/<facility>/``); default ``local-runs/`` next to the database.
    wait
        Wait for the run to end, relaunching on the next best facility after an
        infrastructure failure (:func:`~flows.launch.failover.run_with_failover`).
    timeout
        With ``wait``: seconds to wait in all (``RunWaitTimeout`` past it).
    progress
        Report on stderr: a local run's first-run kernel compilation notice
        (once the checks have passed) and, with ``wait``, the transient
        progress line.
    detach
        Without ``wait``, a local run is driven by a detached process instead of
        a thread of this one, so it goes on after this process exits (the
        ``xpcs-flows run`` command).
    live
        The detector is still writing ``raw``: run the live flow, which follows
        the file where the beamline writes it (on a facility whose Compute
        endpoint reads the beamline storage) and publishes once, when the file
        is complete (the writer's done marker, or ``idle`` seconds without a
        frame). Multi-tau options only.
    follow
        With ``live``: the follower's ``idle``, ``update``, ``checkpoint``
        (seconds) and ``done_marker`` (suffix; default ``.done``).

    Raises
    ------
    UsageError, ConfigurationError, QMapError, FlowInputError
        The launch is not possible (nothing was started).
    NoFacilityAvailable
        ``facility="auto"`` and no facility can run it.
    GlobusServiceError
        The Flows service refused the run.
    RunWaitTimeout
        ``wait=True`` and the run did not end within ``timeout``.
    """
    request = prepare_launch(
        raw,
        qmap,
        facility=facility,
        engine=engine,
        label=label,
        tags=tags,
        options=options,
        db_path=db_path,
        workdir=workdir,
        live=live,
        follow=follow,
    )
    if progress and request.engine == "local":  # its process compiles the kernels first
        from xpcs_kernel.compile_notice import announce_first_run

        announce_first_run(where=" (the run starts with that)")
    if wait:
        return run_with_failover(request, timeout=timeout, progress=progress)
    chosen, decision = choose_facility(request)
    run = start_attempt(request, chosen, decision=decision, background=not detach)
    if detach and run.engine == "local":
        spawn_driver(run.run_id, db_path=request.db_path)
    return run
