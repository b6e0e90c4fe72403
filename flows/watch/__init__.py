"""The file-watching trigger: scan a folder, keep a ledger of what was seen and
launched (crash-safe, no dataset dropped or duplicated), launch each complete
dataset.
"""

from __future__ import annotations

from flows.watch.watcher import (
    PassReport,
    WatchConfig,
    Watcher,
    launch_key,
)

__all__ = [
    "PassReport",
    "WatchConfig",
    "Watcher",
    "launch_key",
]
