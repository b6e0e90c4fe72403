"""Facility deployments: one descriptor per facility, live status probes and
the per-run choice of facility (with failover).

This package imports nothing of ours but the shared error hierarchy in
:mod:`xpcs_kernel.errors`.
"""

from __future__ import annotations

__all__: list[str] = []
