"""The watcher's durable ledger: one row per data file, in SQLite (WAL mode).

The ledger lives in the per-user state database
(:func:`flows.local.store.default_state_db`) in its own table, ``watch_files``,
unless another file is given. Every state change is one transaction, guarded
by the state it leaves, so that a process killed at any instant leaves each
row in exactly one well-defined state (see :mod:`flows.watch.watcher` for the
protocol that makes launches exactly-once).

States (:class:`FileState`)::

    SEEN ──► READY ──► LAUNCHING ──► LAUNCHED ──► SUCCEEDED
      │  │               │  ▲            └──────► FAILED ◄─┐
      │  └──► FAILED ◄───┘  └ (restart: no run found)     │
      └──► VANISHED (file removed before it was complete)  │
    FAILED ──(retry)──► SEEN (attempt + 1) ────────────────┘
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from flows.errors import WatcherAlreadyRunning, WatchLedgerEntryNotFound
from flows.local.records import utc_now
from flows.local.sqlite import connect, transaction
from flows.local.store import default_state_db
from xpcs_kernel.errors import UsageError

__all__ = ["ACTIVE_STATES", "FileState", "Ledger", "LedgerEntry", "launch_key"]


class FileState(StrEnum):
    """State of one data file in the ledger."""

    SEEN = "SEEN"
    READY = "READY"
    LAUNCHING = "LAUNCHING"
    LAUNCHED = "LAUNCHED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    VANISHED = "VANISHED"


#: States that count against ``--max-active``.
ACTIVE_STATES = (FileState.LAUNCHING, FileState.LAUNCHED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS watch_files (
    path TEXT PRIMARY KEY,
    watch_dir TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    launch_tries INTEGER NOT NULL DEFAULT 0,
    launch_key TEXT,
    run_id TEXT,
    facility TEXT,
    reason TEXT,
    seen_time TEXT NOT NULL,
    ready_time TEXT,
    launch_time TEXT,
    end_time TEXT,
    updated_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS watch_files_dir_state ON watch_files (watch_dir, state);
"""

_COLUMNS = (
    "path, watch_dir, state, attempt, launch_tries, launch_key, run_id, facility, reason,"
    " seen_time, ready_time, launch_time, end_time, updated_time"
)


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the ledger.

    Attributes
    ----------
    path, watch_dir
        The data file (absolute) and the directory watched for it.
    state
        Its :class:`FileState`.
    attempt
        1, plus one per explicit retry.
    launch_tries
        Launcher calls begun for this attempt (more than one only after crashes).
    launch_key
        The idempotency key of the launch (passed to the launcher as a run tag).
    run_id, facility
        The run started for the file and where it runs (once LAUNCHED).
    reason
        Why the file FAILED (validation, launch or run failure).
    seen_time, ready_time, launch_time, end_time, updated_time
        ISO 8601 UTC times of the transitions.
    """

    path: str
    watch_dir: str
    state: FileState
    attempt: int
    launch_tries: int
    launch_key: str | None
    run_id: str | None
    facility: str | None
    reason: str | None
    seen_time: str
    ready_time: str | None
    launch_time: str | None
    end_time: str | None
    updated_time: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the entry."""
        return {**asdict(self), "state": self.state.value}


def launch_key(entry: LedgerEntry) -> str:
    """The idempotency key of the launch of ``entry``'s current attempt."""
    text = f"{entry.path}\0{entry.attempt}\0{entry.seen_time}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    values = list(row)
    values[2] = FileState(values[2])
    return LedgerEntry(*values)


class Ledger:
    """The ``watch_files`` table of the SQLite file ``db_path`` (default: the state db)."""

    def __init__(self, db_path: Path | None = None) -> None:
        self.db_path = Path(db_path) if db_path is not None else default_state_db()
        # one connection for the ledger's life: closing the last connection to a WAL database
        # checkpoints it (an fsync), which would cost every transaction ~10 ms
        self._conn = connect(self.db_path, check_same_thread=False)
        self._lock = threading.Lock()
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection (the ledger is unusable afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._conn, immediate=True) as conn:
            yield conn

    def _move(
        self,
        path: str,
        from_states: Iterable[FileState],
        to_state: FileState,
        *,
        key: str | None = None,
        **fields: Any,
    ) -> bool:
        """Set ``state = to_state`` (and ``fields``) if the row is in ``from_states``."""
        olds = [s.value for s in from_states]
        now = utc_now()
        sets = ["state = ?", "updated_time = ?", *(f"{name} = ?" for name in fields)]
        values: list[Any] = [to_state.value, now, *fields.values()]
        where = f"path = ? AND state IN ({','.join('?' * len(olds))})"
        params: list[Any] = [path, *olds]
        if key is not None:
            where += " AND launch_key = ?"
            params.append(key)
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE watch_files SET {', '.join(sets)} WHERE {where}", [*values, *params]
            )
            return cur.rowcount == 1

    @contextlib.contextmanager
    def watch_lock(self, directory: Path) -> Iterator[Path]:
        """Hold the exclusive right to watch ``directory`` with this ledger; yields the lock file.

        The lock (``flock`` on a file next to the database) is released when
        the block ends or the process dies, even by ``kill -9``.

        Raises
        ------
        WatcherAlreadyRunning
            Another process holds it.
        """
        digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
        lock_path = self.db_path.with_name(f"{self.db_path.name}.watch-{digest}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WatcherAlreadyRunning(str(directory), lock_path=str(lock_path)) from None
            yield lock_path
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # -- writing -----------------------------------------------------------------------------
    def observe(self, path: str, watch_dir: str) -> bool:
        """Record ``path`` as SEEN unless known; a VANISHED file seen again is SEEN anew.

        Returns whether the row was created or revived.
        """
        now = utc_now()
        with self._tx() as conn:
            cur = conn.execute(
                f"INSERT INTO watch_files ({_COLUMNS}) VALUES (?,?,?,1,0,NULL,NULL,NULL,NULL,"
                "?,NULL,NULL,NULL,?) ON CONFLICT(path) DO UPDATE SET state = excluded.state,"
                " seen_time = excluded.seen_time, updated_time = excluded.updated_time,"
                " watch_dir = excluded.watch_dir WHERE watch_files.state = ?",
                (path, watch_dir, FileState.SEEN.value, now, now, FileState.VANISHED.value),
            )
            return cur.rowcount == 1

    def mark_ready(self, path: str) -> bool:
        """SEEN -> READY: the file is complete and valid."""
        return self._move(path, [FileState.SEEN], FileState.READY, ready_time=utc_now())

    def mark_vanished(self, path: str) -> bool:
        """SEEN -> VANISHED: the file was removed before it was complete."""
        return self._move(path, [FileState.SEEN], FileState.VANISHED)

    def begin_launch(self, path: str, key: str) -> bool:
        """READY -> LAUNCHING with idempotency ``key`` (committed before the launcher runs)."""
        now = utc_now()
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE watch_files SET state = ?, launch_key = ?, launch_time = ?,"
                " launch_tries = launch_tries + 1, updated_time = ? WHERE path = ? AND state = ?",
                (FileState.LAUNCHING.value, key, now, now, path, FileState.READY.value),
            )
            return cur.rowcount == 1

    def record_launched(self, path: str, key: str, run_id: str, facility: str) -> bool:
        """LAUNCHING (with ``key``) -> LAUNCHED with the run id."""
        return self._move(
            path,
            [FileState.LAUNCHING],
            FileState.LAUNCHED,
            key=key,
            run_id=run_id,
            facility=facility,
        )

    def requeue(self, path: str, key: str) -> bool:
        """LAUNCHING -> READY: the launch was interrupted and no run exists with ``key``."""
        return self._move(path, [FileState.LAUNCHING], FileState.READY, key=key)

    def record_failed(
        self, path: str, reason: str, *, from_states: Iterable[FileState] | None = None
    ) -> bool:
        """SEEN/READY/LAUNCHING/LAUNCHED -> FAILED with ``reason``."""
        olds = (
            [FileState.SEEN, FileState.READY, FileState.LAUNCHING, FileState.LAUNCHED]
            if from_states is None
            else list(from_states)
        )
        return self._move(path, olds, FileState.FAILED, reason=reason, end_time=utc_now())

    def record_succeeded(self, path: str, run_id: str) -> bool:
        """LAUNCHED (run ``run_id``) -> SUCCEEDED."""
        now = utc_now()
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE watch_files SET state = ?, end_time = ?, updated_time = ?"
                " WHERE path = ? AND state = ? AND run_id = ?",
                (FileState.SUCCEEDED.value, now, now, path, FileState.LAUNCHED.value, run_id),
            )
            return cur.rowcount == 1

    def retry(self, path: str) -> LedgerEntry:
        """FAILED -> SEEN with ``attempt + 1``: the watcher checks and launches it again.

        Raises
        ------
        WatchLedgerEntryNotFound
            The ledger has no such file.
        UsageError
            The file is not FAILED (only failed files are retried).
        """
        now = utc_now()
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM watch_files WHERE path = ?", (path,)
            ).fetchone()
            if row is None:
                raise WatchLedgerEntryNotFound(path)
            entry = _entry(row)
            if entry.state is not FileState.FAILED:
                raise UsageError(
                    f"{path} is {entry.state.value}"
                    + (f" (run {entry.run_id})" if entry.run_id else "")
                    + "; only FAILED files are retried",
                    argument="file",
                )
            conn.execute(
                "UPDATE watch_files SET state = ?, attempt = attempt + 1, launch_tries = 0,"
                " launch_key = NULL, run_id = NULL, facility = NULL, reason = NULL,"
                " ready_time = NULL, launch_time = NULL, end_time = NULL, seen_time = ?,"
                " updated_time = ? WHERE path = ?",
                (FileState.SEEN.value, now, now, path),
            )
        return self.get(path)

    # -- reading -----------------------------------------------------------------------------
    def get(self, path: str) -> LedgerEntry:
        """The entry of ``path``; raises :class:`~flows.errors.WatchLedgerEntryNotFound`."""
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM watch_files WHERE path = ?", (path,)
            ).fetchone()
        if row is None:
            raise WatchLedgerEntryNotFound(path)
        return _entry(row)

    def entries(
        self,
        *,
        watch_dir: str | None = None,
        states: Iterable[FileState] | None = None,
    ) -> list[LedgerEntry]:
        """Entries (of ``watch_dir``, in ``states``), oldest seen first."""
        clauses: list[str] = []
        params: list[Any] = []
        if watch_dir is not None:
            clauses.append("watch_dir = ?")
            params.append(watch_dir)
        if states is not None:
            values = [s.value for s in states]
            clauses.append(f"state IN ({','.join('?' * len(values))})")
            params.extend(values)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM watch_files{where} ORDER BY seen_time, rowid", params
            ).fetchall()
        return [_entry(r) for r in rows]

    def count(self, *, watch_dir: str, states: Iterable[FileState]) -> int:
        """How many entries of ``watch_dir`` are in ``states``."""
        values = [s.value for s in states]
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT COUNT(*) FROM watch_files WHERE watch_dir = ? AND state IN"
                f" ({','.join('?' * len(values))})",
                [watch_dir, *values],
            ).fetchone()
        return int(row[0])

    def summary(self, *, watch_dir: str | None = None) -> dict[str, Any]:
        """Counts per state (every state present, 0 when none), plus failed files with reasons.

        Returns
        -------
        dict
            ``{"ledger": path, "watch_dir": ..., "total": n, "counts": {state: n},
            "failed": [entry dicts], "active": [entry dicts]}``.
        """
        rows = self.entries(watch_dir=watch_dir)
        counts = {state.value: 0 for state in FileState}
        for entry in rows:
            counts[entry.state.value] += 1
        return {
            "ledger": str(self.db_path),
            "watch_dir": watch_dir,
            "total": len(rows),
            "counts": counts,
            "failed": [e.to_dict() for e in rows if e.state is FileState.FAILED],
            "active": [e.to_dict() for e in rows if e.state in ACTIVE_STATES],
        }
