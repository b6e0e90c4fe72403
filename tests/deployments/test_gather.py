"""Probes built from descriptors, asked concurrently, answers combined; the chooser."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from deployments.chooser import FacilityChooser
from deployments.errors import NoFacilityAvailable
from deployments.registry import load_deployments
from deployments.select import JobRequest
from deployments.state import FacilityState, FacilityStatus, Outage
from deployments.status import (
    CalendarProbe,
    ComputeEndpointProbe,
    IRIProbe,
    StatusProbe,
    build_probes,
    combine,
    gather_statuses,
)
from tests.deployments.conftest import StatusServer
from tests.deployments.helpers import make_deployment, override_text

NOW = 1_800_000_000.0


def answer(source: str, state: FacilityState, **kw: object) -> FacilityStatus:
    return FacilityStatus("x", source, state, NOW, "d", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("states", "combined"),
    [
        ((FacilityState.UP, FacilityState.UP), FacilityState.UP),
        ((FacilityState.UP, FacilityState.DEGRADED), FacilityState.DEGRADED),
        ((FacilityState.UP, FacilityState.DOWN), FacilityState.DOWN),
        ((FacilityState.UP, FacilityState.UNKNOWN), FacilityState.UP),  # facility API unreadable
        ((FacilityState.UNKNOWN, FacilityState.UP), FacilityState.UNKNOWN),  # endpoint unreadable
        ((FacilityState.UNKNOWN, FacilityState.DOWN), FacilityState.DOWN),
        ((FacilityState.UNKNOWN, FacilityState.UNKNOWN), FacilityState.UNKNOWN),
    ],
)
def test_combine_states(
    states: tuple[FacilityState, FacilityState], combined: FacilityState
) -> None:
    endpoint, facility = states
    got = combine("x", [answer("globus-compute", endpoint), answer("iri", facility)], now=NOW)
    assert got.state is combined


def test_combine_merges_outages_workers_and_keeps_oldest_time() -> None:
    o1 = Outage(NOW + 10, NOW + 20, True, "a")
    o2 = Outage(NOW + 5, None, False, "b")
    got = combine(
        "x",
        [
            FacilityStatus(
                "x",
                "globus-compute",
                FacilityState.UP,
                NOW - 30,
                "",
                (),
                idle_workers=2,
                total_workers=4,
                outstanding_tasks=3,
            ),
            FacilityStatus("x", "iri", FacilityState.UP, NOW, "", (o1, o2)),
            FacilityStatus("x", "calendar", FacilityState.UP, NOW, "", (o1,)),
        ],
        now=NOW,
    )
    assert got.outages == (o2, o1)
    assert (got.idle_workers, got.total_workers, got.outstanding_tasks) == (2, 4, 3)
    assert got.observed_at == NOW - 30
    assert got.sources == ("globus-compute=up", "iri=up", "calendar=up")


def test_build_probes_from_descriptors(tmp_path: Path) -> None:
    (tmp_path / "polaris.toml").write_text(override_text())
    (tmp_path / "frontier.toml").write_text(override_text())
    found = load_deployments(tmp_path)
    polaris = build_probes(found.get("polaris"))
    assert [type(p) for p in polaris] == [ComputeEndpointProbe, IRIProbe, CalendarProbe]
    iri = polaris[1]
    assert isinstance(iri, IRIProbe)
    assert (iri.resource, iri.ttl, iri.timeout) == ("polaris", 120.0, 5.0)
    assert [p.kind for p in build_probes(found.get("frontier"))] == [
        "globus-compute",
        "olcf",
        "calendar",
    ]
    assert [p.kind for p in build_probes(found.get("local"))] == ["calendar"]


class BarrierProbe(StatusProbe):
    """Answers only once every probe is being asked at the same time."""

    kind = "barrier"

    def __init__(self, name: str, barrier: threading.Barrier) -> None:
        super().__init__(name, ttl=0, clock=lambda: NOW)
        self.barrier = barrier

    def fetch(self) -> FacilityStatus:
        self.barrier.wait(timeout=5)  # BrokenBarrierError if asked one after another
        return FacilityStatus(self.facility, self.kind, FacilityState.UP, NOW)


def test_probes_are_asked_concurrently() -> None:
    barrier = threading.Barrier(6)
    probes = {
        f"s{i}": [BarrierProbe(f"s{i}", barrier), BarrierProbe(f"s{i}", barrier)] for i in range(3)
    }
    got = gather_statuses(probes, clock=lambda: NOW)
    assert sorted(got) == ["s0", "s1", "s2"]
    assert all(s.state is FacilityState.UP for s in got.values())


@pytest.fixture
def compute_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        yield rsps


def test_chooser_end_to_end_with_live_probes(
    tmp_path: Path, status_server: StatusServer, compute_api: responses.RequestsMock
) -> None:
    """Polaris (IRI on loopback) is down for a planned incident; Perlmutter is chosen."""
    polaris_ep = "11111111-2222-4333-8444-000000000001"
    pm_ep = "11111111-2222-4333-8444-000000000002"
    (tmp_path / "polaris.toml").write_text(
        override_text(polaris_ep)
        + f"""
[[status]]
kind = "globus-compute"
base_url = "https://compute.api.globus.org"
[[status]]
kind = "iri"
base_url = "{status_server.base_url}"
resource = "polaris"
"""
    )
    (tmp_path / "perlmutter.toml").write_text(
        override_text(pm_ep)
        + f"""
[[status]]
kind = "globus-compute"
base_url = "https://compute.api.globus.org"
[[status]]
kind = "nersc"
base_url = "{status_server.base_url}/api/v1.2"
resource = "perlmutter"
"""
    )
    for ep in (polaris_ep, pm_ep):
        compute_api.get(
            f"https://compute.api.globus.org/v2/endpoints/{ep}/status",
            json={
                "status": "online",
                "details": {"total_workers": 4, "idle_workers": 4, "outstanding_tasks": 0},
            },
        )
    status_server.json("/api/v1/status/resources/polaris", {"status": "up"})
    status_server.json(
        "/api/v1/status/incidents",
        [
            {
                "type": "planned",
                "name": "Polaris PM",
                "start": "2027-01-15T08:00:30Z",
                "end": "2027-01-15T16:00:00Z",
                "resource_uris": ["x/polaris"],
            }
        ],
    )
    status_server.json("/api/v1.2/status/perlmutter", {"status": "active"})
    status_server.json("/api/v1.2/status/outages/planned", [])
    chooser = FacilityChooser(config_dir=tmp_path, clock=lambda: NOW)
    request = JobRequest(
        dataset="A1", bytes_in=10**9, frames=1000, pixels=10**6, allow_local=False
    )
    decision = chooser.decide(request)
    assert decision.chosen == "perlmutter"
    polaris_row = next(c for c in decision.candidates if c.facility == "polaris")
    assert "planned outage 'Polaris PM'" in polaris_row.reasons[0]
    overview = chooser.overview(request)
    assert overview["statuses"]["perlmutter"]["state"] == "up"
    assert set(overview["unconfigured"]) == {"aurora", "frontier"}
    # the probes' caches: a second decision asks nothing new of the facility APIs
    asked = len(status_server.requests)
    chooser.decide(request)
    assert len(status_server.requests) == asked


def test_chooser_raises_with_table_when_nothing_fits() -> None:
    site = make_deployment("site")
    down = FacilityStatus("site", "x", FacilityState.DOWN, NOW, "offline")
    chooser = FacilityChooser([site], probes={}, clock=lambda: NOW)
    request = JobRequest(dataset="A1", bytes_in=1, frames=1, pixels=1)
    with pytest.raises(NoFacilityAvailable) as info:
        chooser.decide(request, statuses={"site": down})
    assert info.value.table[0]["reasons"][0] == "down: offline"


def test_status_to_dict_is_json_friendly() -> None:
    import json

    outage = Outage(NOW + 60, None, False, "filesystem")
    got = combine(
        "x",
        [
            FacilityStatus(
                "x",
                "globus-compute",
                FacilityState.UP,
                NOW,
                "endpoint online",
                idle_workers=1,
                total_workers=2,
                outstanding_tasks=1,
            ),
            FacilityStatus(
                "x", "iri", FacilityState.DEGRADED, NOW, "polaris: degraded", (outage,)
            ),
        ],
        now=NOW,
    ).to_dict()
    assert json.loads(json.dumps(got)) == got
    assert got["state"] == "degraded"
    assert got["observed_at"] == "2027-01-15T08:00:00+00:00"
    assert got["outages"] == [
        {
            "start": "2027-01-15T08:01:00+00:00",
            "end": None,
            "planned": False,
            "description": "filesystem",
        }
    ]
    assert got["sources"] == ["globus-compute=up", "iri=degraded"]
    assert "iri: degraded (polaris: degraded)" in got["detail"]
