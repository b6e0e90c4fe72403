"""The XPCS flow itself: its definition (built from the tools), its input schema,
the validation run before any transfer, the batch plan, and running it on the
local engine.
"""

from __future__ import annotations

from flows.xpcs.definition import (
    BATCH_TOOLS,
    LIVE_TOOLS,
    SINGLE_TOOLS,
    FlowSpec,
    XPCSBatchFlowClient,
    XPCSFlowClient,
    build_definition,
    xpcs_flow,
)

__all__ = [
    "BATCH_TOOLS",
    "LIVE_TOOLS",
    "SINGLE_TOOLS",
    "FlowSpec",
    "XPCSBatchFlowClient",
    "XPCSFlowClient",
    "build_definition",
    "xpcs_flow",
]
