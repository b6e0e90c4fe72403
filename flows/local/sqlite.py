"""The one way our state databases are opened and written: WAL, a busy timeout, transactions.

The state database (``$XDG_DATA_HOME/xpcs-flows/state.db``) is shared by the
local engine's runs (:mod:`flows.local.store`), the watcher's ledger
(:mod:`flows.watch.ledger`) and the run index (:mod:`flows.runs.index`), from
several threads and processes at once. Each opens it with :func:`connect`
(write-ahead log, so readers never block the writer; ``synchronous=NORMAL``;
30 s busy timeout) and writes inside :func:`transaction`, which commits on
success and rolls back on any exception, so a crash never leaves half a change.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BUSY_TIMEOUT_S", "connect", "connection", "transaction"]

#: How long a connection waits for another writer's lock before ``database is locked``.
BUSY_TIMEOUT_S = 30.0


def connect(db_path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open ``db_path`` (creating its folder) in WAL mode with a busy timeout.

    The connection is in autocommit mode (``isolation_level=None``): changes
    are grouped with :func:`transaction`. ``check_same_thread=False`` is for a
    connection shared between threads behind the caller's own lock.
    """
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        db_path,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


@contextlib.contextmanager
def connection(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A :func:`connect` connection closed when the block ends."""
    conn = connect(db_path)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(
    conn: sqlite3.Connection, *, immediate: bool = False
) -> Iterator[sqlite3.Connection]:
    """``BEGIN`` (``BEGIN IMMEDIATE``: take the write lock now) ... ``COMMIT``, or ``ROLLBACK``.

    Any exception in the block, ``KeyboardInterrupt`` included, rolls the
    transaction back and propagates.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
