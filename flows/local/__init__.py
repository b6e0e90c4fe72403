"""The local flow engine: the exported Globus Flows definition, run on this machine.

:class:`LocalEngine` interprets the Globus Flows definition language (Action,
Pass, Choice, ExpressionEval, Wait, Fail; ``.$`` references, ``.=``
expressions, ``ResultPath``, ``Catch``, ``WaitTime``, ``$._context``) with
local action providers for the same action URLs: Transfer (copy with
checksum verification), Compute (the registered function run in a worker
process after a serialization round trip) and Search ingest (a SQLite
catalog). Runs and their logs persist in SQLite across process restarts.
"""

from __future__ import annotations

from flows.local.defaults import default_providers
from flows.local.definition import Finding, check_definition, find_problems, validate_definition
from flows.local.engine import LocalEngine
from flows.local.expressions import evaluate
from flows.local.paths import get_path, set_path
from flows.local.providers.base import (
    ActionProvider,
    FunctionProvider,
    provider_map,
    unable_to_run,
)
from flows.local.providers.catalog import CatalogEntry, LocalCatalog
from flows.local.providers.compute import ComputeProvider, FunctionRegistry
from flows.local.providers.search import SearchIngestProvider
from flows.local.providers.transfer import CollectionMap, TransferProvider
from flows.local.records import ActionContext, ActionResult, ActionStatus, RunRecord, RunStatus
from flows.local.store import default_state_db

__all__ = [
    "ActionContext",
    "ActionProvider",
    "ActionResult",
    "ActionStatus",
    "CatalogEntry",
    "CollectionMap",
    "ComputeProvider",
    "Finding",
    "FunctionProvider",
    "FunctionRegistry",
    "LocalCatalog",
    "LocalEngine",
    "RunRecord",
    "RunStatus",
    "SearchIngestProvider",
    "TransferProvider",
    "check_definition",
    "default_providers",
    "default_state_db",
    "evaluate",
    "find_problems",
    "get_path",
    "provider_map",
    "set_path",
    "unable_to_run",
    "validate_definition",
]
