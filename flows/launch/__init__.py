"""Starting runs: the launch API (:func:`launch`), the engines that start an
attempt (local or Globus), launch holds, and the failover runner that starts
the next facility's attempt when one fails.
"""

from __future__ import annotations

from flows.launch.api import (
    ENGINES,
    EngineName,
    LaunchHold,
    LaunchRequest,
    Run,
    RunOutputs,
    choose_facility,
    launch,
    prepare_launch,
    standard_tags,
    start_attempt,
)

__all__ = [
    "ENGINES",
    "EngineName",
    "LaunchHold",
    "LaunchRequest",
    "Run",
    "RunOutputs",
    "choose_facility",
    "launch",
    "prepare_launch",
    "standard_tags",
    "start_attempt",
]
