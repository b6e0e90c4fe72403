"""The local index of launched runs: what :meth:`flows.runs.handle.Run.from_id` reattaches to.

One row per run started by :func:`flows.launch.api.launch` (either engine), in the
same SQLite file as the local engine's runs and the run history (table
``launched_runs``, WAL mode). It records what a later process needs to talk
to the run again: the engine, the Globus flow id, the facility, the local
collection map of a local run (to rebuild its providers and resume it), the
facility decision and the failover chain (launch id, attempt, publication key).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.local.sqlite import connection

__all__ = ["RunIndex", "RunIndexEntry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS launched_runs (
    run_id TEXT PRIMARY KEY,
    engine TEXT NOT NULL,
    flow_id TEXT,
    facility TEXT NOT NULL,
    dataset TEXT NOT NULL,
    label TEXT NOT NULL,
    launch_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    publication_key TEXT NOT NULL,
    started_at REAL NOT NULL,
    collections TEXT,
    decision TEXT
);
CREATE INDEX IF NOT EXISTS launched_runs_started ON launched_runs (started_at);
CREATE INDEX IF NOT EXISTS launched_runs_launch ON launched_runs (launch_id, attempt);
"""

_COLUMNS = (
    "run_id, engine, flow_id, facility, dataset, label, launch_id, attempt,"
    " publication_key, started_at, collections, decision"
)


@dataclass(frozen=True)
class RunIndexEntry:
    """One launched run.

    Attributes
    ----------
    run_id, engine, flow_id
        The run, ``"local"`` or ``"globus"``, and the Globus flow (``None`` locally).
    facility, dataset, label
        Where it runs, which dataset, and its label.
    launch_id, attempt, publication_key
        The failover chain it belongs to, its attempt number (1 first) and the
        key its publication is claimed under.
    started_at
        POSIX time of the start.
    collections
        Local runs: collection id -> local directory (the Transfer map).
    decision
        The facility decision (``Decision.to_dict()``), if one was made.
    """

    run_id: str
    engine: str
    flow_id: str | None
    facility: str
    dataset: str
    label: str
    launch_id: str
    attempt: int
    publication_key: str
    started_at: float
    collections: Mapping[str, str] | None = None
    decision: Mapping[str, Any] | None = field(default=None, compare=False)


class RunIndex:
    """The ``launched_runs`` table of the SQLite file ``db_path``."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return connection(self.db_path)

    def add(self, entry: RunIndexEntry) -> None:
        """Record a started run (its id must be new)."""
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO launched_runs ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                (
                    entry.run_id,
                    entry.engine,
                    entry.flow_id,
                    entry.facility,
                    entry.dataset,
                    entry.label,
                    entry.launch_id,
                    entry.attempt,
                    entry.publication_key,
                    entry.started_at,
                    None if entry.collections is None else json.dumps(dict(entry.collections)),
                    None if entry.decision is None else json.dumps(entry.decision, default=str),
                ),
            )

    def get(self, run_id: str) -> RunIndexEntry | None:
        """The entry of ``run_id``, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM launched_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else _entry(row)

    def recent(self, limit: int = 20) -> list[RunIndexEntry]:
        """The ``limit`` most recently started runs, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM launched_runs ORDER BY started_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_entry(r) for r in rows]

    def chain(self, launch_id: str) -> list[RunIndexEntry]:
        """Every attempt of one launch, first attempt first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM launched_runs WHERE launch_id = ? ORDER BY attempt",
                (launch_id,),
            ).fetchall()
        return [_entry(r) for r in rows]


def _entry(row: tuple[Any, ...]) -> RunIndexEntry:
    return RunIndexEntry(
        run_id=row[0],
        engine=row[1],
        flow_id=row[2],
        facility=row[3],
        dataset=row[4],
        label=row[5],
        launch_id=row[6],
        attempt=int(row[7]),
        publication_key=row[8],
        started_at=float(row[9]),
        collections=None if row[10] is None else json.loads(row[10]),
        decision=None if row[11] is None else json.loads(row[11]),
    )
