"""What a finished run produced, and recording its outcome in the run history.

:class:`RunOutputs` reads the flow's ``$.Result`` (the same on both engines).
:func:`record_outcome` records a run's end once in
:class:`~deployments.RunHistory`: timings and the publication claim for a
success, the classified failure otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deployments import RunHistory, RunTimings, classify_failure
from flows.runs.index import RunIndexEntry

__all__ = ["RunOutputs", "outputs_from", "record_outcome", "seconds_between"]


@dataclass(frozen=True)
class RunOutputs:
    """Where a succeeded run's results are (all empty/``None`` before SUCCEEDED).

    ``result_path`` and ``plot_paths`` are paths on the facility (local runs:
    files on this machine); ``catalog_subject`` is the catalog entry's subject;
    ``published_to`` the publication collection and path.
    """

    result_path: Path | None = None
    plot_paths: tuple[Path, ...] = ()
    catalog_subject: str | None = None
    published_to: Mapping[str, Any] | None = None
    n_published_files: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "result_path": None if self.result_path is None else str(self.result_path),
            "plot_paths": [str(p) for p in self.plot_paths],
            "catalog_subject": self.catalog_subject,
            "published_to": None if self.published_to is None else dict(self.published_to),
            "n_published_files": self.n_published_files,
        }


def outputs_from(output: Any) -> RunOutputs:
    """The outputs in a run's final state (empty when it holds no ``Result``)."""
    result = output.get("Result") if isinstance(output, Mapping) else None
    if not isinstance(result, Mapping):
        return RunOutputs()
    return RunOutputs(
        result_path=Path(result["result"]) if result.get("result") else None,
        plot_paths=tuple(Path(p) for p in result.get("plots") or ()),
        catalog_subject=result.get("subject"),
        published_to=result.get("published_to"),
        n_published_files=result.get("n_files"),
    )


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from ISO time ``start`` to ``end`` (now when ``None``); ``None`` if unknown."""
    if not start:
        return None
    try:
        t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(t0.tzinfo)
    except ValueError:
        return None
    return max(0.0, (t1 - t0).total_seconds())


def record_outcome(
    db_path: Path,
    entry: RunIndexEntry,
    *,
    succeeded: bool,
    output: Any,
    failure: Mapping[str, Any] | None,
) -> bool:
    """Record the end of run ``entry`` in the history unless already recorded.

    Returns whether this call recorded it. A success also claims the launch's
    publication (idempotent for the run that owns it).
    """
    with RunHistory(db_path) as history:
        row = next(
            (r for r in history.runs(dataset=entry.dataset) if r.run_id == entry.run_id), None
        )
        if row is None or row.outcome != "running":
            return False
        now = time.time()
        if succeeded:
            history.record_success(entry.run_id, finished_at=now, timings=_timings(output))
            history.claim_publication(
                entry.publication_key, run_id=entry.run_id, facility=entry.facility, at=now
            )
        else:
            found = classify_failure(dict(failure or {}))
            history.record_failure(
                entry.run_id,
                finished_at=now,
                kind=found.kind.value,
                detail=json.dumps({"failure": found.to_dict()}, sort_keys=True),
            )
    return True


def _timings(state: Any) -> RunTimings:
    output = state if isinstance(state, Mapping) else {}
    try:
        summary = output["Correlate"]["details"]["results"][0]["output"]
        compute = summary.get("timings", {}).get("total")
    except (KeyError, IndexError, TypeError, AttributeError):
        compute = None
    return RunTimings(compute_s=None if compute is None else float(compute))
