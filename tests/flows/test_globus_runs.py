"""flows.globus.runs: run_flow payloads, labels, principals, reads, cancel, error mapping,
finding a run by tag."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import globus_sdk
import pytest
import responses
from globus_sdk.testing import load_response
from globus_sdk.transport import RetryConfig
from responses import matchers

from flows.errors import (
    FlowNotFound,
    GlobusPermissionError,
    GlobusRunNotFound,
    GlobusServiceError,
    RunNotFound,
    RunWaitTimeout,
)
from flows.globus.runs import (
    LABEL_MAX,
    GlobusRun,
    RunTagLookupError,
    cancel_globus_run,
    find_globus_run_by_tag,
    get_globus_run,
    get_globus_run_logs,
    map_globus_error,
    run_body,
    run_label,
    start_globus_run,
    wait_globus_run,
)
from xpcs_kernel.errors import UsageError

FLOWS_API = "https://flows.automate.globus.org"
NO_RETRY = RetryConfig(max_retries=0)
MONITOR = f"urn:globus:groups:id:{uuid.uuid4()}"
MANAGER = f"urn:globus:auth:identity:{uuid.uuid4()}"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def flows_client() -> globus_sdk.FlowsClient:
    return globus_sdk.FlowsClient(
        authorizer=globus_sdk.AccessTokenAuthorizer("flows-token"), retry_config=NO_RETRY
    )


def flow_client(flow_id: str) -> globus_sdk.SpecificFlowClient:
    return globus_sdk.SpecificFlowClient(
        flow_id, authorizer=globus_sdk.AccessTokenAuthorizer("run-token"), retry_config=NO_RETRY
    )


def sent_json(mock: responses.RequestsMock) -> Any:
    return json.loads(mock.calls[-1].request.body)  # type: ignore[arg-type]


def test_run_label_keeps_the_facility_and_the_end_of_the_dataset() -> None:
    assert run_label("A001_sample", "polaris") == "A001_sample @ polaris"
    long = "sample_" + "x" * 80 + "_0042"
    label = run_label(long, "perlmutter")
    assert len(label) == LABEL_MAX
    assert label.endswith("x_0042 @ perlmutter")
    assert label.startswith("…")
    assert len(run_label("d", "f" * 100)) == LABEL_MAX


def test_start_run_sends_body_label_tags_monitors_managers(mock: responses.RequestsMock) -> None:
    canned = load_response(globus_sdk.SpecificFlowClient.run_flow, requests_mock=mock)
    flow_id = canned.metadata["flow_id"]
    body = {"input": {"raw": {"id": "c1", "path": "/data/A001.h5"}, "mode": "multitau"}}
    run_id = start_globus_run(
        flow_id,
        body,
        label=run_label("A001", "polaris"),
        tags=["xpcs", " 8-ID-I "],
        run_monitors=[MONITOR],
        run_managers=[MANAGER],
        client=flow_client(flow_id),
    )
    assert run_id == canned.json["run_id"]
    request = mock.calls[-1].request
    assert request.url == f"{FLOWS_API}/flows/{flow_id}/run"
    assert request.headers["Authorization"] == "Bearer run-token"
    assert sent_json(mock) == {
        "body": body,
        "label": "A001 @ polaris",
        "tags": ["xpcs", "8-ID-I"],
        "run_monitors": [MONITOR],
        "run_managers": [MANAGER],
    }


def test_start_run_without_principals_omits_them(mock: responses.RequestsMock) -> None:
    canned = load_response(globus_sdk.SpecificFlowClient.run_flow, requests_mock=mock)
    flow_id = canned.metadata["flow_id"]
    start_globus_run(flow_id, {"input": {}}, label="x @ local", client=flow_client(flow_id))
    sent = sent_json(mock)
    assert "run_monitors" not in sent
    assert "run_managers" not in sent
    assert sent["tags"] == []


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"label": ""}, "label"),
        ({"label": "x" * 65}, "label"),
        ({"label": "ok", "tags": ["  "]}, "tags"),
        ({"label": "ok", "run_monitors": [str(uuid.uuid4())]}, "run_monitors"),
        ({"label": "ok", "run_managers": ["someone@anl.gov"]}, "run_managers"),
    ],
)
def test_bad_run_arguments_are_refused_before_sending(
    mock: responses.RequestsMock, kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(UsageError) as info:
        start_globus_run(str(uuid.uuid4()), {"input": {}}, client=flow_client("f"), **kwargs)
    assert info.value.argument == argument
    assert len(mock.calls) == 0


def test_start_run_needs_an_app_or_a_client() -> None:
    with pytest.raises(UsageError, match="GlobusApp"):
        start_globus_run(str(uuid.uuid4()), {"input": {}}, label="x")


def test_start_run_through_an_app(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    flow_scope = str(globus_sdk.SpecificFlowClient(flow_id).scopes.user)
    mock.add(
        responses.POST,
        "https://auth.globus.org/v2/oauth2/token",
        json={
            "resource_server": flow_id,
            "scope": flow_scope,
            "access_token": "flow-run-token",
            "expires_in": 3600,
            "token_type": "Bearer",
            "other_tokens": [],
        },
    )
    mock.add(responses.POST, f"{FLOWS_API}/flows/{flow_id}/run", json={"run_id": "r-1"})
    app = globus_sdk.ClientApp(
        "test",
        client_id=str(uuid.uuid4()),
        client_secret="s",
        config=globus_sdk.GlobusAppConfig(token_storage="memory"),
    )
    assert start_globus_run(flow_id, {"input": {}}, label="x @ y", app=app) == "r-1"
    token_request = parse_qs(mock.calls[0].request.body)  # type: ignore[arg-type]
    assert token_request["scope"] == [flow_scope]
    assert mock.calls[-1].request.headers["Authorization"] == "Bearer flow-run-token"


def test_get_run_returns_the_service_document(mock: responses.RequestsMock) -> None:
    canned = load_response(globus_sdk.FlowsClient.get_run, requests_mock=mock)
    doc = json.loads(mock.registered()[0].body)  # type: ignore[attr-defined]
    run = get_globus_run(canned.metadata["run_id"], client=flows_client())
    assert isinstance(run, GlobusRun)
    assert run.run_id == canned.metadata["run_id"]
    assert run.flow_id == doc["flow_id"]
    assert run.status == doc["status"]
    assert run.tags == tuple(doc["tags"])
    assert run.is_final is (doc["status"] in ("SUCCEEDED", "FAILED", "ENDED"))
    assert run.to_dict()["label"] == doc["label"]


def test_get_run_logs_asks_for_the_limit(mock: responses.RequestsMock) -> None:
    run_id = str(uuid.uuid4())
    entries = [{"code": "FlowStarted", "time": "t0"}, {"code": "ActionStarted", "time": "t1"}]
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs/{run_id}/log",
        json={"entries": entries, "limit": 50, "has_next_page": False},
    )
    assert get_globus_run_logs(run_id, limit=50, client=flows_client()) == entries
    assert "limit=50" in mock.calls[-1].request.url  # type: ignore[operator]
    with pytest.raises(UsageError):
        get_globus_run_logs(run_id, limit=0, client=flows_client())


def test_cancel_run(mock: responses.RequestsMock) -> None:
    canned = load_response(globus_sdk.FlowsClient.cancel_run, requests_mock=mock)
    run = cancel_globus_run(canned.metadata["run_id"], client=flows_client())
    assert mock.calls[-1].request.method == "POST"
    assert mock.calls[-1].request.url.endswith(f"/runs/{run.run_id}/cancel")  # type: ignore[union-attr]
    assert run.status == "FAILED"
    assert run.details["code"] == "FlowCanceled"


def test_404_on_a_run_is_run_not_found(mock: responses.RequestsMock) -> None:
    run_id = str(uuid.uuid4())
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs/{run_id}",
        status=404,
        json={"error": {"code": "NOT_FOUND", "detail": "No such run"}},
        headers={"X-Request-Id": "req-1"},
    )
    with pytest.raises(GlobusRunNotFound) as info:
        get_globus_run(run_id, client=flows_client())
    assert isinstance(info.value, RunNotFound)
    assert info.value.run_id == run_id
    assert "no Globus flow run" in str(info.value)


@pytest.mark.parametrize(
    ("status", "code", "error_type", "text"),
    [
        (403, "FORBIDDEN", GlobusPermissionError, "xpcs-flows login"),
        (401, "UNAUTHORIZED", GlobusPermissionError, "refused (401"),
        (500, "INTERNAL_ERROR", GlobusServiceError, "answered 500"),
    ],
)
def test_api_errors_become_our_errors(
    mock: responses.RequestsMock,
    status: int,
    code: str,
    error_type: type[Exception],
    text: str,
) -> None:
    flow_id = str(uuid.uuid4())
    mock.add(
        responses.POST,
        f"{FLOWS_API}/flows/{flow_id}/run",
        status=status,
        json={"error": {"code": code, "detail": "the detail"}},
    )
    with pytest.raises(error_type) as info:
        start_globus_run(flow_id, {"input": {}}, label="x", client=flow_client(flow_id))
    err = info.value
    assert isinstance(err, GlobusServiceError)
    assert (err.http_status, err.code, err.flow_id, err.operation) == (
        status,
        code,
        flow_id,
        "run_flow",
    )
    assert text in str(err)
    assert "the detail" in str(err)
    assert err.to_dict()["http_status"] == status


def test_404_on_a_flow_is_flow_not_found() -> None:
    exc = globus_sdk.GlobusAPIError(_response(404, {"error": {"code": "NOT_FOUND"}}))
    err = map_globus_error(exc, operation="update_flow", flow_id="f-1")
    assert isinstance(err, FlowNotFound)
    assert isinstance(err, LookupError)
    assert err.flow_id == "f-1"


def test_network_errors_are_service_errors() -> None:
    exc = globus_sdk.NetworkError("connection refused", ConnectionError("refused"))
    err = map_globus_error(exc, operation="get_run", run_id="r")
    assert isinstance(err, GlobusServiceError)
    assert err.http_status is None
    assert "could not be reached" in str(err)


def _response(status: int, body: dict[str, Any]) -> Any:
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    response.request = requests.Request("PUT", f"{FLOWS_API}/flows/f-1").prepare()
    return response


def test_run_body_adds_the_deployed_function_ids() -> None:
    ids = {"xpcs_correlate_function_id": "fn-1", "xpcs_plots_function_id": "fn-2"}
    body = run_body({"mode": "multitau", "xpcs_plots_function_id": "fn-2"}, function_ids=ids)
    assert body == {"input": {"mode": "multitau", **ids}}
    with pytest.raises(UsageError) as info:
        run_body({"xpcs_correlate_function_id": "other"}, function_ids=ids)
    assert info.value.argument == "xpcs_correlate_function_id"


def _status_doc(run_id: str, status: str) -> dict[str, Any]:
    return {"run_id": run_id, "flow_id": "f", "status": status, "label": "x", "tags": []}


def test_wait_polls_until_the_run_ends(mock: responses.RequestsMock) -> None:
    run_id = str(uuid.uuid4())
    url = f"{FLOWS_API}/runs/{run_id}"
    for status in ("ACTIVE", "INACTIVE", "SUCCEEDED"):
        mock.add(responses.GET, url, json=_status_doc(run_id, status))
    slept: list[float] = []
    run = wait_globus_run(
        run_id, timeout=3600, interval=30, client=flows_client(), sleep=slept.append
    )
    assert run.status == "SUCCEEDED"
    assert slept == [30, 30]
    assert len(mock.calls) == 3


def test_wait_gives_up_after_the_timeout(mock: responses.RequestsMock) -> None:
    run_id = str(uuid.uuid4())
    mock.add(responses.GET, f"{FLOWS_API}/runs/{run_id}", json=_status_doc(run_id, "ACTIVE"))
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(RunWaitTimeout) as info:
        wait_globus_run(
            run_id,
            timeout=50,
            interval=20,
            client=flows_client(),
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert info.value.run_id == run_id
    assert now[0] == 50


# -- find_globus_run_by_tag -------------------------------------------------------------------
LAUNCHED_AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TAG = "xpcs-watch:0123abcd"


def _run(n: int, minutes: float, tags: Sequence[str] = ("facility:polaris",)) -> dict[str, Any]:
    """A run document: run ``n`` started ``minutes`` after LAUNCHED_AT."""
    run_id = str(uuid.UUID(int=n))
    return {
        "run_id": run_id,
        "action_id": run_id,
        "flow_id": "f",
        "status": "ACTIVE",
        "label": f"run {n}",
        "tags": list(tags),
        "start_time": (LAUNCHED_AT + timedelta(minutes=minutes)).isoformat(),
        "completion_time": None,
    }


def _list_runs(
    mock: responses.RequestsMock,
    flow_id: str,
    pages: Sequence[Sequence[dict[str, Any]]],
) -> None:
    """Answer ``GET /runs`` with ``pages`` (page i+1 only for the marker of page i)."""
    query = {"filter_flow_id": flow_id, "filter_roles": "run_owner", "orderby": "start_time DESC"}
    for i, runs in enumerate(pages):
        last = i == len(pages) - 1
        mock.add(
            responses.GET,
            f"{FLOWS_API}/runs",
            json={
                "runs": list(runs),
                "limit": 2,
                "has_next_page": not last,
                "marker": None if last else f"m{i + 1}",
            },
            match=[matchers.query_param_matcher({**query, **({"marker": f"m{i}"} if i else {})})],
        )


def _queries(mock: responses.RequestsMock) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(str(call.request.url)).query) for call in mock.calls]


def test_find_by_tag_finds_the_run_on_page_two(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    _list_runs(
        mock,
        flow_id,
        [
            [_run(4, 30), _run(3, 20, ["facility:polaris", "xpcs-watch:other"])],
            [_run(2, 10, ["facility:polaris", TAG]), _run(1, 5)],
            [_run(0, -60)],
        ],
    )
    run = find_globus_run_by_tag(flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client())
    assert run is not None
    assert run.run_id == str(uuid.UUID(int=2))
    assert run.tags == ("facility:polaris", TAG)
    base = {
        "filter_flow_id": [flow_id],
        "filter_roles": ["run_owner"],
        "orderby": ["start_time DESC"],
    }
    # page 3 is read too (a second run with the tag would be an error), then the scan stops
    assert _queries(mock) == [base, {**base, "marker": ["m1"]}, {**base, "marker": ["m2"]}]
    assert all(c.request.headers["Authorization"] == "Bearer flows-token" for c in mock.calls)


def test_find_by_tag_stops_at_runs_older_than_the_bound(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    _list_runs(mock, flow_id, [[_run(3, 2), _run(2, -1), _run(1, -5)], [_run(0, -90, [TAG])]])
    # a naive time is UTC
    bound = LAUNCHED_AT.replace(tzinfo=None)
    assert find_globus_run_by_tag(flow_id, TAG, started_after=bound, client=flows_client()) is None
    assert len(mock.calls) == 1  # page 2 (older runs only) is never asked for


def test_find_by_tag_reads_to_the_last_page(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    _list_runs(mock, flow_id, [[_run(3, 3)], [_run(2, 2), _run(1, 1)], []])
    assert (
        find_globus_run_by_tag(flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client())
        is None
    )
    assert len(mock.calls) == 3


def test_find_by_tag_refuses_two_runs_with_the_tag(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    _list_runs(mock, flow_id, [[_run(2, 2, [TAG])], [_run(1, 1, [TAG, "x"]), _run(0, -20)]])
    with pytest.raises(RunTagLookupError) as info:
        find_globus_run_by_tag(flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client())
    ids = (str(uuid.UUID(int=2)), str(uuid.UUID(int=1)))
    assert info.value.run_ids == ids
    assert info.value.tag == TAG
    assert all(run_id in str(info.value) for run_id in ids)


def test_find_by_tag_reads_at_most_max_pages(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    pages = [[_run(n, n)] for n in range(9, 3, -1)]
    _list_runs(mock, flow_id, pages)
    with pytest.raises(RunTagLookupError, match="older runs were not read") as info:
        find_globus_run_by_tag(
            flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client(), max_pages=3
        )
    assert info.value.run_ids == ()
    assert len(mock.calls) == 3
    # a run found in the pages read is the run, even if older pages were not read
    pages[1] = [_run(8, 8, [TAG])]
    mock.reset()  # forgets the answers and the calls
    _list_runs(mock, flow_id, pages)
    run = find_globus_run_by_tag(
        flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client(), max_pages=3
    )
    assert run is not None
    assert run.run_id == str(uuid.UUID(int=8))
    assert len(mock.calls) == 3


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(403, GlobusPermissionError), (401, GlobusPermissionError), (503, GlobusServiceError)],
)
def test_find_by_tag_maps_service_errors(
    mock: responses.RequestsMock, status: int, error_type: type[GlobusServiceError]
) -> None:
    flow_id = str(uuid.uuid4())
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs",
        status=status,
        json={"error": {"code": "X", "detail": "nope"}},
    )
    with pytest.raises(error_type) as info:
        find_globus_run_by_tag(flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client())
    assert (info.value.operation, info.value.http_status, info.value.flow_id) == (
        "list_runs",
        status,
        flow_id,
    )


def test_find_by_tag_maps_errors_on_a_later_page(mock: responses.RequestsMock) -> None:
    flow_id = str(uuid.uuid4())
    page = {"runs": [_run(2, 2)], "has_next_page": True, "marker": "m1"}
    mock.add(responses.GET, f"{FLOWS_API}/runs", json=page)  # answered first, then the 500
    mock.add(responses.GET, f"{FLOWS_API}/runs", status=500, json={"error": {"code": "E"}})
    with pytest.raises(GlobusServiceError) as info:
        find_globus_run_by_tag(flow_id, TAG, started_after=LAUNCHED_AT, client=flows_client())
    assert info.value.http_status == 500
    assert "m1" in str(mock.calls[1].request.url)
