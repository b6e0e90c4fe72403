"""Two-time correlation per dynamic q-bin: the streaming
:class:`TwoTimeCorrelator`, its eager wrapper :func:`twotime` and the Gram,
diagonal and frame-store pieces behind them.
"""

from __future__ import annotations

from xpcs_kernel.twotime.correlator import (
    TwoTimeCorrelator,
    TwoTimeResult,
    twotime,
)

__all__ = [
    "TwoTimeCorrelator",
    "TwoTimeResult",
    "twotime",
]
