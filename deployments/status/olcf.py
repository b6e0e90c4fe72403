"""OLCF S3M status and upcoming downtimes.

``GET {base}/olcf/v1alpha/status`` gives, per resource, a ``status`` (for
example ``OPERATIONAL``) and ``upcomingDowntimes`` (``start``, ``end``,
``description``). Resources come as a list under ``resources`` (each with a
``name``) or as an object keyed by resource name.
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

__all__ = ["OLCFProbe"]

_STATES = {
    "operational": FacilityState.UP,
    "up": FacilityState.UP,
    "degraded": FacilityState.DEGRADED,
    "partial": FacilityState.DEGRADED,
    "down": FacilityState.DOWN,
    "unavailable": FacilityState.DOWN,
    "offline": FacilityState.DOWN,
    "maintenance": FacilityState.DOWN,
}


class OLCFProbe(StatusProbe):
    """Status of one OLCF resource from S3M.

    Parameters
    ----------
    facility
        The deployment name.
    base_url
        The S3M root (from the descriptor's status source).
    resource
        The resource name (for example ``frontier``).
    **kwargs
        ``timeout``, ``ttl``, ``clock``: see :class:`StatusProbe`.
    """

    kind = "olcf"

    def __init__(self, facility: str, *, base_url: str, resource: str, **kwargs: Any) -> None:
        super().__init__(facility, **kwargs)
        self.base_url = base_url
        self.resource = resource

    def fetch(self) -> FacilityStatus:
        """Ask the status route and pick this resource."""
        url = join_url(self.base_url, "olcf/v1alpha/status")
        body = get_json(url, timeout=self.timeout, source=self.kind)
        entry = self._entry(body, url)
        raw = entry.get("status")
        if not isinstance(raw, str):
            raise StatusUnavailable(f"{self.resource} has no status", source=self.kind, url=url)
        downtimes = entry.get("upcomingDowntimes", [])
        if not isinstance(downtimes, list):
            raise StatusUnavailable("upcomingDowntimes is not a list", source=self.kind, url=url)
        outages = []
        for item in downtimes:
            if not isinstance(item, dict) or "start" not in item:
                raise StatusUnavailable("downtime without start", source=self.kind, url=url)
            end = item.get("end")
            outages.append(
                Outage(
                    start=parse_timestamp(item["start"], source=self.kind),
                    end=None if end is None else parse_timestamp(end, source=self.kind),
                    planned=True,
                    description=str(item.get("description") or ""),
                )
            )
        return FacilityStatus(
            facility=self.facility,
            source=self.kind,
            state=_STATES.get(raw.lower(), FacilityState.UNKNOWN),
            observed_at=self.clock(),
            detail=f"{self.resource}: {raw}",
            outages=tuple(outages),
        )

    def _entry(self, body: Any, url: str) -> dict[str, Any]:
        if isinstance(body, dict) and isinstance(body.get("resources"), list):
            for item in body["resources"]:
                if (
                    isinstance(item, dict)
                    and str(item.get("name", "")).lower() == self.resource.lower()
                ):
                    return item
        elif isinstance(body, dict) and isinstance(body.get(self.resource), dict):
            entry: dict[str, Any] = body[self.resource]
            return entry
        else:
            raise StatusUnavailable("status answer has no resources", source=self.kind, url=url)
        raise StatusUnavailable(f"{self.resource} not listed", source=self.kind, url=url)
