"""Errors raised by :mod:`deployments`, all rooted in :class:`XPCSFlowsError`.

Descriptor problems use the shared :class:`~xpcs_kernel.errors.ConfigurationError`;
the classes here cover facility choice and status sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xpcs_kernel.errors import XPCSFlowsError

__all__ = ["NoFacilityAvailable", "StatusUnavailable"]


class NoFacilityAvailable(XPCSFlowsError):
    """No candidate facility can take the run.

    Parameters
    ----------
    message
        What went wrong, in one line.
    table
        The ranked decision table (one JSON-friendly row per candidate, each
        with its exclusion reasons), so that callers can show why every
        facility was refused.
    """

    def __init__(self, message: str, *, table: Sequence[Mapping[str, Any]] = ()) -> None:
        reasons = "; ".join(
            f"{row.get('facility')}: {', '.join(row.get('reasons', ())) or 'no reason'}"
            for row in table
        )
        super().__init__(f"{message} ({reasons})" if reasons else message)
        self.table = [dict(row) for row in table]


class StatusUnavailable(XPCSFlowsError):
    """A status source could not be read or its answer could not be understood.

    Probes raise this from :meth:`StatusProbe.fetch`; :meth:`StatusProbe.status`
    turns it into an ``unknown`` status that names ``source`` and ``reason``.

    Parameters
    ----------
    message
        What went wrong.
    source
        The probe kind (``globus-compute``, ``iri``, ``nersc``, ``olcf``...).
    url
        The address queried, when there is one.
    """

    def __init__(self, message: str, *, source: str, url: str | None = None) -> None:
        super().__init__(f"{source}: {message}" + (f" ({url})" if url else ""))
        self.source = source
        self.url = url
