"""Flows chained from the tools, the launch API and CLI, monitoring, the
file-watching trigger and the local engine that runs the same flow definition
on this machine."""

from __future__ import annotations

from xpcs_kernel import XPCSFlowsError, __version__

__all__ = ["XPCSFlowsError", "__version__"]
