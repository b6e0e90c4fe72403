"""SQLite persistence of local runs and their logs.

One SQLite file per user (:func:`default_state_db`), opened in WAL mode so
that a watcher, a CLI and a running engine can read and write it at once.
Runs live in ``local_runs`` and log entries in ``local_run_logs``; other parts
of xpcs-flows keep their own tables in the same file.

Every state transition is written in one transaction (the run row and the
log entries it produced), so after a crash the row names the state to run
next and the logs show how far the run got.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from flows.errors import RunNotFound
from flows.local.records import RunRecord, RunStatus
from flows.local.sqlite import connect, connection, transaction
from xpcs_kernel.errors import XPCSFlowsError

__all__ = ["OwnershipLost", "RunStore", "connect", "default_state_db"]

_APP_DIR = "xpcs-flows"
_DB_NAME = "state.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_runs (
    run_id TEXT PRIMARY KEY,
    flow_id TEXT,
    label TEXT,
    tags TEXT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT NOT NULL,
    input TEXT NOT NULL,
    state TEXT NOT NULL,
    current_state TEXT,
    details TEXT NOT NULL,
    failed_state TEXT,
    error TEXT,
    start_time TEXT NOT NULL,
    completion_time TEXT,
    updated_time TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    owner_token TEXT,
    owner_host TEXT,
    owner_pid INTEGER
);
CREATE TABLE IF NOT EXISTS local_run_logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    time TEXT NOT NULL,
    code TEXT NOT NULL,
    description TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS local_run_logs_run ON local_run_logs (run_id, seq);
"""

#: Tokens of the drivers running in this process (used to tell live owners from dead ones).
_LIVE_TOKENS: set[str] = set()
_LIVE_LOCK = threading.Lock()


class OwnershipLost(XPCSFlowsError):
    """A driver tried to write a run that another driver has taken over."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"flow run {run_id} is now driven by another engine")
        self.run_id = run_id


def default_state_db() -> Path:
    """The per-user state database: ``$XDG_DATA_HOME/xpcs-flows/state.db``.

    ``XDG_DATA_HOME`` defaults to ``~/.local/share``.
    """
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / _APP_DIR / _DB_NAME


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Runs and run logs in the SQLite file ``db_path``."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        conn = connect(self.db_path)
        try:
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    @contextlib.contextmanager
    def _tx(self, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        with connection(self.db_path) as conn, transaction(conn, immediate=immediate):
            yield conn

    # -- writing -----------------------------------------------------------------------------
    def create(self, record: RunRecord, logs: Sequence[Mapping[str, Any]]) -> None:
        """Insert a new run and its first log entries."""
        with self._tx(immediate=True) as conn:
            conn.execute(
                "INSERT INTO local_runs (run_id, flow_id, label, tags, status, definition, input,"
                " state, current_state, details, failed_state, error, start_time,"
                " completion_time, updated_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.run_id,
                    record.flow_id,
                    record.label,
                    _dumps(list(record.tags)),
                    record.status.value,
                    _dumps(record.definition),
                    _dumps(record.input),
                    _dumps(record.state),
                    record.current_state,
                    _dumps(record.details),
                    record.failed_state,
                    None if record.error is None else _dumps(record.error),
                    record.start_time,
                    record.completion_time,
                    record.start_time,
                ),
            )
            self._insert_logs(conn, record.run_id, logs)

    def transition(
        self,
        run_id: str,
        *,
        updated_time: str,
        logs: Sequence[Mapping[str, Any]] = (),
        owner_token: str | None = None,
        **fields: Any,
    ) -> None:
        """Update run columns and append log entries in one transaction.

        ``fields`` are column names (``status``, ``state``, ``current_state``,
        ``details``, ``failed_state``, ``error``, ``completion_time``); JSON
        columns are encoded here. With ``owner_token`` the update happens only
        while that token owns the run, else :class:`OwnershipLost` is raised.
        """
        json_cols = {"state", "details", "error"}
        cols = ["updated_time = ?"]
        values: list[Any] = [updated_time]
        for name, value in fields.items():
            cols.append(f"{name} = ?")
            if isinstance(value, RunStatus):
                value = value.value
            elif name in json_cols and value is not None:
                value = _dumps(value)
            values.append(value)
        where = "run_id = ?"
        keys: list[Any] = [run_id]
        if owner_token is not None:
            where += " AND owner_token = ?"
            keys.append(owner_token)
        with self._tx(immediate=True) as conn:
            cur = conn.execute(
                f"UPDATE local_runs SET {', '.join(cols)} WHERE {where}", (*values, *keys)
            )
            if cur.rowcount != 1:
                if (
                    owner_token is not None
                    and conn.execute(
                        "SELECT 1 FROM local_runs WHERE run_id = ?", (run_id,)
                    ).fetchone()
                ):
                    raise OwnershipLost(run_id)
                raise RunNotFound(run_id)
            self._insert_logs(conn, run_id, logs)

    def append_logs(self, run_id: str, logs: Sequence[Mapping[str, Any]]) -> None:
        """Append log entries without changing the run."""
        with self._tx() as conn:
            self._insert_logs(conn, run_id, logs)

    @staticmethod
    def _insert_logs(
        conn: sqlite3.Connection, run_id: str, logs: Sequence[Mapping[str, Any]]
    ) -> None:
        conn.executemany(
            "INSERT INTO local_run_logs (run_id, time, code, description, details)"
            " VALUES (?,?,?,?,?)",
            [
                (run_id, e["time"], e["code"], e["description"], _dumps(e.get("details", {})))
                for e in logs
            ],
        )

    def request_cancel(self, run_id: str) -> None:
        """Flag the run so that its driver stops at the next check."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE local_runs SET cancel_requested = 1 WHERE run_id = ?", (run_id,)
            )
            if cur.rowcount != 1:
                raise RunNotFound(run_id)

    # -- ownership ---------------------------------------------------------------------------
    def claim(self, run_id: str, token: str, *, force: bool = False) -> bool:
        """Make ``token`` the driver of an ACTIVE run unless a live driver holds it.

        Returns ``False`` when another live driver owns the run (and ``force``
        is false) or the run is no longer ACTIVE.
        """
        with self._tx(immediate=True) as conn:
            row = conn.execute(
                "SELECT status, owner_token, owner_host, owner_pid FROM local_runs"
                " WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            status, owner, host, pid = row
            if status != RunStatus.ACTIVE.value:
                return False
            if owner is not None and not force and self._owner_alive(owner, host, pid):
                return False
            conn.execute(
                "UPDATE local_runs SET owner_token = ?, owner_host = ?, owner_pid = ?"
                " WHERE run_id = ?",
                (token, socket.gethostname(), os.getpid(), run_id),
            )
        with _LIVE_LOCK:
            _LIVE_TOKENS.add(token)
        return True

    def release(self, run_id: str, token: str) -> None:
        """Give up ownership held by ``token``."""
        with _LIVE_LOCK:
            _LIVE_TOKENS.discard(token)
        with self._tx() as conn:
            conn.execute(
                "UPDATE local_runs SET owner_token = NULL, owner_host = NULL, owner_pid = NULL"
                " WHERE run_id = ? AND owner_token = ?",
                (run_id, token),
            )

    def owns(self, run_id: str, token: str) -> bool:
        """Whether ``token`` still owns the run (another driver may have taken over)."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT owner_token FROM local_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return row is not None and row[0] == token

    def has_live_driver(self, run_id: str) -> bool:
        """Whether some live driver (this process or another on this host) runs it."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT owner_token, owner_host, owner_pid FROM local_runs WHERE run_id = ?",
                (run_id,),
            ).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        owner, host, pid = row
        return owner is not None and self._owner_alive(owner, host, pid)

    @staticmethod
    def _owner_alive(token: str, host: str | None, pid: int | None) -> bool:
        if pid == os.getpid() and host == socket.gethostname():
            with _LIVE_LOCK:
                return token in _LIVE_TOKENS
        if host == socket.gethostname() and pid is not None:
            return _pid_alive(pid)
        return True  # another host: only an explicit resume takes it over

    # -- reading -----------------------------------------------------------------------------
    _COLUMNS = (
        "run_id, flow_id, label, tags, status, definition, input, state, current_state,"
        " details, failed_state, error, start_time, completion_time, cancel_requested"
    )

    def get(self, run_id: str) -> RunRecord:
        """The run ``run_id``; raises :class:`RunNotFound`."""
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {self._COLUMNS} FROM local_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return self._record(row)

    def cancel_requested(self, run_id: str) -> bool:
        """Whether someone asked to cancel the run."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT cancel_requested FROM local_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise RunNotFound(run_id)
        return bool(row[0])

    def list_runs(
        self, *, status: RunStatus | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""
        sql = f"SELECT {self._COLUMNS} FROM local_runs"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status.value)
        sql += " ORDER BY start_time DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._tx() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [self._record(row) for row in rows]

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        """The log entries of a run, oldest first (Globus ``get_run_logs`` entries)."""
        with self._tx() as conn:
            exists = conn.execute(
                "SELECT 1 FROM local_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            rows = conn.execute(
                "SELECT time, code, description, details FROM local_run_logs"
                " WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        if exists is None:
            raise RunNotFound(run_id)
        return [
            {"time": t, "code": c, "description": d, "details": json.loads(det)}
            for t, c, d, det in rows
        ]

    @staticmethod
    def _record(row: Sequence[Any]) -> RunRecord:
        (
            run_id,
            flow_id,
            label,
            tags,
            status,
            definition,
            input_,
            state,
            current_state,
            details,
            failed_state,
            error,
            start_time,
            completion_time,
            _cancel,
        ) = row
        return RunRecord(
            run_id=run_id,
            status=RunStatus(status),
            flow_id=flow_id,
            label=label,
            tags=tuple(json.loads(tags)),
            start_time=start_time,
            completion_time=completion_time,
            input=json.loads(input_),
            state=json.loads(state),
            current_state=current_state,
            details=json.loads(details),
            failed_state=failed_state,
            error=None if error is None else json.loads(error),
            definition=json.loads(definition),
        )
