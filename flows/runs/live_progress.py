"""The g2 so far of a live run in progress, for ``xpcs-flows status`` and the catalog.

A live run's follower (the Correlate task of the live flow) replaces its
result file atomically with the results so far every few seconds; the
file's ``parameters["follow"]`` says how many frames it covers. For a run
of the local engine the file is on this machine: ``$.Paths.compute_results``
of the run state (set before Correlate starts) and the raw file's stem name
it. A Globus run's file is on the facility and is not read from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flows.local import RunStatus
from flows.local.store import RunStore
from xpcs_kernel.errors import XPCSFlowsError
from xpcs_kernel.live.progress import ResultProgress, read_progress
from xpcs_kernel.live.task import live_result_path

__all__ = ["live_in_progress", "live_result_file", "partial_progress", "progress_dict"]


def live_result_file(state: Any) -> Path | None:
    """The result file a live run's follower writes, from its run state (``None``: not
    a live run, or its paths are not derived yet)."""
    if not isinstance(state, Mapping):
        return None
    body = state.get("input")
    paths = state.get("Paths")
    if not (isinstance(body, Mapping) and body.get("live") is True and isinstance(paths, Mapping)):
        return None
    results, raw_name = paths.get("compute_results"), paths.get("raw_name")
    if not (isinstance(results, str) and isinstance(raw_name, str)):
        return None
    return live_result_path(raw_name, results)


def partial_progress(state: Any) -> ResultProgress | None:
    """The frame count and g2 so far of a live run (``None`` before the first update).

    A file being replaced is read whole or not at all (the follower renames a
    complete temporary file over it), so an unreadable file only means "not yet".
    """
    path = live_result_file(state)
    if path is None or not path.is_file():
        return None
    try:
        return read_progress(path)
    except (OSError, XPCSFlowsError):
        return None


def progress_dict(progress: ResultProgress) -> dict[str, Any]:
    """A JSON-friendly form (``--json`` output and the catalog's in-progress rows)."""
    return {
        "result": progress.path,
        "frames": progress.frames,
        "complete": progress.complete,
        "g2_first_delay": list(progress.g2_first),
        "g2_longest_delay": list(progress.g2_last),
        "longest_delay_s": progress.longest_delay_s,
    }


def live_in_progress(db_path: Path) -> list[tuple[str, str, ResultProgress | None]]:
    """``(run id, dataset, g2 so far)`` of every live local run still going, newest first
    (the catalog lists them until their one publication)."""
    found = []
    for record in RunStore(db_path).list_runs(status=RunStatus.ACTIVE):
        body = record.input.get("input") if isinstance(record.input, Mapping) else None
        if isinstance(body, Mapping) and body.get("live") is True:
            name = str(body.get("dataset", {}).get("name", ""))
            found.append((record.run_id, name, partial_progress(record.state)))
    return found
