"""xpcs_kernel: XPCS numerics and I/O (numpy/h5py/numba, no Globus).

This package is what runs on a compute endpoint: readers for raw detector
frames, q-maps, the multi-tau and two-time correlators, SAXS reductions,
fits and the APS result writer.
"""

from __future__ import annotations

from xpcs_kernel._version import __version__
from xpcs_kernel.errors import (
    ConfigurationError,
    CorrelationError,
    FitError,
    FrameFormatError,
    InputDataError,
    QMapError,
    ResultFileError,
    UsageError,
    XPCSFlowsError,
)

__all__ = [
    "ConfigurationError",
    "CorrelationError",
    "FitError",
    "FrameFormatError",
    "InputDataError",
    "QMapError",
    "ResultFileError",
    "UsageError",
    "XPCSFlowsError",
    "__version__",
]
