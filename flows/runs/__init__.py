"""Runs after launch: the :class:`Run` handle (either engine), driving a local
run, the local run index, the outcome recorded in the run history and the
one-publication guard."""

from __future__ import annotations

from flows.runs.handle import FINAL, Run, RunOutputs, globus_flows_client

__all__ = ["FINAL", "Run", "RunOutputs", "globus_flows_client"]
