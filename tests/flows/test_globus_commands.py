"""The click commands login, logout, whoami and deploy (Globus answered by canned responses)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import globus_sdk
import pytest
import responses
from click.testing import CliRunner

from flows.cli import globus as globus_commands
from flows.cli.globus import (
    deploy_command,
    login_command,
    logout_command,
    whoami_command,
)
from flows.errors import GlobusPermissionError, LoginRequired
from flows.globus.auth import XPCSLoginManager, default_scope_requirements
from flows.globus.deploy import deployed_flow
from tests.flows.test_globus_auth import (
    IDENTITY,
    REVOKE_URL,
    TOKEN_URL,
    USERINFO_URL,
    token_doc,
    user_manager,
)
from tests.flows.test_globus_deploy import COMPUTE_API, FLOWS_API, make_spec
from xpcs_kernel.errors import ConfigurationError, UsageError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XPCS_FLOWS_NATIVE_CLIENT_ID", raising=False)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def invoke(command: Any, args: list[str], manager: XPCSLoginManager | None) -> Any:
    obj = {} if manager is None else {"login_manager": manager}
    return CliRunner().invoke(command, args, obj=obj, catch_exceptions=True)


def test_whoami_json_and_text(mock: responses.RequestsMock) -> None:
    mock.add(
        responses.POST,
        TOKEN_URL,
        json=token_doc({"auth.globus.org": ["openid", "profile", "email"]}),
    )
    mock.add(
        responses.GET,
        USERINFO_URL,
        json={"sub": IDENTITY, "preferred_username": "beamline@aps.anl.gov", "name": "8-ID"},
    )
    manager, _ = user_manager(str(uuid.uuid4()))
    manager.login(["openid", "profile", "email"])
    result = invoke(whoami_command, ["--json"], manager)
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["username"] == "beamline@aps.anl.gov"
    assert info["identity_id"] == IDENTITY
    assert info["resource_servers"] == ["auth.globus.org"]
    text = invoke(whoami_command, [], manager)
    assert text.output.startswith("logged in as beamline@aps.anl.gov (8-ID)")
    assert "AT-" not in text.output + result.output


def test_whoami_before_login_says_so(mock: responses.RequestsMock) -> None:
    manager, flow = user_manager(str(uuid.uuid4()))
    result = invoke(whoami_command, [], manager)
    assert isinstance(result.exception, LoginRequired)
    assert "xpcs-flows login" in str(result.exception)
    assert flow.asked == []
    assert len(mock.calls) == 0


def test_whoami_without_configuration_names_what_to_set() -> None:
    result = invoke(whoami_command, [], None)
    assert isinstance(result.exception, ConfigurationError)
    assert "XPCS_FLOWS_NATIVE_CLIENT_ID" in str(result.exception)


def test_login_consents_to_deployed_flows_too(
    mock: responses.RequestsMock, tmp_path: Path
) -> None:
    flow_id = str(uuid.uuid4())
    state = tmp_path / "deploy.json"
    state.write_text(
        json.dumps(
            {
                "format": 1,
                "functions": {},
                "flows": {"xpcs": {"flow_id": flow_id, "checksum": "c", "functions": {}}},
            }
        )
    )
    flow_scope = str(globus_sdk.SpecificFlowClient(flow_id).scopes.user)
    wanted = default_scope_requirements()
    wanted[flow_id] = [flow_scope]
    mock.add(responses.POST, TOKEN_URL, json=token_doc(wanted))
    manager, flow = user_manager(str(uuid.uuid4()))
    result = invoke(login_command, ["--state-file", str(state)], manager)
    assert result.exit_code == 0, result.output
    assert flow_scope in flow.asked[0]
    assert str(globus_sdk.FlowsClient.scopes.manage_flows) in flow.asked[0]
    assert "tokens stored in" in result.output


def test_logout_reports_what_it_revoked(mock: responses.RequestsMock) -> None:
    mock.add(responses.POST, TOKEN_URL, json=token_doc({"auth.globus.org": ["openid"]}))
    mock.add(responses.POST, REVOKE_URL, json={})
    manager, _ = user_manager(str(uuid.uuid4()))
    manager.login(["openid"])
    result = invoke(logout_command, [], manager)
    assert result.exit_code == 0, result.output
    assert "revoked and removed tokens for auth.globus.org" in result.output
    assert sum(c.request.url == REVOKE_URL for c in mock.calls) == 2
    again = invoke(logout_command, [], manager)
    assert "nothing to revoke" in again.output


def _confidential(mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_ID", str(uuid.uuid4()))
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_SECRET", "s3cret")

    def token(request: Any) -> tuple[int, dict[str, str], str]:
        scopes = parse_qs(request.body)["scope"][0]
        rs = "funcx_service" if "facd7ccc" in scopes else "flows.globus.org"
        doc = {"resource_server": rs, "scope": scopes, "access_token": f"{rs}-at"}
        return 200, {}, json.dumps({**doc, "expires_in": 3600, "other_tokens": []})

    mock.add_callback(responses.POST, TOKEN_URL, callback=token, content_type="application/json")


def test_deploy_twice_creates_then_reports_unchanged(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _confidential(mock, monkeypatch)
    asked: list[bool] = []

    def fake_spec(batch: bool) -> Any:
        asked.append(batch)
        return make_spec()

    monkeypatch.setattr(globus_commands, "_flow_spec", fake_spec)
    for fid in ("fn-1", "fn-2"):
        mock.add(responses.POST, f"{COMPUTE_API}/v3/functions", json={"function_uuid": fid})
    flow_id = str(uuid.uuid4())
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": flow_id})
    state = tmp_path / "deploy.json"
    monitor = f"urn:globus:groups:id:{uuid.uuid4()}"
    args = ["--batch", "--json", "--state-file", str(state), "--run-monitor", monitor]
    first = invoke(deploy_command, args, None)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.output)
    assert doc["name"] == "xpcs-batch"
    assert doc["flow_id"] == flow_id
    assert doc["flow_action"] == "created"
    assert doc["function_ids"] == {
        "xpcs_correlate_function_id": "fn-1",
        "xpcs_plots_function_id": "fn-2",
    }
    create = json.loads(mock.calls[-1].request.body)  # type: ignore[arg-type]
    assert create["run_monitors"] == [monitor]
    n = len(mock.calls)
    second = invoke(
        deploy_command, ["--batch", "--state-file", str(state), "--run-monitor", monitor], None
    )
    assert second.exit_code == 0, second.output
    assert f"flow xpcs-batch: {flow_id} (unchanged)" in second.output
    assert "xpcs_plots_function_id = fn-2 (unchanged)" in second.output
    assert len(mock.calls) == n
    assert asked == [True, True]
    stored = deployed_flow("xpcs-batch", state_path=state)
    assert stored is not None
    assert stored.flow_id == flow_id


def test_deploy_refuses_a_bad_principal_before_sending(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _confidential(mock, monkeypatch)
    monkeypatch.setattr(globus_commands, "_flow_spec", lambda batch: make_spec())
    args = ["--state-file", str(tmp_path / "s.json"), "--run-manager", "someone"]
    result = invoke(deploy_command, args, None)
    assert isinstance(result.exception, UsageError)
    assert result.exception.argument == "run_managers"
    assert len(mock.calls) == 0


def test_login_with_a_confidential_client_proves_its_secret(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _confidential(mock, monkeypatch)
    result = invoke(login_command, ["--state-file", str(tmp_path / "none.json")], None)
    assert result.exit_code == 0, result.output
    grants = [parse_qs(c.request.body)["grant_type"] for c in mock.calls]  # type: ignore[arg-type]
    assert grants
    assert all(g == ["client_credentials"] for g in grants)


def test_login_with_a_wrong_secret_is_a_clear_error(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_ID", str(uuid.uuid4()))
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_SECRET", "wrong")
    mock.add(responses.POST, TOKEN_URL, status=401, json={"error": "invalid_client"})
    result = invoke(login_command, ["--state-file", str(tmp_path / "none.json")], None)
    assert isinstance(result.exception, GlobusPermissionError)
    assert result.exception.operation == "login"
    assert result.exception.http_status == 401
    assert "invalid_client" in str(result.exception)


def test_deploy_live_deploys_the_live_flow_under_its_own_name(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _confidential(mock, monkeypatch)
    for fid in ("fn-1", "fn-2", "fn-3", "fn-4"):
        mock.add(responses.POST, f"{COMPUTE_API}/v3/functions", json={"function_uuid": fid})
    flow_id = str(uuid.uuid4())
    mock.add(responses.POST, f"{FLOWS_API}/flows", json={"id": flow_id})
    state = tmp_path / "deploy.json"
    result = invoke(deploy_command, ["--live", "--json", "--state-file", str(state)], None)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["name"] == "xpcs-live"
    assert "xpcs_correlate_live_function_id" in doc["function_ids"]
    create = json.loads(mock.calls[-1].request.body)  # type: ignore[arg-type]
    assert create["title"] == "XPCS correlation (live)"
    assert create["definition"]["StartAt"] == "PlanPaths"
    assert "TransferIn" not in create["definition"]["States"]
    assert create["input_schema"]["properties"]["input"]["properties"]["live"]["const"] is True
    refused = invoke(deploy_command, ["--live", "--batch", "--state-file", str(state)], None)
    assert refused.exit_code == 2
    assert "no live batch flow" in refused.output
