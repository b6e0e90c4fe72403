"""The local Globus Search ingest action provider, backed by :class:`LocalCatalog`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.local.providers.base import ActionProvider, require, unable_to_run
from flows.local.providers.catalog import LocalCatalog
from flows.local.records import ActionContext, ActionResult
from tools.action_urls import SEARCH_INGEST_URL

__all__ = ["SearchIngestProvider"]


class SearchIngestProvider(ActionProvider):
    """Serves :data:`~tools.action_urls.SEARCH_INGEST_URL`.

    Body: ``search_index``, ``subject``, ``content`` (an object) and
    ``visible_to`` (a list of principals, default ``["public"]``).
    """

    url = SEARCH_INGEST_URL

    def __init__(self, catalog: LocalCatalog) -> None:
        self.catalog = catalog

    def run(self, body: Mapping[str, Any], *, context: ActionContext) -> ActionResult:
        """Ingest (insert or replace) the document."""
        index = require(body, "search_index", str)
        subject = require(body, "subject", str)
        content = require(body, "content", Mapping)
        visible_to = body.get("visible_to", ["public"])
        if isinstance(visible_to, str):
            visible_to = [visible_to]
        if not isinstance(visible_to, list) or not all(isinstance(v, str) for v in visible_to):
            raise unable_to_run("visible_to must be a list of principal strings")
        entry = self.catalog.ingest(index, subject, content, visible_to)
        return ActionResult.succeeded(
            {
                "task_id": context.action_id,
                "search_index": index,
                "subject": subject,
                "entry_version": entry.version,
                "success": True,
            }
        )
