"""One publication per launch: the local publish steps claim the publication key first.

:class:`PublicationGuard` wraps the local provider of an action URL. Before
it lets a publish state (``PublishTransfer``, ``PublishIngest``) run, it
claims the launch's publication key in :class:`~deployments.RunHistory`
(an atomic insert). A run that loses the claim (another attempt of the same
launch already published) fails that state with ``AlreadyPublished``
instead of publishing a second copy; the claim is idempotent for the run
that owns it, so a resumed run publishes normally.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployments import RunHistory
from flows.local import ActionProvider
from flows.local.records import ActionContext, ActionResult
from tools.action_urls import (
    LEGACY_TRANSFER_URL,
    SEARCH_INGEST_URL,
    TRANSFER_URL,
)

__all__ = ["ALREADY_PUBLISHED", "PUBLISH_STATES", "PublicationGuard", "guard_providers"]

#: The states of the flow that publish (copy to the publication collection, catalog ingest).
PUBLISH_STATES = frozenset({"PublishTransfer", "PublishIngest"})
#: The error code of a publish state refused because another attempt published.
ALREADY_PUBLISHED = "AlreadyPublished"

_GUARDED_URLS = (TRANSFER_URL, LEGACY_TRANSFER_URL, SEARCH_INGEST_URL)


class PublicationGuard(ActionProvider):
    """Wraps ``inner``; publish states run only for the owner of ``publication_key``.

    Parameters
    ----------
    inner
        The provider that does the work.
    db_path
        The SQLite file holding the run history (``publications`` table).
    publication_key
        The key of this launch's one publication.
    facility
        Recorded with the claim.
    """

    def __init__(
        self, inner: ActionProvider, *, db_path: Path, publication_key: str, facility: str
    ) -> None:
        self.url = inner.url
        self.inner = inner
        self.db_path = Path(db_path)
        self.publication_key = publication_key
        self.facility = facility

    def run(self, body: Mapping[str, Any], *, context: ActionContext) -> ActionResult:
        """Claim the publication for publish states, then run the inner provider."""
        if context.state_name in PUBLISH_STATES:
            with RunHistory(self.db_path) as history:
                won = history.claim_publication(
                    self.publication_key,
                    run_id=context.run_id,
                    facility=self.facility,
                    at=time.time(),
                )
                owner = history.publication(self.publication_key)
            if not won:
                owner_run = owner[0] if owner else "another run"
                return ActionResult.failed(
                    ALREADY_PUBLISHED,
                    {
                        "description": f"the dataset was already published by run {owner_run};"
                        " not published again",
                        "owner_run_id": owner_run,
                    },
                )
        return self.inner.run(body, context=context)

    def __repr__(self) -> str:
        return f"PublicationGuard({self.inner!r}, key={self.publication_key[:12]}...)"


def guard_providers(
    providers: Mapping[str, ActionProvider],
    *,
    db_path: Path,
    publication_key: str,
    facility: str,
) -> dict[str, ActionProvider]:
    """``providers`` with the Transfer and Search ingest ones wrapped in a guard."""
    out = dict(providers)
    for url in _GUARDED_URLS:
        if url in out and not isinstance(out[url], PublicationGuard):
            out[url] = PublicationGuard(
                out[url], db_path=db_path, publication_key=publication_key, facility=facility
            )
    return out
