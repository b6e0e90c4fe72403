"""The DOE IRI facility API (implemented by ALCF and NERSC).

``GET {base}/api/v1/status/resources/{id}`` gives ``status`` in
``up | degraded | down | unknown``; ``GET {base}/api/v1/status/incidents``
lists planned and unplanned incidents (``type``, ``start``, ``end``,
``resource_uris``). Incidents that name the resource become outages.
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

__all__ = ["IRIProbe"]

_STATES = {s.value: s for s in FacilityState}


class IRIProbe(StatusProbe):
    """Status of one resource from an IRI facility API.

    Parameters
    ----------
    facility
        The deployment name.
    base_url
        The API root (from the descriptor's status source).
    resource
        The resource id in that API (for example ``polaris``).
    **kwargs
        ``timeout``, ``ttl``, ``clock``: see :class:`StatusProbe`.
    """

    kind = "iri"

    def __init__(self, facility: str, *, base_url: str, resource: str, **kwargs: Any) -> None:
        super().__init__(facility, **kwargs)
        self.base_url = base_url
        self.resource = resource

    def fetch(self) -> FacilityStatus:
        """Ask the resource route and the incidents route."""
        res_url = join_url(self.base_url, f"api/v1/status/resources/{self.resource}")
        body = get_json(res_url, timeout=self.timeout, source=self.kind)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise StatusUnavailable("resource answer has no status", source=self.kind, url=res_url)
        state = _STATES.get(body["status"].lower(), FacilityState.UNKNOWN)
        inc_url = join_url(self.base_url, "api/v1/status/incidents")
        incidents = get_json(inc_url, timeout=self.timeout, source=self.kind)
        outages = tuple(self._outages(incidents, inc_url))
        return FacilityStatus(
            facility=self.facility,
            source=self.kind,
            state=state,
            observed_at=self.clock(),
            detail=f"{self.resource}: {body['status']}",
            outages=outages,
        )

    def _outages(self, incidents: Any, url: str) -> list[Outage]:
        if isinstance(incidents, dict):
            incidents = incidents.get("incidents", incidents.get("items"))
        if not isinstance(incidents, list):
            raise StatusUnavailable("incidents answer is not a list", source=self.kind, url=url)
        found = []
        for item in incidents:
            if not isinstance(item, dict):
                raise StatusUnavailable("incident is not an object", source=self.kind, url=url)
            uris = item.get("resource_uris", [])
            if not isinstance(uris, list) or not any(self._names_us(u) for u in uris):
                continue
            if "start" not in item:
                raise StatusUnavailable("incident without start", source=self.kind, url=url)
            end = item.get("end")
            found.append(
                Outage(
                    start=parse_timestamp(item["start"], source=self.kind),
                    end=None if end is None else parse_timestamp(end, source=self.kind),
                    planned=str(item.get("type", "unplanned")).lower() == "planned",
                    description=str(item.get("name") or item.get("description") or ""),
                )
            )
        return found

    def _names_us(self, uri: Any) -> bool:
        return isinstance(uri, str) and uri.rstrip("/").rsplit("/", 1)[-1] == self.resource
