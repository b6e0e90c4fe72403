"""Globus Compute endpoint status through canned responses (nothing leaves the process)."""

from __future__ import annotations

from collections.abc import Iterator

import globus_sdk
import pytest
import requests
import responses
from globus_sdk.testing import get_last_request, load_response

from deployments.status import ComputeEndpointProbe, FacilityState

BASE = "https://compute.api.globus.org"
ENDPOINT = "6ef2e2a0-1b40-4e6f-8d4f-2a1e6a5a0c11"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """The global ``responses`` mock, which ``globus_sdk.testing`` registers into."""
    responses.start()
    try:
        yield responses.mock
    finally:
        responses.stop()
        responses.reset()


def probe(endpoint: str = ENDPOINT) -> ComputeEndpointProbe:
    return ComputeEndpointProbe(
        "polaris",
        endpoint_id=endpoint,
        base_url=BASE,
        authorizer=globus_sdk.AccessTokenAuthorizer("TOKEN-123"),
        clock=lambda: 1000.0,
    )


def test_canned_online_answer_with_sdk_fixture(mocked: responses.RequestsMock) -> None:
    meta = load_response(globus_sdk.ComputeClientV2.get_endpoint_status).metadata
    got = probe(meta["endpoint_id"]).status()
    assert got.state is FacilityState.UP
    assert (got.total_workers, got.idle_workers, got.outstanding_tasks) == (1, 0, 0)
    sent = get_last_request()
    assert sent is not None
    assert sent.method == "GET"
    assert sent.url == f"{BASE}/v2/endpoints/{meta['endpoint_id']}/status"
    assert sent.headers["Authorization"] == "Bearer TOKEN-123"


def test_offline_is_down(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{BASE}/v2/endpoints/{ENDPOINT}/status",
        json={"status": "offline", "details": {"total_workers": 0, "idle_workers": 0}},
    )
    got = probe().status()
    assert got.state is FacilityState.DOWN
    assert got.detail == "endpoint offline"
    assert got.total_workers == 0


def test_online_with_workers_and_backlog(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{BASE}/v2/endpoints/{ENDPOINT}/status",
        json={
            "status": "online",
            "details": {
                "total_workers": 8,
                "idle_workers": 3,
                "pending_tasks": 0,
                "outstanding_tasks": 5,
                "managers": 2,
            },
        },
    )
    got = probe().status()
    assert got.state is FacilityState.UP
    assert (got.total_workers, got.idle_workers, got.outstanding_tasks) == (8, 3, 5)


def test_template_endpoint_without_details(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v2/endpoints/{ENDPOINT}/status", json={"status": "online"})
    got = probe().status()
    assert got.state is FacilityState.UP
    assert got.total_workers is None


@pytest.mark.parametrize("http_status", [401, 403, 404, 500, 503])
def test_api_errors_are_unknown_without_retries(
    mocked: responses.RequestsMock, http_status: int
) -> None:
    route = mocked.get(
        f"{BASE}/v2/endpoints/{ENDPOINT}/status",
        json={"code": "ERR", "message": "no"},
        status=http_status,
    )
    got = probe().status()
    assert got.state is FacilityState.UNKNOWN
    assert f"HTTP {http_status}" in got.detail
    assert route.call_count == 1  # no retry loop inside a status probe


@pytest.mark.parametrize(
    "payload",
    [
        {"details": {}},
        {"status": "online", "details": {"idle_workers": -1}},
        {"status": "online", "details": "busy"},
        ["online"],
    ],
)
def test_malformed_answers_are_unknown(mocked: responses.RequestsMock, payload: object) -> None:
    mocked.get(f"{BASE}/v2/endpoints/{ENDPOINT}/status", json=payload)
    assert probe().status().state is FacilityState.UNKNOWN


def test_unknown_status_word_is_unknown(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{BASE}/v2/endpoints/{ENDPOINT}/status", json={"status": "locked"})
    assert probe().status().state is FacilityState.UNKNOWN


def test_network_error_is_unknown(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{BASE}/v2/endpoints/{ENDPOINT}/status",
        body=requests.exceptions.ConnectionError("connection refused"),
    )
    got = probe().status()
    assert got.state is FacilityState.UNKNOWN
    assert "unreachable" in got.detail
