"""Facility status: one probe per source behind :class:`StatusProbe`.

Sources: Globus Compute endpoint status, the DOE IRI facility API, the NERSC
Superfacility API, OLCF S3M and the descriptor's own maintenance calendar.
"""

from __future__ import annotations

from deployments.status.base import (
    FacilityState,
    FacilityStatus,
    Outage,
    StatusProbe,
    parse_timestamp,
)
from deployments.status.calendar import CalendarProbe
from deployments.status.compute import ComputeEndpointProbe, make_compute_client
from deployments.status.gather import build_probes, combine, gather_statuses
from deployments.status.iri import IRIProbe
from deployments.status.nersc import NERSCProbe
from deployments.status.olcf import OLCFProbe

__all__ = [
    "CalendarProbe",
    "ComputeEndpointProbe",
    "FacilityState",
    "FacilityStatus",
    "IRIProbe",
    "NERSCProbe",
    "OLCFProbe",
    "Outage",
    "StatusProbe",
    "build_probes",
    "combine",
    "gather_statuses",
    "make_compute_client",
    "parse_timestamp",
]
