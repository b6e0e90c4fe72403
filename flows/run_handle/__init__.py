"""The run handle's former path, kept for users: ``from flows.run_handle import Run``.

Its home is :mod:`flows.runs.handle` (re-exported by :mod:`flows.runs`).
"""

from __future__ import annotations

from flows.runs.handle import FINAL, Run, RunOutputs, globus_flows_client

__all__ = ["FINAL", "Run", "RunOutputs", "globus_flows_client"]
