"""flows.globus.timers: a Globus Timer running the batch flow (canned Timers responses)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
import responses
from click.testing import CliRunner
from globus_sdk.testing import load_response
from globus_sdk.transport import RetryConfig

from flows.errors import GlobusPermissionError
from flows.globus.timers import create_batch_timer, schedule_group
from flows.xpcs.schema import FUNCTION_ID_KEYS
from flows.xpcs.validate import FlowInputError
from tests.flows.test_launch_support import (
    MANAGER_GROUP,
    MONITOR_GROUP,
    write_deploy_state,
    write_polaris,
)
from xpcs_kernel.errors import ConfigurationError, UsageError

TIMERS_API = "https://timer.automate.globus.org"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _json(body: object) -> Any:
    assert isinstance(body, str | bytes)
    return json.loads(body)


def timers() -> globus_sdk.TimersClient:
    return globus_sdk.TimersClient(
        authorizer=globus_sdk.AccessTokenAuthorizer("timer-token"),
        retry_config=RetryConfig(max_retries=0),
    )


def batch_input() -> dict[str, Any]:
    """A batch flow input of two datasets (function ids come from the deploy state)."""
    beamline, staging, pub, endpoint, index = (str(uuid.uuid4()) for _ in range(5))
    return {
        "input": {
            "source": {"id": beamline, "path": "/data/2026-3"},
            "batch": {"name": "nightly", "beamline": "8-ID-I"},
            "datasets": [
                {"name": n, "raw_path": f"/data/2026-3/{n}.h5", "qmap_path": "/data/2026-3/q.h5"}
                for n in ("A001", "A002")
            ],
            "staging": {"id": staging, "path": "/eagle/xpcs/staging/nightly"},
            "staging_compute_path": "/eagle/xpcs/staging/nightly",
            "publication": {"id": pub, "path": "/eagle/xpcs/published/nightly"},
            "facility": "polaris",
            "options": {"mode": "multitau"},
            "compute_endpoint": endpoint,
            "user_endpoint_config": {"walltime": "00:30:00", "nodes": 1},
            "search_index": index,
            "visible_to": ["public"],
            "transfer_back": False,
        }
    }


def test_create_sends_a_flow_timer_for_the_batch_flow(
    mock: responses.RequestsMock,
) -> None:
    canned = load_response(
        globus_sdk.TimersClient.create_timer, case="flow_timer_success", requests_mock=mock
    )
    deployed = write_deploy_state("xpcs-batch")
    write_polaris()
    flow_input = batch_input()
    try:
        timer = create_batch_timer(
            flow_input,
            name="nightly XPCS reprocessing",
            interval_s=86400,
            start=datetime(2026, 12, 1, 2, 0, 0),
            stop_after_runs=30,
            client=timers(),
        )
    except FlowInputError as exc:  # the batch schema is the reference: show what differs
        pytest.fail(f"the test's batch input is invalid: {exc}")
    assert timer["job_id"] == canned.metadata["timer_id"]
    (call,) = mock.calls
    assert call.request.url == f"{TIMERS_API}/v2/timer"
    assert call.request.headers["Authorization"] == "Bearer timer-token"
    sent = _json(call.request.body)["timer"]
    assert sent["timer_type"] == "flow"
    assert sent["flow_id"] == deployed["flow_id"]
    assert sent["name"] == "nightly XPCS reprocessing"
    assert sent["schedule"] == {
        "type": "recurring",
        "interval_seconds": 86400,
        "start": "2026-12-01T02:00:00",
        "end": {"condition": "iterations", "iterations": 30},
    }
    body = sent["body"]
    assert body["label"] == "nightly XPCS reprocessing"
    assert body["tags"] == ["timer", "facility:polaris", "engine:globus"]
    assert body["run_monitors"] == [MONITOR_GROUP]
    assert body["run_managers"] == [MANAGER_GROUP]
    sent_input = body["body"]["input"]
    assert sent_input["batch"] == flow_input["input"]["batch"]
    assert sent_input["datasets"] == flow_input["input"]["datasets"]
    assert len(sent_input["plan"]["correlate_tasks"]) == 2  # derived before sending
    for key in FUNCTION_ID_KEYS:
        assert body["body"]["input"][key] == deployed[key]


def test_bad_schedules_and_inputs_send_nothing(mock: responses.RequestsMock) -> None:
    write_deploy_state("xpcs-batch")
    good = batch_input()
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"interval_s": 10}, UsageError),
        ({"name": "x" * 65}, UsageError),
        ({"stop_after_runs": 3, "end": datetime(2027, 1, 1)}, UsageError),
        ({"stop_after_runs": 0}, UsageError),
    ]
    for override, error in cases:
        kwargs: dict[str, Any] = {"name": "n", "interval_s": 3600, "client": timers(), **override}
        with pytest.raises(error):
            create_batch_timer(good, **kwargs)
    bad = json.loads(json.dumps(good))
    bad["input"]["datasets"][1]["name"] = "A001"  # names must be unique
    with pytest.raises(FlowInputError):
        create_batch_timer(bad, name="n", interval_s=3600, client=timers())
    assert len(mock.calls) == 0


def test_an_undeployed_batch_flow_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="deploy --batch"):
        create_batch_timer(batch_input(), name="n", interval_s=3600, client=timers())


def test_a_refused_timer_is_a_permission_error(mock: responses.RequestsMock) -> None:
    write_deploy_state("xpcs-batch")
    mock.add(
        responses.POST,
        f"{TIMERS_API}/v2/timer",
        status=403,
        json={"code": "ConsentRequired", "message": "missing consent for the flow scope"},
    )
    with pytest.raises(GlobusPermissionError, match="missing consent"):
        create_batch_timer(batch_input(), name="n", interval_s=3600, client=timers())


def test_schedule_cli_create_list_delete(mock: responses.RequestsMock, tmp_path: Path) -> None:
    canned = load_response(
        globus_sdk.TimersClient.create_timer, case="flow_timer_success", requests_mock=mock
    )
    listed = load_response(globus_sdk.TimersClient.list_jobs, requests_mock=mock)
    deleted = load_response(globus_sdk.TimersClient.delete_job, requests_mock=mock)
    write_deploy_state("xpcs-batch")
    input_file = tmp_path / "batch.json"
    input_file.write_text(json.dumps(batch_input()))
    runner = CliRunner()
    obj = {"timers_client": timers()}

    result = runner.invoke(
        schedule_group,
        ["create", str(input_file), "--name", "nightly", "--every", "3600", "--json"],
        obj=obj,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["job_id"] == canned.metadata["timer_id"]
    sent = _json(mock.calls[-1].request.body)["timer"]
    assert sent["schedule"]["interval_seconds"] == 3600
    assert "end" not in sent["schedule"]

    result = runner.invoke(schedule_group, ["list", "--json"], obj=obj)
    assert result.exit_code == 0, result.output
    assert [j["job_id"] for j in json.loads(result.output)] == listed.metadata["job_ids"]

    result = runner.invoke(schedule_group, ["delete", deleted.metadata["job_id"]], obj=obj)
    assert result.exit_code == 0, result.output
    assert mock.calls[-1].request.method == "DELETE"

    result = runner.invoke(
        schedule_group, ["create", str(input_file), "--name", "n", "--every", "5"], obj=obj
    )
    assert result.exit_code == 2
    assert "at least 60 s" in result.output
