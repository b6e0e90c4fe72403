"""Multi-tau correlation: the streaming :class:`MultiTauCorrelator`, its eager
wrapper :func:`multitau`, and the kernels behind them (delay scheme, dense and
sparse feeds, binning, reduction to g2).
"""

from __future__ import annotations

from xpcs_kernel.multitau.correlator import (
    EVENTS_CROSSOVER,
    SPARSE_CROSSOVER,
    DelayScheme,
    G2Result,
    MultiTauCorrelator,
    PixelBins,
    choose_path,
    delay_list,
    multitau,
    state_nbytes,
    stream_memory_budget,
)

__all__ = [
    "EVENTS_CROSSOVER",
    "SPARSE_CROSSOVER",
    "DelayScheme",
    "G2Result",
    "MultiTauCorrelator",
    "PixelBins",
    "choose_path",
    "delay_list",
    "multitau",
    "state_nbytes",
    "stream_memory_budget",
]
