"""The APS XPCS result file: its layout, the atomic writer, the reader and the
duck-typed inputs of the writer.
"""

from __future__ import annotations

from xpcs_kernel.result.writer import (
    REQUIRED_COMMON_KEYS,
    REQUIRED_MULTITAU_KEYS,
    REQUIRED_TWOTIME_KEYS,
    G2Like,
    QMapLike,
    ResultFile,
    ResultMetadata,
    SaxsLike,
    read_result,
    verify_result,
    write_result,
)

__all__ = [
    "REQUIRED_COMMON_KEYS",
    "REQUIRED_MULTITAU_KEYS",
    "REQUIRED_TWOTIME_KEYS",
    "G2Like",
    "QMapLike",
    "ResultFile",
    "ResultMetadata",
    "SaxsLike",
    "read_result",
    "verify_result",
    "write_result",
]
