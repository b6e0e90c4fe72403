"""The local engine's action providers: the extension point (:mod:`.base`) and
one provider per Globus action (Transfer, Compute, Search ingest).
"""

from __future__ import annotations

from flows.local.providers.base import (
    ActionProvider,
    FunctionProvider,
    provider_map,
    require,
    unable_to_run,
)

__all__ = [
    "ActionProvider",
    "FunctionProvider",
    "provider_map",
    "require",
    "unable_to_run",
]
