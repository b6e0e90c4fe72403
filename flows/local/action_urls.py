"""The action URLs the local engine serves: the same ones the tools put in the
definition (defined once, in :mod:`tools.action_urls`)."""

from __future__ import annotations

from tools.action_urls import (
    COMPUTE_V2_URL,
    COMPUTE_V3_URL,
    LEGACY_TRANSFER_URL,
    SEARCH_INGEST_URL,
    TRANSFER_URL,
)

__all__ = [
    "COMPUTE_V2_URL",
    "COMPUTE_V3_URL",
    "LEGACY_TRANSFER_URL",
    "SEARCH_INGEST_URL",
    "TRANSFER_URL",
]
