"""The whole correlation of one file: read, correlate (multi-tau, two-time,
SAXS), fit and write the result (:func:`correlate_file`).
"""

from __future__ import annotations

from xpcs_kernel.pipeline.correlate import (
    CorrelationSummary,
    ProgressCallback,
    correlate_file,
    sha256_file,
)

__all__ = [
    "CorrelationSummary",
    "ProgressCallback",
    "correlate_file",
    "sha256_file",
]
