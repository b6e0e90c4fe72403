"""Finding runs from the command line: unique run-id prefixes and the list of recent runs.

Runs live in two tables of the user's SQLite file: the run index
(``launched_runs``: every run :func:`flows.launch.launch` started, either
engine) and the local engine's store (``local_runs``: every local run, also
those started without ``launch``, such as the demo's). :func:`resolve_run_id`
expands a prefix over both; :func:`recent_runs` lists both, newest first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flows.local.store import RunStore
from flows.runs.index import RunIndex
from xpcs_kernel.errors import UsageError

__all__ = ["AmbiguousRunId", "RecentRun", "recent_runs", "resolve_run_id"]

_TABLES = ("launched_runs", "local_runs")
_SHOWN = 10  # candidates named in an ambiguity error


class AmbiguousRunId(UsageError):
    """A run-id prefix matches several runs; ``candidates`` holds (some of) them."""

    def __init__(self, prefix: str, candidates: tuple[str, ...], total: int) -> None:
        more = f" and {total - len(candidates)} more" if total > len(candidates) else ""
        super().__init__(
            f"{prefix!r} matches {total} runs: {', '.join(candidates)}{more};"
            " give more characters of the run id",
            argument="RUN_ID",
        )
        self.prefix = prefix
        self.candidates = candidates
        self.total = total


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def resolve_run_id(prefix: str, db_path: Path) -> str:
    """The full run id that ``prefix`` starts, over the run index and the local store.

    An exact id, or a prefix matching nothing (a Globus run this machine did
    not start, or a typo the caller reports), is returned unchanged.

    Raises
    ------
    AmbiguousRunId
        ``prefix`` starts the ids of several runs (the message names them).
    """
    if not prefix or not Path(db_path).exists():
        return prefix
    found: set[str] = set()
    conn = sqlite3.connect(db_path, timeout=30.0)
    try:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        for table in _TABLES:
            if table not in present:
                continue
            rows = conn.execute(
                f"SELECT run_id FROM {table} WHERE run_id LIKE ? ESCAPE '\\'",
                (_escape_like(prefix) + "%",),
            ).fetchall()
            found.update(str(r[0]) for r in rows)
    finally:
        conn.close()
    if prefix in found or not found:
        return prefix
    if len(found) == 1:
        return found.pop()
    ordered = tuple(sorted(found))
    raise AmbiguousRunId(prefix, ordered[:_SHOWN], len(ordered))


@dataclass(frozen=True)
class RecentRun:
    """One row of :func:`recent_runs`: a run id, its start (POSIX s) and whether it is indexed."""

    run_id: str
    started_at: float
    indexed: bool


def _posix(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def recent_runs(db_path: Path, limit: int) -> list[RecentRun]:
    """The ``limit`` most recently started runs of the index and the local store, newest first.

    A local run started through :func:`flows.launch.launch` is in both and
    listed once (as indexed).
    """
    rows = {
        e.run_id: RecentRun(e.run_id, e.started_at, True) for e in RunIndex(db_path).recent(limit)
    }
    for record in RunStore(db_path).list_runs(limit=limit):
        if record.run_id not in rows:
            rows[record.run_id] = RecentRun(record.run_id, _posix(record.start_time), False)
    return sorted(rows.values(), key=lambda r: r.started_at, reverse=True)[:limit]
