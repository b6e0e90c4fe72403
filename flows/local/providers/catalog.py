"""A local search catalog in SQLite holding the documents Globus Search would.

Entries are keyed by (index, subject): ingesting the same subject again
replaces its content (no duplicates), as a Globus Search ingest of a subject
with the default entry id does.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.local.records import utc_now
from flows.local.sqlite import connect

__all__ = ["CatalogEntry", "LocalCatalog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_catalog (
    search_index TEXT NOT NULL,
    subject TEXT NOT NULL,
    content TEXT NOT NULL,
    visible_to TEXT NOT NULL,
    created_time TEXT NOT NULL,
    updated_time TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (search_index, subject)
)
"""


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog document; ``version`` counts the ingests of this subject."""

    index: str
    subject: str
    content: Mapping[str, Any]
    visible_to: tuple[str, ...]
    created_time: str
    updated_time: str
    version: int


class LocalCatalog:
    """Search documents in the SQLite file ``db_path`` (table ``local_catalog``)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        conn = connect(self.db_path)
        try:
            conn.execute(_SCHEMA)
        finally:
            conn.close()

    def ingest(
        self,
        index: str,
        subject: str,
        content: Mapping[str, Any],
        visible_to: Sequence[str] = ("public",),
    ) -> CatalogEntry:
        """Insert or replace the document of ``subject`` in ``index``."""
        now = utc_now()
        text = json.dumps(dict(content), allow_nan=False, sort_keys=True)
        visible = json.dumps(list(visible_to))
        conn = connect(self.db_path)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO local_catalog (search_index, subject, content, visible_to,"
                    " created_time, updated_time) VALUES (?,?,?,?,?,?)"
                    " ON CONFLICT (search_index, subject) DO UPDATE SET"
                    " content = excluded.content, visible_to = excluded.visible_to,"
                    " updated_time = excluded.updated_time, version = version + 1",
                    (index, subject, text, visible, now, now),
                )
        finally:
            conn.close()
        entry = self.get(index, subject)
        assert entry is not None
        return entry

    def get(self, index: str, subject: str) -> CatalogEntry | None:
        """The entry of ``subject`` in ``index``, or ``None``."""
        rows = self._select("WHERE search_index = ? AND subject = ?", (index, subject))
        return rows[0] if rows else None

    def list(self, index: str) -> list[CatalogEntry]:
        """Every entry of ``index``, by subject."""
        return self._select("WHERE search_index = ? ORDER BY subject", (index,))

    def delete(self, index: str, subject: str) -> bool:
        """Remove an entry; returns whether it existed."""
        conn = connect(self.db_path)
        try:
            with conn:
                cur = conn.execute(
                    "DELETE FROM local_catalog WHERE search_index = ? AND subject = ?",
                    (index, subject),
                )
        finally:
            conn.close()
        return cur.rowcount > 0

    def _select(self, where: str, params: tuple[str, ...]) -> builtins.list[CatalogEntry]:
        conn = connect(self.db_path)
        try:
            rows = conn.execute(
                "SELECT search_index, subject, content, visible_to, created_time, updated_time,"
                f" version FROM local_catalog {where}",
                params,
            ).fetchall()
        finally:
            conn.close()
        return [
            CatalogEntry(
                index=r[0],
                subject=r[1],
                content=json.loads(r[2]),
                visible_to=tuple(json.loads(r[3])),
                created_time=r[4],
                updated_time=r[5],
                version=int(r[6]),
            )
            for r in rows
        ]
