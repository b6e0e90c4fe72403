"""Globus Compute endpoint status: online/offline, idle workers, outstanding tasks.

Queried through :class:`globus_sdk.ComputeClientV2` (``GET
/v2/endpoints/{id}/status``) with an authorizer the caller passes in, so that
building the probe never starts a login. ``online`` is ``up``, ``offline`` is
``down``; any other answer, an API error or a network error is ``unknown``.
"""

from __future__ import annotations

from typing import Any

import globus_sdk
from globus_sdk.authorizers import GlobusAuthorizer
from globus_sdk.transport import RequestsTransport, RetryConfig

from deployments.errors import StatusUnavailable
from deployments.status.base import FacilityState, FacilityStatus, StatusProbe

__all__ = ["ComputeEndpointProbe", "make_compute_client"]

_STATES = {"online": FacilityState.UP, "offline": FacilityState.DOWN}


def make_compute_client(
    base_url: str, authorizer: GlobusAuthorizer | None, *, timeout: float
) -> globus_sdk.ComputeClientV2:
    """A Compute API client that does not retry and gives up after ``timeout`` seconds."""
    return globus_sdk.ComputeClientV2(
        base_url=base_url,
        authorizer=authorizer,
        transport=RequestsTransport(http_timeout=timeout),
        retry_config=RetryConfig(max_retries=0),
    )


class ComputeEndpointProbe(StatusProbe):
    """Status of one Globus Compute endpoint.

    Parameters
    ----------
    facility
        The deployment name.
    endpoint_id
        The endpoint UUID (from the descriptor).
    base_url
        The Compute API root (from the descriptor's status source).
    authorizer
        How to authenticate (for example an ``AccessTokenAuthorizer``);
        ``None`` sends no credentials.
    client
        A ready client; overrides ``base_url`` and ``authorizer``.
    **kwargs
        ``timeout``, ``ttl``, ``clock``: see :class:`StatusProbe`.
    """

    kind = "globus-compute"

    def __init__(
        self,
        facility: str,
        *,
        endpoint_id: str,
        base_url: str,
        authorizer: GlobusAuthorizer | None = None,
        client: globus_sdk.ComputeClientV2 | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(facility, **kwargs)
        self.endpoint_id = endpoint_id
        self.client = client or make_compute_client(base_url, authorizer, timeout=self.timeout)

    def fetch(self) -> FacilityStatus:
        """Ask the endpoint status route."""
        try:
            body = self.client.get_endpoint_status(self.endpoint_id).data
        except globus_sdk.GlobusAPIError as exc:
            raise StatusUnavailable(
                f"Compute API answered HTTP {exc.http_status} ({exc.code})", source=self.kind
            ) from None
        except globus_sdk.NetworkError as exc:
            raise StatusUnavailable(f"Compute API unreachable: {exc}", source=self.kind) from None
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise StatusUnavailable("endpoint status answer has no status", source=self.kind)
        raw = body["status"]
        details = body.get("details") or {}
        if not isinstance(details, dict):
            raise StatusUnavailable("endpoint status details are not an object", source=self.kind)
        return FacilityStatus(
            facility=self.facility,
            source=self.kind,
            state=_STATES.get(raw.lower(), FacilityState.UNKNOWN),
            observed_at=self.clock(),
            detail=f"endpoint {raw}",
            idle_workers=_count(details, "idle_workers"),
            total_workers=_count(details, "total_workers"),
            outstanding_tasks=_count(details, "outstanding_tasks"),
        )


def _count(details: dict[str, Any], key: str) -> int | None:
    value = details.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StatusUnavailable(f"{key} is not a count: {value!r}", source="globus-compute")
    return value
