"""flows.launch.api on Globus Flows (canned responses): the run_flow payload the web app shows,
reattaching, cancel, timeouts and service errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import jsonschema  # type: ignore[import-untyped]
import pytest
import responses
from globus_sdk.testing import load_response
from globus_sdk.transport import RetryConfig

from deployments import RunHistory
from flows.errors import (
    GlobusPermissionError,
    GlobusRunNotFound,
    GlobusServiceError,
    RunWaitTimeout,
)
from flows.launch.api import launch
from flows.runs.handle import Run
from flows.runs.index import RunIndex
from flows.xpcs.definition import xpcs_flow
from tests.flows.test_launch_support import (
    MANAGER_GROUP,
    MONITOR_GROUP,
    make_dataset,
    write_deploy_state,
    write_polaris,
)
from xpcs_kernel.errors import ConfigurationError

FLOWS_API = "https://flows.automate.globus.org"
NO_RETRY = RetryConfig(max_retries=0)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Globus clients with fixed tokens and no retries instead of the logged-in user's."""

    def run_client(flow_id: str) -> globus_sdk.SpecificFlowClient:
        return globus_sdk.SpecificFlowClient(
            flow_id,
            authorizer=globus_sdk.AccessTokenAuthorizer("run-token"),
            retry_config=NO_RETRY,
        )

    def flows_client() -> globus_sdk.FlowsClient:
        return globus_sdk.FlowsClient(
            authorizer=globus_sdk.AccessTokenAuthorizer("flows-token"), retry_config=NO_RETRY
        )

    monkeypatch.setattr("flows.launch.engines.globus_run_client", run_client)
    monkeypatch.setattr("flows.runs.handle.globus_flows_client", flows_client)


def _sent(call: Any) -> Any:
    return json.loads(call.request.body)


def _run_doc(run_id: str, status: str, **details: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "action_id": run_id,
        "flow_id": str(uuid.uuid4()),
        "status": status,
        "display_status": status,
        "label": "A001 @ polaris",
        "tags": ["facility:polaris"],
        "start_time": "2026-11-25T10:00:00.000000+00:00",
        "completion_time": None if status == "ACTIVE" else "2026-11-25T10:02:30.000000+00:00",
        "details": details,
    }


@pytest.mark.usefixtures("clients")
def test_globus_launch_payload_label_tags_monitors_managers_and_input(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    canned = load_response(globus_sdk.SpecificFlowClient.run_flow, requests_mock=mock)
    flow_id = canned.metadata["flow_id"]
    ids = write_polaris()
    deployed = write_deploy_state(flow_id=flow_id)
    raw, qmap = make_dataset(tmp_path / "beamline")
    db = tmp_path / "state.db"

    run = launch(
        raw,
        qmap,
        facility="polaris",
        engine="globus",
        tags=["sample:gel"],
        db_path=db,
        options={"mode": "both", "stride": 2},
    )

    assert run.run_id == json.loads(str(mock.registered()[0].body))["run_id"]
    (call,) = mock.calls
    assert call.request.url == f"{FLOWS_API}/flows/{flow_id}/run"
    sent = _sent(call)
    assert sent["label"] == "A001 @ polaris"
    assert sent["tags"] == ["facility:polaris", "engine:globus", "sample:gel"]
    assert sent["run_monitors"] == [MONITOR_GROUP]
    assert sent["run_managers"] == [MANAGER_GROUP]
    body = sent["body"]["input"]
    assert body["raw"] == {"id": ids["source"], "path": str(raw)}
    assert body["qmap_path"] == str(qmap)
    assert body["staging"] == {"id": ids["staging"], "path": "/eagle/xpcs/staging/A001"}
    assert body["staging_compute_path"] == "/eagle/xpcs/staging/A001"
    assert body["publication"] == {"id": ids["pub"], "path": "/eagle/xpcs/published/A001"}
    assert body["compute_endpoint"] == ids["endpoint"]
    assert body["search_index"] == ids["index"]
    assert body["facility"] == "polaris"
    assert body["options"]["mode"] == "both"
    assert body["options"]["stride"] == 2
    assert body["user_endpoint_config"]["account"] == "XPCS_test"
    for key in ("xpcs_correlate_function_id", "xpcs_plots_function_id"):
        assert body[key] == deployed[key]
    # the payload is what the deployed start form accepts
    jsonschema.Draft7Validator(xpcs_flow().input_schema).validate(sent["body"])

    entry = RunIndex(db).get(run.run_id)
    assert entry is not None
    assert (entry.engine, entry.flow_id, entry.facility) == ("globus", flow_id, "polaris")
    with RunHistory(db) as history:
        (row,) = history.runs(dataset="A001")
        assert (row.run_id, row.facility, row.outcome) == (run.run_id, "polaris", "running")


@pytest.mark.usefixtures("clients")
def test_long_dataset_names_are_cut_to_64_characters_keeping_the_facility(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    canned = load_response(globus_sdk.SpecificFlowClient.run_flow, requests_mock=mock)
    write_polaris(monitors=False)
    write_deploy_state(flow_id=canned.metadata["flow_id"])
    name = "sample_" + "x" * 48 + "_0042"  # 60 characters: the longest names allowed
    raw, qmap = make_dataset(tmp_path / "beamline", name=name)
    launch(raw, qmap, facility="polaris", engine="globus", db_path=tmp_path / "s.db")
    sent = _sent(mock.calls[-1])
    assert len(sent["label"]) == 64
    assert sent["label"].endswith("x_0042 @ polaris")
    assert "run_monitors" not in sent
    assert "run_managers" not in sent
    launch(
        raw, qmap, facility="polaris", engine="globus", db_path=tmp_path / "s2.db", label="L" * 80
    )
    assert _sent(mock.calls[-1])["label"] == "L" * 64  # a user's label is cut too


@pytest.mark.usefixtures("clients")
def test_reattach_outputs_logs_and_history_from_the_service(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    canned = load_response(globus_sdk.SpecificFlowClient.run_flow, requests_mock=mock)
    write_polaris()
    write_deploy_state(flow_id=canned.metadata["flow_id"])
    raw, qmap = make_dataset(tmp_path / "beamline")
    db = tmp_path / "state.db"
    run_id = launch(raw, qmap, facility="polaris", engine="globus", db_path=db).run_id

    result = {
        "result": "/eagle/xpcs/staging/A001/results/A001_results.hdf",
        "plots": ["/eagle/xpcs/staging/A001/results/plots/A001_g2.png"],
        "subject": "globus://src/data/A001.h5",
        "n_files": 3,
        "published_to": {"id": "p", "path": "/eagle/xpcs/published/A001"},
    }
    doc = _run_doc(run_id, "SUCCEEDED", code="FlowSucceeded", output={"Result": result})
    mock.add(responses.GET, f"{FLOWS_API}/runs/{run_id}", json=doc)
    entries = [{"code": "FlowStarted", "time": "t0"}, {"code": "FlowSucceeded", "time": "t1"}]
    mock.add(responses.GET, f"{FLOWS_API}/runs/{run_id}/log", json={"entries": entries})

    again = Run.from_id(run_id, db_path=db)
    assert (again.engine, again.facility) == ("globus", "polaris")
    assert again.wait(progress=False, timeout=5).status() == "SUCCEEDED"
    out = again.outputs
    assert str(out.result_path) == result["result"]
    assert [str(p) for p in out.plot_paths] == result["plots"]
    assert out.catalog_subject == result["subject"]
    assert [e["code"] for e in again.logs()] == ["FlowStarted", "FlowSucceeded"]
    info = again.to_dict()
    assert info["duration_s"] == pytest.approx(150.0)
    with RunHistory(db) as history:
        (row,) = history.runs(dataset="A001")
        assert row.outcome == "succeeded"
        assert history.publication(again.entry.publication_key) == (run_id, "polaris")


@pytest.mark.usefixtures("clients")
def test_cancel_and_wait_timeout_on_globus(mock: responses.RequestsMock, tmp_path: Path) -> None:
    run_id = str(uuid.uuid4())
    mock.add(responses.GET, f"{FLOWS_API}/runs/{run_id}", json=_run_doc(run_id, "ACTIVE"))
    run = Run.from_id(run_id, db_path=tmp_path / "s.db", engine="globus")
    run.poll_interval = 0.01
    with pytest.raises(RunWaitTimeout) as caught:
        run.wait(progress=False, timeout=0.05)
    assert caught.value.run_id == run_id

    ended = _run_doc(run_id, "ENDED", code="FlowCanceled", description="canceled by user")
    mock.add(responses.POST, f"{FLOWS_API}/runs/{run_id}/cancel", json=ended)
    run.cancel()
    assert str(mock.calls[-1].request.url).endswith(f"/runs/{run_id}/cancel")
    mock.replace(responses.GET, f"{FLOWS_API}/runs/{run_id}", json=ended)
    assert run.status() == "FAILED"  # ENDED (canceled) reads as FAILED
    assert run.to_dict()["engine_status"] == "ENDED"
    assert run.failure is not None
    assert run.failure["code"] == "FlowCanceled"


@pytest.mark.usefixtures("clients")
@pytest.mark.parametrize(
    ("status", "error"),
    [(404, GlobusRunNotFound), (403, GlobusPermissionError), (500, GlobusServiceError)],
)
def test_service_errors_on_reads_are_clear(
    mock: responses.RequestsMock, tmp_path: Path, status: int, error: type[Exception]
) -> None:
    run_id = str(uuid.uuid4())
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs/{run_id}",
        status=status,
        json={"code": "Boom", "message": f"canned {status}", "request_id": "req-1"},
    )
    run = Run.from_id(run_id, db_path=tmp_path / "s.db", engine="globus")
    with pytest.raises(error) as caught:
        run.status()
    text = str(caught.value)
    assert run_id in text or f"canned {status}" in text
    if status == 404:
        assert "not visible" in text or "no Globus flow run" in text


@pytest.mark.usefixtures("clients")
def test_a_refused_start_records_nothing(mock: responses.RequestsMock, tmp_path: Path) -> None:
    flow_id = str(uuid.uuid4())
    write_polaris()
    write_deploy_state(flow_id=flow_id)
    mock.add(
        responses.POST,
        f"{FLOWS_API}/flows/{flow_id}/run",
        status=403,
        json={"code": "FORBIDDEN", "message": "not allowed to run this flow"},
    )
    raw, qmap = make_dataset(tmp_path / "beamline")
    db = tmp_path / "state.db"
    with pytest.raises(GlobusPermissionError, match="xpcs-flows login"):
        launch(raw, qmap, facility="polaris", engine="globus", db_path=db)
    assert RunIndex(db).recent() == []


def test_globus_launch_needs_a_deployed_flow(tmp_path: Path) -> None:
    write_polaris()
    raw, qmap = make_dataset(tmp_path / "beamline")
    with pytest.raises(ConfigurationError, match="xpcs-flows deploy"):
        launch(raw, qmap, facility="polaris", engine="globus", db_path=tmp_path / "s.db")


def test_flow_metadata_and_start_form_for_the_web_app() -> None:
    spec = xpcs_flow()
    assert spec.title == "XPCS correlation"
    assert "one XPCS dataset" in spec.subtitle
    assert "$.Failure" in spec.description
    assert "Globus Search" in spec.description
    assert {"XPCS", "correlation", "HPC"} <= set(spec.keywords)
    form = spec.input_schema["properties"]["input"]
    assert form["properties"]["raw"]["format"] == "globus-collection"
    assert form["properties"]["options"]["properties"]["mode"]["enum"] == [
        "multitau",
        "twotime",
        "both",
    ]
    assert {"raw", "qmap_path", "staging", "publication", "facility"} <= set(form["required"])
    kwargs = spec.deploy_kwargs()
    assert kwargs["keywords"] == list(spec.keywords)
    assert kwargs["input_schema"] == spec.input_schema
