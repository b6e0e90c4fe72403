"""The shared SQLite helper: WAL, busy timeout, commit or roll back as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.local.sqlite import connect, connection, transaction


def test_connect_creates_the_folder_and_uses_wal_with_a_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "new" / "state.db"
    conn = connect(db)
    try:
        assert db.parent.is_dir()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (30000,)
        assert conn.isolation_level is None
    finally:
        conn.close()


def test_a_transaction_commits_on_success_and_rolls_back_on_error(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with connection(db) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        with transaction(conn, immediate=True):
            conn.execute("INSERT INTO t VALUES (1)")

        def interrupted() -> None:
            with transaction(conn):
                conn.execute("INSERT INTO t VALUES (2)")
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            interrupted()
        assert not conn.in_transaction
    with connection(db) as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
