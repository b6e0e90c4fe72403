"""The default set of local action providers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from flows.local.providers.base import ActionProvider, provider_map
from flows.local.providers.catalog import LocalCatalog
from flows.local.providers.compute import ComputeProvider, FunctionRegistry
from flows.local.providers.search import SearchIngestProvider
from flows.local.providers.transfer import CollectionMap, TransferProvider
from tools.action_urls import COMPUTE_V2_URL, COMPUTE_V3_URL, LEGACY_TRANSFER_URL

__all__ = ["default_providers"]


def default_providers(
    db_path: Path,
    *,
    collections: CollectionMap | Mapping[str, str | os.PathLike[str]] | None = None,
) -> dict[str, ActionProvider]:
    """Providers for the Globus action URLs our flows use, all local.

    Parameters
    ----------
    db_path
        The state database holding the function registry and the catalog.
    collections
        Collection id -> local directory; without it no Transfer provider is
        registered (a Transfer state then fails with ``ActionUnableToRun``).

    Returns
    -------
    dict
        Action URL -> provider: Compute (v3 and v2) on a
        :class:`~flows.local.providers.compute.FunctionRegistry`, Search ingest on a
        :class:`~flows.local.providers.catalog.LocalCatalog`, and Transfer (current and
        legacy URL) when ``collections`` is given.
    """
    registry = FunctionRegistry(db_path)
    providers: list[ActionProvider] = [
        ComputeProvider(registry, url=COMPUTE_V3_URL),
        ComputeProvider(registry, url=COMPUTE_V2_URL),
        SearchIngestProvider(LocalCatalog(db_path)),
    ]
    if collections is not None:
        providers.append(TransferProvider(collections))
        providers.append(TransferProvider(collections, url=LEGACY_TRANSFER_URL))
    return provider_map(providers)
