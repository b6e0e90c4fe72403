"""Live correlation: follow a raw file while the detector writes it.

:func:`follow_file` gives partial results (multi-tau g2 and SAXS of the
frames so far) every few seconds and, once the file is complete, the same
final result as :func:`~xpcs_kernel.pipeline.correlate_file`; a killed
follower resumes from its checkpoint. :func:`open_growing` reads the growing
HDF5 (SWMR), IMM and Rigaku files it follows.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xpcs_kernel.live.follow import FollowConfig, FollowUpdate, follow_file
    from xpcs_kernel.live.growing import GrowingSource, open_growing
    from xpcs_kernel.live.saxs_live import LiveSaxs

__all__ = [
    "FollowConfig",
    "FollowUpdate",
    "GrowingSource",
    "LiveSaxs",
    "follow_file",
    "open_growing",
]

# Loaded on first use: the CLI imports ``live.follow_cli`` (click options
# only) for every command, ``--help`` included, and must not pay for numba.
_HOME = {
    "FollowConfig": "follow",
    "FollowUpdate": "follow",
    "follow_file": "follow",
    "GrowingSource": "growing",
    "open_growing": "growing",
    "LiveSaxs": "saxs_live",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
