"""SAXS reductions: the streaming accumulator and the numba kernels behind it."""

from __future__ import annotations

from xpcs_kernel.saxs.profile import (
    MAX_SEGMENTS,
    SaxsAccumulator,
    SaxsResult,
    saxs,
)

__all__ = [
    "MAX_SEGMENTS",
    "SaxsAccumulator",
    "SaxsResult",
    "saxs",
]
