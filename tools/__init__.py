"""Gladier tool definitions of the XPCS flow (Transfer in, Compute correlation,
plots, publication, transfer back).

Each tool lives in its own module; compute functions are self-contained (they
import what they need inside their body) so they survive serialization to a
Globus Compute endpoint.
"""

from __future__ import annotations

__all__: list[str] = []
