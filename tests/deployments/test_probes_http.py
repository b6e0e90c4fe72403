"""IRI, NERSC and OLCF probes against a real HTTP server on loopback."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from deployments.status import FacilityState, IRIProbe, NERSCProbe, OLCFProbe, StatusProbe
from tests.deployments.conftest import StatusServer

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def iri(server: StatusServer, clock: Clock | None = None, **kw: float) -> IRIProbe:
    return IRIProbe(
        "polaris",
        base_url=server.base_url,
        resource="polaris",
        clock=clock or Clock(),
        **kw,  # type: ignore[arg-type]
    )


def serve_iri(server: StatusServer, status: str = "up", incidents: object = ()) -> None:
    server.json("/api/v1/status/resources/polaris", {"id": "polaris", "status": status})
    server.json("/api/v1/status/incidents", list(incidents))  # type: ignore[call-overload]


# -- IRI -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("up", FacilityState.UP),
        ("degraded", FacilityState.DEGRADED),
        ("down", FacilityState.DOWN),
        ("unknown", FacilityState.UNKNOWN),
        ("sideways", FacilityState.UNKNOWN),
    ],
)
def test_iri_states(status_server: StatusServer, raw: str, state: FacilityState) -> None:
    serve_iri(status_server, raw)
    got = iri(status_server).status()
    assert got.state is state
    assert got.source == "iri"
    assert got.detail == f"polaris: {raw}"
    assert status_server.requests == [
        "/api/v1/status/resources/polaris",
        "/api/v1/status/incidents",
    ]


def test_iri_incidents_for_our_resource_become_outages(status_server: StatusServer) -> None:
    serve_iri(
        status_server,
        "up",
        [
            {
                "type": "planned",
                "name": "Polaris PM",
                "start": "2026-11-25T14:00:00Z",
                "end": "2026-11-25T22:00:00Z",
                "resource_uris": ["https://x/api/v1/status/resources/polaris"],
            },
            {
                "type": "unplanned",
                "name": "Aurora down",
                "start": "2026-11-25T10:00:00Z",
                "end": None,
                "resource_uris": ["https://x/api/v1/status/resources/aurora"],
            },
            {
                "type": "unplanned",
                "name": "Eagle slow",
                "start": "2026-11-25T11:00:00+00:00",
                "end": None,
                "resource_uris": ["/api/v1/status/resources/polaris/"],
            },
        ],
    )
    got = iri(status_server).status()
    assert got.state is FacilityState.UP
    assert [(o.description, o.planned) for o in got.outages] == [
        ("Polaris PM", True),
        ("Eagle slow", False),
    ]
    planned, unplanned = got.outages
    assert planned.start == T0 + 2 * 3600
    assert planned.end == T0 + 10 * 3600
    assert unplanned.end is None
    assert unplanned.overlaps(T0, T0 + 60)


def test_iri_500_is_unknown(status_server: StatusServer) -> None:
    status_server.json("/api/v1/status/resources/polaris", {"error": "boom"}, status=500)
    got = iri(status_server).status()
    assert got.state is FacilityState.UNKNOWN
    assert "HTTP 500" in got.detail


def test_iri_malformed_json_is_unknown(status_server: StatusServer) -> None:
    status_server.raw("/api/v1/status/resources/polaris", b"{'status': up")
    got = iri(status_server).status()
    assert got.state is FacilityState.UNKNOWN
    assert "malformed JSON" in got.detail


def test_iri_wrong_shape_is_unknown(status_server: StatusServer) -> None:
    status_server.json("/api/v1/status/resources/polaris", {"status": "up"})
    status_server.json("/api/v1/status/incidents", {"unexpected": True})
    got = iri(status_server).status()
    assert got.state is FacilityState.UNKNOWN
    assert "not a list" in got.detail


def test_iri_bad_incident_time_is_unknown(status_server: StatusServer) -> None:
    serve_iri(
        status_server,
        "up",
        [{"type": "planned", "start": "next tuesday", "resource_uris": ["r/polaris"]}],
    )
    got = iri(status_server).status()
    assert got.state is FacilityState.UNKNOWN
    assert "not a timestamp" in got.detail


def test_timeout_is_unknown_not_up(status_server: StatusServer) -> None:
    status_server.json("/api/v1/status/resources/polaris", {"status": "up"}, delay=1.0)
    got = iri(status_server, timeout=0.2).status()
    assert got.state is FacilityState.UNKNOWN
    assert "0.2 s" in got.detail or "timed out" in got.detail


def test_unreachable_is_unknown() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = IRIProbe(
        "polaris", base_url=f"http://127.0.0.1:{port}", resource="polaris", clock=Clock()
    )
    got = probe.status()
    assert got.state is FacilityState.UNKNOWN
    assert "unreachable" in got.detail


def test_ttl_cache_reuses_answers_and_failures(status_server: StatusServer) -> None:
    serve_iri(status_server, "up")
    clock = Clock()
    probe = iri(status_server, clock, ttl=60.0)
    assert probe.status().state is FacilityState.UP
    status_server.json("/api/v1/status/resources/polaris", {"status": "down"})
    clock.t += 59
    assert probe.status().state is FacilityState.UP  # cached
    assert len(status_server.requests) == 2
    clock.t += 2
    again = probe.status()
    assert again.state is FacilityState.DOWN
    assert again.observed_at == clock.t
    assert len(status_server.requests) == 4
    probe.invalidate()
    probe.status()
    assert len(status_server.requests) == 6


# -- NERSC -----------------------------------------------------------------------


def nersc(server: StatusServer) -> NERSCProbe:
    return NERSCProbe(
        "perlmutter", base_url=server.base_url + "/api/v1.2", resource="perlmutter", clock=Clock()
    )


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("active", FacilityState.UP),
        ("degraded", FacilityState.DEGRADED),
        ("unavailable", FacilityState.DOWN),
        ("other", FacilityState.UNKNOWN),
    ],
)
def test_nersc_states(status_server: StatusServer, raw: str, state: FacilityState) -> None:
    status_server.json(
        "/api/v1.2/status/perlmutter",
        {"name": "perlmutter", "status": raw, "description": "System is " + raw},
    )
    status_server.json("/api/v1.2/status/outages/planned", [])
    got = nersc(status_server).status()
    assert got.state is state
    assert f"System is {raw}" in got.detail


def test_nersc_planned_outages_grouped_or_flat(status_server: StatusServer) -> None:
    status_server.json("/api/v1.2/status/perlmutter", {"name": "perlmutter", "status": "active"})
    status_server.json(
        "/api/v1.2/status/outages/planned",
        [
            [
                {
                    "name": "perlmutter",
                    "start_at": "2026-11-26T07:00:00",
                    "end_at": "2026-11-26T19:00:00",
                    "description": "Scheduled maintenance",
                    "status": "Planned",
                },
                {"name": "hpss", "start_at": "2026-11-25T00:00:00", "end_at": None},
            ],
            {"name": "Perlmutter", "start_at": "2026-12-01T07:00:00Z", "end_at": None},
        ],
    )
    got = nersc(status_server).status()
    assert got.state is FacilityState.UP
    assert len(got.outages) == 2
    first = got.outages[0]
    assert first.planned
    assert first.description == "Scheduled maintenance"
    assert first.start == datetime(2026, 11, 26, 7, tzinfo=UTC).timestamp()
    assert first.end == first.start + 12 * 3600


def test_nersc_outages_not_a_list_is_unknown(status_server: StatusServer) -> None:
    status_server.json("/api/v1.2/status/perlmutter", {"status": "active"})
    status_server.json("/api/v1.2/status/outages/planned", {"oops": 1})
    assert nersc(status_server).status().state is FacilityState.UNKNOWN


def test_nersc_500_is_unknown(status_server: StatusServer) -> None:
    status_server.json("/api/v1.2/status/perlmutter", {}, status=503)
    got = nersc(status_server).status()
    assert got.state is FacilityState.UNKNOWN
    assert "HTTP 503" in got.detail


# -- OLCF ------------------------------------------------------------------------


def olcf(server: StatusServer) -> OLCFProbe:
    return OLCFProbe("frontier", base_url=server.base_url, resource="frontier", clock=Clock())


def test_olcf_operational_with_upcoming_downtime(status_server: StatusServer) -> None:
    status_server.json(
        "/olcf/v1alpha/status",
        {
            "resources": [
                {"name": "summit", "status": "DECOMMISSIONED"},
                {
                    "name": "Frontier",
                    "status": "OPERATIONAL",
                    "upcomingDowntimes": [
                        {
                            "start": "2026-11-25T13:00:00Z",
                            "end": "2026-11-25T21:00:00Z",
                            "description": "Frontier PM",
                        }
                    ],
                },
            ]
        },
    )
    got = olcf(status_server).status()
    assert got.state is FacilityState.UP
    (outage,) = got.outages
    assert outage.planned
    assert outage.description == "Frontier PM"
    assert outage.start == T0 + 3600


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("DEGRADED", FacilityState.DEGRADED),
        ("DOWN", FacilityState.DOWN),
        ("MAINTENANCE", FacilityState.DOWN),
        ("WEIRD", FacilityState.UNKNOWN),
    ],
)
def test_olcf_states_keyed_form(
    status_server: StatusServer, raw: str, state: FacilityState
) -> None:
    status_server.json("/olcf/v1alpha/status", {"frontier": {"status": raw}})
    assert olcf(status_server).status().state is state


def test_olcf_resource_missing_is_unknown(status_server: StatusServer) -> None:
    status_server.json("/olcf/v1alpha/status", {"resources": [{"name": "andes", "status": "UP"}]})
    got = olcf(status_server).status()
    assert got.state is FacilityState.UNKNOWN
    assert "frontier not listed" in got.detail


def test_olcf_malformed_downtimes_is_unknown(status_server: StatusServer) -> None:
    status_server.json(
        "/olcf/v1alpha/status",
        {"resources": [{"name": "frontier", "status": "OPERATIONAL", "upcomingDowntimes": [{}]}]},
    )
    assert olcf(status_server).status().state is FacilityState.UNKNOWN


def test_probes_share_the_interface() -> None:
    for cls in (IRIProbe, NERSCProbe, OLCFProbe):
        assert issubclass(cls, StatusProbe)
        assert cls.kind in {"iri", "nersc", "olcf"}
