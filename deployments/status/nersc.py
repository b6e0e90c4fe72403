"""NERSC Superfacility API status and planned outages.

``GET {base}/status/{name}`` gives ``status`` in
``active | unavailable | degraded | other``; ``GET {base}/status/outages/planned``
lists planned outages (``name``, ``start_at``, ``end_at``, ``description``),
either flat or grouped per system (a list of lists). Times without a zone are
read as UTC.
"""

from __future__ import annotations

from typing import Any

from deployments.errors import StatusUnavailable
from deployments.status._http import get_json, join_url
from deployments.status.base import (
    FacilityState,
    FacilityStatus,
    Outage,
    StatusProbe,
    parse_timestamp,
)

__all__ = ["NERSCProbe"]

_STATES = {
    "active": FacilityState.UP,
    "degraded": FacilityState.DEGRADED,
    "unavailable": FacilityState.DOWN,
    "other": FacilityState.UNKNOWN,
}


class NERSCProbe(StatusProbe):
    """Status of one NERSC system from the Superfacility API.

    Parameters
    ----------
    facility
        The deployment name.
    base_url
        The API root, version included (from the descriptor's status source).
    resource
        The system name (for example ``perlmutter``).
    **kwargs
        ``timeout``, ``ttl``, ``clock``: see :class:`StatusProbe`.
    """

    kind = "nersc"

    def __init__(self, facility: str, *, base_url: str, resource: str, **kwargs: Any) -> None:
        super().__init__(facility, **kwargs)
        self.base_url = base_url
        self.resource = resource

    def fetch(self) -> FacilityStatus:
        """Ask the system route and the planned-outages route."""
        url = join_url(self.base_url, f"status/{self.resource}")
        body = get_json(url, timeout=self.timeout, source=self.kind)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise StatusUnavailable("system answer has no status", source=self.kind, url=url)
        state = _STATES.get(body["status"].lower(), FacilityState.UNKNOWN)
        out_url = join_url(self.base_url, "status/outages/planned")
        planned = get_json(out_url, timeout=self.timeout, source=self.kind)
        return FacilityStatus(
            facility=self.facility,
            source=self.kind,
            state=state,
            observed_at=self.clock(),
            detail=f"{self.resource}: {body['status']}"
            + (f" ({body['description']})" if body.get("description") else ""),
            outages=tuple(self._outages(planned, out_url)),
        )

    def _outages(self, planned: Any, url: str) -> list[Outage]:
        if not isinstance(planned, list):
            raise StatusUnavailable(
                "planned outages answer is not a list", source=self.kind, url=url
            )
        flat: list[Any] = []
        for entry in planned:
            flat.extend(entry if isinstance(entry, list) else [entry])
        found = []
        for item in flat:
            if not isinstance(item, dict):
                raise StatusUnavailable("outage is not an object", source=self.kind, url=url)
            if str(item.get("name", "")).lower() != self.resource.lower():
                continue
            if "start_at" not in item:
                raise StatusUnavailable("outage without start_at", source=self.kind, url=url)
            end = item.get("end_at")
            found.append(
                Outage(
                    start=parse_timestamp(item["start_at"], source=self.kind),
                    end=None if end is None else parse_timestamp(end, source=self.kind),
                    planned=True,
                    description=str(item.get("description") or ""),
                )
            )
        return found
