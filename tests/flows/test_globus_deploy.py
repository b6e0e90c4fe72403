"""flows.globus.deploy: register functions, create/update the flow only when something changed."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import globus_sdk
import pytest
import responses
from globus_compute_sdk import Client
from globus_compute_sdk.serialize import ComputeSerializer, DillCodeSource
from globus_sdk.transport import RetryConfig

from flows.errors import FlowDefinitionError, GlobusPermissionError
from flows.globus.deploy import (
    DeployRecord,
    default_state_path,
    deploy,
    deployed_flow,
    function_checksum,
)
from tools.action_urls import COMPUTE_V3_URL
from xpcs_kernel.errors import ConfigurationError, UsageError

FLOWS_API = "https://flows.automate.globus.org"
COMPUTE_API = "https://compute.api.globus.org"
RUN_MANAGERS = (f"urn:globus:groups:id:{uuid.uuid4()}",)
NO_RETRY = RetryConfig(max_retries=0)


def xpcs_correlate(**data: Any) -> dict[str, Any]:
    """Stand-in correlation function."""
    import os

    return {"result": os.path.basename(data["raw"])}


def xpcs_plots(**data: Any) -> list[str]:
    """Stand-in plotting function."""
    return [data["result"] + ".png"]


def xpcs_plots_v2(**data: Any) -> list[str]:
    """Stand-in plotting function, changed."""
    return [data["result"] + ".svg"]


def _definition() -> dict[str, Any]:
    return {
        "StartAt": "Correlate",
        "States": {
            "Correlate": {
                "Type": "Action",
                "ActionUrl": COMPUTE_V3_URL,
                "Parameters": {
                    "endpoint_id.$": "$.input.compute_endpoint",
                    "tasks": [
                        {
                            "function_id.$": "$.input.xpcs_correlate_function_id",
                            "kwargs.$": "$.input",
                        }
                    ],
                },
                "ResultPath": "$.Correlate",
                "WaitTime": 604800,
                "End": True,
            }
        },
    }


@dataclass(frozen=True)
class StandInSpec:
    """The FlowSpec interface of flows.xpcs.definition, built here."""

    title: str
    subtitle: str
    description: str
    keywords: tuple[str, ...]
    definition: dict[str, Any]
    input_schema: dict[str, Any]
    compute_functions: Mapping[str, Callable[..., Any]]


def make_spec(**changes: Any) -> StandInSpec:
    spec = StandInSpec(
        title="XPCS correlation",
        subtitle="Transfer, correlate, plot, publish",
        description="One dataset from the beamline to published g2.",
        keywords=("XPCS", "correlation"),
        definition=_definition(),
        input_schema={
            "type": "object",
            "required": ["input"],
            "properties": {"input": {"type": "object", "title": "Input"}},
        },
        compute_functions={
            "xpcs_correlate_function_id": xpcs_correlate,
            "xpcs_plots_function_id": xpcs_plots,
        },
    )
    return replace(spec, **changes)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def clients() -> dict[str, Any]:
    token = globus_sdk.AccessTokenAuthorizer
    return {
        "flows_client": globus_sdk.FlowsClient(authorizer=token("flows"), retry_config=NO_RETRY),
        "compute_client": Client(
            do_version_check=False,
            authorizer=token("compute"),
            code_serialization_strategy=DillCodeSource(),
        ),
    }


def add_compute(mock: responses.RequestsMock, *ids: str) -> None:
    for fid in ids:
        mock.add(responses.POST, f"{COMPUTE_API}/v3/functions", json={"function_uuid": fid})


def body(call: Any) -> Any:
    return json.loads(call.request.body)


def test_first_deploy_registers_functions_and_creates_the_flow(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    flow_id = str(uuid.uuid4())
    add_compute(mock, "fn-correlate", "fn-plots")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": flow_id})
    spec = make_spec()
    record = deploy(spec, state_path=state, run_managers=RUN_MANAGERS, **clients)

    registrations = [body(c) for c in mock.calls if c.request.url.endswith("/v3/functions")]
    assert [r["function_name"] for r in registrations] == ["xpcs_correlate", "xpcs_plots"]
    serialized = ComputeSerializer(strategy_code=DillCodeSource()).serialize(xpcs_correlate)
    assert registrations[0]["function_code"].endswith(serialized)  # packed as uploaded
    checksums = {f.key: f.checksum for f in record.functions}
    assert (
        hashlib.sha256(serialized.encode()).hexdigest() == checksums["xpcs_correlate_function_id"]
    )
    assert mock.calls[0].request.headers["Authorization"] == "Bearer compute"

    create = mock.calls[-1]
    assert create.request.method == "POST"
    assert create.request.headers["Authorization"] == "Bearer flows"
    assert body(create) == {
        "title": spec.title,
        "subtitle": spec.subtitle,
        "description": spec.description,
        "keywords": ["XPCS", "correlation"],
        "definition": spec.definition,
        "input_schema": spec.input_schema,
        "run_managers": list(RUN_MANAGERS),
    }
    assert isinstance(record, DeployRecord)
    assert record.flow_id == flow_id
    assert record.flow_action == "created"
    assert record.changed
    assert record.function_ids == {
        "xpcs_correlate_function_id": "fn-correlate",
        "xpcs_plots_function_id": "fn-plots",
    }
    assert record.flow_scope == str(globus_sdk.SpecificFlowClient(flow_id).scopes.user)
    saved = json.loads(state.read_text())
    assert saved["flows"]["xpcs"]["flow_id"] == flow_id
    assert saved["flows"]["xpcs"]["checksum"] == record.flow_checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.json"]  # no temp left


def test_second_deploy_with_nothing_changed_sends_nothing(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    add_compute(mock, "fn-a", "fn-b")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-1"})
    first = deploy(make_spec(), state_path=state, **clients)
    n = len(mock.calls)
    second = deploy(make_spec(), state_path=state, **clients)
    assert len(mock.calls) == n
    assert second.flow_action == "unchanged"
    assert not second.changed
    assert all(f.action == "unchanged" for f in second.functions)
    assert second.function_ids == first.function_ids
    assert second.flow_id == first.flow_id
    stored = deployed_flow("xpcs", state_path=state)
    assert stored is not None
    assert stored.function_ids == first.function_ids
    assert stored.flow_id == "flow-1"
    assert deployed_flow("xpcs-batch", state_path=state) is None


def test_changed_definition_updates_the_flow_only(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    add_compute(mock, "fn-a", "fn-b")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-1"})
    deploy(make_spec(), state_path=state, **clients)
    mock.add(responses.PUT, f"{FLOWS_API}/flows/flow-1", json={"id": "flow-1"})
    n = len(mock.calls)
    definition = copy.deepcopy(_definition())
    definition["States"]["Correlate"]["WaitTime"] = 1209600
    record = deploy(make_spec(definition=definition), state_path=state, **clients)
    calls = mock.calls[n:]
    assert [c.request.method for c in calls] == ["PUT"]
    assert body(calls[0])["definition"]["States"]["Correlate"]["WaitTime"] == 1209600
    assert body(calls[0])["title"] == "XPCS correlation"
    assert record.flow_action == "updated"
    assert record.flow_id == "flow-1"
    assert all(f.action == "unchanged" for f in record.functions)


def test_changed_function_is_registered_again_alone(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    add_compute(mock, "fn-a", "fn-b")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-1"})
    deploy(make_spec(), state_path=state, **clients)
    n = len(mock.calls)
    responses_mock = mock
    responses_mock.replace(
        responses.POST, f"{COMPUTE_API}/v3/functions", json={"function_uuid": "fn-c"}
    )
    functions = {
        "xpcs_correlate_function_id": xpcs_correlate,
        "xpcs_plots_function_id": xpcs_plots_v2,
    }
    record = deploy(make_spec(compute_functions=functions), state_path=state, **clients)
    calls = mock.calls[n:]
    assert [body(c)["function_name"] for c in calls] == ["xpcs_plots_v2"]
    assert record.function_ids["xpcs_plots_function_id"] == "fn-c"
    assert record.function_ids["xpcs_correlate_function_id"] == "fn-a"
    assert record.flow_action == "unchanged"


def test_flow_deleted_on_globus_is_created_again(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    add_compute(mock, "fn-a", "fn-b")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-1"})
    deploy(make_spec(), state_path=state, **clients)
    mock.add(responses.PUT, f"{FLOWS_API}/flows/flow-1", status=404, json={"error": {}})
    mock.replace(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-2"})
    record = deploy(make_spec(title="XPCS correlation v2"), state_path=state, **clients)
    assert record.flow_action == "recreated"
    assert record.flow_id == "flow-2"
    assert body(mock.calls[-1])["title"] == "XPCS correlation v2"
    assert json.loads(state.read_text())["flows"]["xpcs"]["flow_id"] == "flow-2"
    # the earlier id is kept: runs started before the recreation belong to it
    ((old_id, replaced_at),) = record.replaced_flows
    assert old_id == "flow-1"
    when = datetime.fromisoformat(replaced_at)
    stored = deployed_flow("xpcs", state_path=state)
    assert stored is not None
    assert stored.replaced_flows == record.replaced_flows
    assert stored.flow_ids_since(when - timedelta(minutes=5)) == ("flow-2", "flow-1")
    assert stored.flow_ids_since(when + timedelta(seconds=1)) == ("flow-2",)
    assert record.to_dict()["replaced_flows"] == [
        {"flow_id": "flow-1", "replaced_at": replaced_at}
    ]
    # an ordinary update keeps the history and the id
    mock.add(responses.PUT, f"{FLOWS_API}/flows/flow-2", json={"id": "flow-2"})
    again = deploy(make_spec(title="XPCS correlation v3"), state_path=state, **clients)
    assert (again.flow_action, again.flow_id) == ("updated", "flow-2")
    assert again.replaced_flows == record.replaced_flows


def test_refused_update_raises_and_keeps_the_old_checksum(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    add_compute(mock, "fn-a", "fn-b")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-1"})
    first = deploy(make_spec(), state_path=state, **clients)
    mock.add(
        responses.PUT,
        f"{FLOWS_API}/flows/flow-1",
        status=403,
        json={"error": {"code": "FORBIDDEN", "detail": "not an administrator"}},
    )
    with pytest.raises(GlobusPermissionError, match="not an administrator") as info:
        deploy(make_spec(subtitle="new"), state_path=state, **clients)
    assert info.value.operation == "update_flow"
    assert info.value.flow_id == "flow-1"
    assert json.loads(state.read_text())["flows"]["xpcs"]["checksum"] == first.flow_checksum


def test_invalid_definition_or_principal_sends_nothing(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    broken = _definition()
    broken["States"]["Correlate"]["Next"] = "Nowhere"
    del broken["States"]["Correlate"]["End"]
    with pytest.raises(FlowDefinitionError):
        deploy(make_spec(definition=broken), state_path=tmp_path / "s.json", **clients)
    bad_schema = {"type": "object", "properties": {"input": {"type": "no-such-type"}}}
    with pytest.raises(FlowDefinitionError) as schema_info:
        deploy(make_spec(input_schema=bad_schema), state_path=tmp_path / "s.json", **clients)
    assert schema_info.value.field == "input_schema"
    with pytest.raises(UsageError) as info:
        deploy(make_spec(), state_path=tmp_path / "s.json", run_monitors=["bob"], **clients)
    assert info.value.argument == "run_monitors"
    with pytest.raises(UsageError, match="GlobusApp"):
        deploy(make_spec(), state_path=tmp_path / "s.json")
    assert len(mock.calls) == 0
    assert not (tmp_path / "s.json").exists()


def test_corrupt_state_file_is_a_configuration_error(
    clients: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "deploy.json"
    state.write_text("{not json")
    with pytest.raises(ConfigurationError) as info:
        deploy(make_spec(), state_path=state, **clients)
    assert info.value.source == str(state)


def test_default_state_path_is_in_the_user_data_dir(isolated_home: Path) -> None:
    assert default_state_path() == isolated_home / ".local/share/xpcs-flows/globus-deploy.json"


def test_function_checksum_follows_the_source() -> None:
    assert function_checksum(xpcs_plots) == function_checksum(xpcs_plots)
    assert function_checksum(xpcs_plots) != function_checksum(xpcs_plots_v2)


def test_deploy_through_an_app_uses_its_tokens(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    def token(request: Any) -> tuple[int, dict[str, str], str]:
        scopes = parse_qs(request.body)["scope"][0].split()
        rs = (
            "funcx_service"
            if str(globus_sdk.ComputeClientV3.scopes.all) in scopes
            else ("flows.globus.org")
        )
        doc = {
            "resource_server": rs,
            "scope": " ".join(scopes),
            "access_token": f"{rs}-at",
            "expires_in": 3600,
            "token_type": "Bearer",
            "other_tokens": [],
        }
        return 200, {}, json.dumps(doc)

    mock.add_callback(
        responses.POST,
        "https://auth.globus.org/v2/oauth2/token",
        callback=token,
        content_type="application/json",
    )
    add_compute(mock, "fn-a", "fn-b")
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-9"})
    app = globus_sdk.ClientApp(
        "test",
        client_id=str(uuid.uuid4()),
        client_secret="s",
        config=globus_sdk.GlobusAppConfig(token_storage="memory"),
    )
    record = deploy(make_spec(), app=app, state_path=tmp_path / "s.json")
    assert record.flow_id == "flow-9"
    auth = {c.request.url: c.request.headers.get("Authorization") for c in mock.calls}
    assert auth[f"{COMPUTE_API}/v3/functions"] == "Bearer funcx_service-at"
    assert auth[f"{FLOWS_API}/flows"] == "Bearer flows.globus.org-at"
    grants = [
        parse_qs(c.request.body)["grant_type"]  # type: ignore[arg-type]
        for c in mock.calls
        if c.request.url.endswith("/oauth2/token")
    ]
    assert grants == [["client_credentials"], ["client_credentials"]]


def test_the_xpcs_flows_deploy_and_share_their_functions(
    mock: responses.RequestsMock, clients: dict[str, Any], tmp_path: Path
) -> None:
    from flows.xpcs.definition import xpcs_flow

    state = tmp_path / "deploy.json"
    single, batch = xpcs_flow(), xpcs_flow(batch=True)
    add_compute(mock, *(f"fn-{i}" for i in range(len(single.compute_functions))))
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-single"})
    first = deploy(single, name="xpcs", state_path=state, **clients)
    registered = sorted(body(c)["function_name"] for c in mock.calls[:-1])
    assert registered == sorted(f.__name__ for f in single.compute_functions.values())
    assert body(mock.calls[-1]) == json.loads(json.dumps(single.deploy_kwargs()))
    n = len(mock.calls)
    mock.replace(responses.POST, f"{FLOWS_API}/flows", json={"id": "flow-batch"})
    second = deploy(batch, name="xpcs-batch", state_path=state, **clients)
    assert [c.request.url for c in mock.calls[n:]] == [f"{FLOWS_API}/flows"]
    assert body(mock.calls[-1])["title"] == batch.title
    assert second.function_ids == first.function_ids
    assert set(first.function_ids) == set(single.compute_functions)
    assert second.flow_id == "flow-batch"
