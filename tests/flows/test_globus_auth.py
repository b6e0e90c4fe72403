"""flows.globus.auth: configuration, scopes, token storage, confidential client, logout,
whoami and the gladier integration (no ``scope_names`` crash)."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import globus_sdk
import pytest
import responses
from gladier import GladierBaseClient, GladierBaseTool, generate_flow_definition
from globus_sdk.gare import GlobusAuthorizationParameters
from globus_sdk.login_flows import LoginFlowManager
from globus_sdk.token_storage import JSONTokenStorage

from flows.errors import LoginRequired
from flows.globus.auth import (
    AuthSettings,
    XPCSLoginManager,
    build_app,
    default_scope_requirements,
    load_auth_settings,
    resource_server_for_scope,
    scopes_by_resource_server,
    token_storage_path,
    user_config_dir,
)
from xpcs_kernel.errors import ConfigurationError, UsageError

TOKEN_URL = "https://auth.globus.org/v2/oauth2/token"
REVOKE_URL = "https://auth.globus.org/v2/oauth2/token/revoke"
USERINFO_URL = "https://auth.globus.org/v2/oauth2/userinfo"
IDENTITY = str(uuid.uuid4())
FLOWS = globus_sdk.FlowsClient.scopes
COMPUTE_ALL = str(globus_sdk.ComputeClientV3.scopes.all)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XPCS_FLOWS_NATIVE_CLIENT_ID", raising=False)
    monkeypatch.delenv("GLOBUS_COMPUTE_SCOPE", raising=False)
    monkeypatch.delenv("GLOBUS_SDK_ENVIRONMENT", raising=False)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def token_doc(by_rs: dict[str, list[str]], *, refresh: bool = True, id_token: bool = True) -> Any:
    """A Globus Auth token response for these resource servers and scopes."""
    docs = [
        {
            "resource_server": rs,
            "scope": " ".join(scopes),
            "access_token": f"AT-{rs}",
            "expires_in": 172800,
            "token_type": "Bearer",
            **({"refresh_token": f"RT-{rs}"} if refresh else {}),
        }
        for rs, scopes in by_rs.items()
    ]
    first = dict(docs[0])
    if id_token:
        first["id_token"] = "header.payload.signature"
    first["other_tokens"] = docs[1:]
    return first


class StubDecoder:
    """Decodes any id_token to our test identity (no JWKS fetch)."""

    def decode(self, id_token: str, /) -> dict[str, Any]:
        return {"sub": IDENTITY}


class RecordingLoginFlow(LoginFlowManager):
    """A login flow that records the scopes asked for and exchanges a fixed code."""

    def __init__(self, login_client: globus_sdk.AuthLoginClient) -> None:
        super().__init__(login_client, request_refresh_tokens=True)
        self.asked: list[list[str]] = []

    def run_login_flow(
        self, auth_parameters: GlobusAuthorizationParameters
    ) -> globus_sdk.OAuthTokenResponse:
        self.asked.append(list(auth_parameters.required_scopes or []))
        self._oauth2_start_flow(auth_parameters, "https://auth.globus.org/v2/web/auth-code")
        assert isinstance(self.login_client, globus_sdk.NativeAppAuthClient)
        return self.login_client.oauth2_exchange_code_for_tokens("the-code")


def user_manager(native_id: str) -> tuple[XPCSLoginManager, RecordingLoginFlow]:
    """A UserApp manager with the default JSON storage, a stub decoder and login flow."""
    storage = JSONTokenStorage(token_storage_path(native_id))
    token_storage_path(native_id).parent.mkdir(parents=True, exist_ok=True)
    storage.id_token_decoder = StubDecoder()  # type: ignore[assignment]
    flow = RecordingLoginFlow(globus_sdk.NativeAppAuthClient(client_id=native_id))
    app = build_app(
        AuthSettings(client_id=native_id, source="test"),
        token_storage=storage,
        login_flow_manager=flow,
    )
    return XPCSLoginManager(app), flow


def test_native_client_id_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cid = str(uuid.uuid4())
    monkeypatch.setenv("XPCS_FLOWS_NATIVE_CLIENT_ID", cid)
    settings = load_auth_settings()
    assert (settings.client_id, settings.confidential) == (cid, False)
    assert settings.source == "XPCS_FLOWS_NATIVE_CLIENT_ID"


def test_native_client_id_from_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = str(uuid.uuid4())
    monkeypatch.setenv("XPCS_FLOWS_CONFIG", str(tmp_path / "cfg"))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "globus.toml").write_text(f'[auth]\nnative_client_id = "{cid}"\n')
    settings = load_auth_settings()
    assert settings.client_id == cid
    assert settings.source == str(tmp_path / "cfg" / "globus.toml")


def test_default_config_dir_is_under_the_users_config_home(isolated_home: Path) -> None:
    assert user_config_dir() == isolated_home / ".config" / "xpcs-flows"
    cid = str(uuid.uuid4())
    assert token_storage_path(cid) == isolated_home / ".config/xpcs-flows/tokens" / f"{cid}.json"


def test_missing_client_id_names_the_variable_and_the_file(isolated_home: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_auth_settings()
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == "auth.native_client_id"
    assert err.source == str(isolated_home / ".config" / "xpcs-flows" / "globus.toml")
    assert "XPCS_FLOWS_NATIVE_CLIENT_ID" in str(err)
    assert "XPCS_FLOWS_CLIENT_SECRET" in str(err)


def test_client_id_must_be_a_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPCS_FLOWS_NATIVE_CLIENT_ID", "not-a-uuid")
    with pytest.raises(ConfigurationError, match="XPCS_FLOWS_NATIVE_CLIENT_ID") as info:
        load_auth_settings()
    assert info.value.found == "not-a-uuid"


def test_bad_toml_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XPCS_FLOWS_CONFIG", str(tmp_path))
    (tmp_path / "globus.toml").write_text("[auth\n")
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        load_auth_settings()


def test_confidential_client_needs_id_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_ID", str(uuid.uuid4()))
    with pytest.raises(ConfigurationError) as info:
        load_auth_settings()
    assert info.value.field == "XPCS_FLOWS_CLIENT_SECRET"


def test_confidential_client_wins_and_hides_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    cid = str(uuid.uuid4())
    monkeypatch.setenv("XPCS_FLOWS_NATIVE_CLIENT_ID", str(uuid.uuid4()))
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_ID", cid)
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_SECRET", "s3cret")
    settings = load_auth_settings()
    assert (settings.client_id, settings.confidential) == (cid, True)
    assert "s3cret" not in repr(settings)


def test_scopes_map_to_their_resource_servers() -> None:
    flow_id = str(uuid.uuid4())
    flow_scope = globus_sdk.SpecificFlowClient(flow_id).scopes.user
    assert resource_server_for_scope(FLOWS.manage_flows) == "flows.globus.org"
    assert resource_server_for_scope(str(FLOWS.run_status)) == "flows.globus.org"
    assert resource_server_for_scope(COMPUTE_ALL) == "funcx_service"
    assert resource_server_for_scope(flow_scope) == flow_id
    assert resource_server_for_scope(str(flow_scope)) == flow_id
    assert resource_server_for_scope("openid") == "auth.globus.org"
    transfer = "urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/x/data_access]"
    assert resource_server_for_scope(transfer) == "transfer.api.globus.org"
    grouped = scopes_by_resource_server([FLOWS.run, "email", str(FLOWS.run), "profile"])
    assert grouped == {
        "flows.globus.org": [str(FLOWS.run)],
        "auth.globus.org": ["email", "profile"],
    }
    with pytest.raises(UsageError, match="resource server"):
        resource_server_for_scope("https://example.org/not/a/globus/scope")


def test_default_scopes_cover_the_services_we_use() -> None:
    scopes = default_scope_requirements()
    assert scopes["auth.globus.org"] == ["openid", "profile", "email"]
    assert str(FLOWS.manage_flows) in scopes["flows.globus.org"]
    assert str(FLOWS.run_manage) in scopes["flows.globus.org"]
    assert scopes["funcx_service"] == [COMPUTE_ALL]
    assert scopes["transfer.api.globus.org"] == [
        "urn:globus:auth:scope:transfer.api.globus.org:all"
    ]
    assert scopes["search.api.globus.org"] == ["urn:globus:auth:scope:search.api.globus.org:all"]


def test_login_asks_for_default_and_flow_scopes_and_stores_tokens_privately(
    mock: responses.RequestsMock,
) -> None:
    native = str(uuid.uuid4())
    flow_scope = str(globus_sdk.SpecificFlowClient(str(uuid.uuid4())).scopes.user)
    wanted = default_scope_requirements()
    wanted[resource_server_for_scope(flow_scope)] = [flow_scope]
    mock.add(responses.POST, TOKEN_URL, json=token_doc(wanted))
    manager, flow = user_manager(native)
    manager.login_default([flow_scope])
    asked = set(flow.asked[0])
    assert {s for scopes in wanted.values() for s in scopes} <= asked
    body = parse_qs(mock.calls[0].request.body)  # type: ignore[arg-type]
    assert body["grant_type"] == ["authorization_code"]
    assert body["code"] == ["the-code"]
    path = token_storage_path(native)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["data"]["DEFAULT"]["flows.globus.org"]["refresh_token"] == "RT-flows.globus.org"
    authorizers = manager.get_authorizers()
    assert flow_scope in authorizers
    assert isinstance(authorizers[str(FLOWS.manage_flows)], globus_sdk.RefreshTokenAuthorizer)
    assert manager.app.login_required() is False


def test_without_tokens_and_without_terminal_login_is_refused(
    mock: responses.RequestsMock,
) -> None:
    manager, flow = user_manager(str(uuid.uuid4()))
    with pytest.raises(LoginRequired, match="xpcs-flows login"):
        manager.flows_client().list_flows()
    assert flow.asked == []
    assert len(mock.calls) == 0


def test_confidential_client_gets_tokens_by_client_credentials(
    mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = str(uuid.uuid4())
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_ID", cid)
    monkeypatch.setenv("XPCS_FLOWS_CLIENT_SECRET", "s3cret")
    mock.add(
        responses.POST,
        TOKEN_URL,
        json=token_doc(
            {"flows.globus.org": [str(FLOWS.manage_flows)], "auth.globus.org": ["openid"]},
            refresh=False,
            id_token=False,
        ),
    )
    manager = XPCSLoginManager.from_environment()
    assert manager.confidential
    manager.login([FLOWS.manage_flows])
    request = mock.calls[0].request
    body = parse_qs(request.body)  # type: ignore[arg-type]
    assert body["grant_type"] == ["client_credentials"]
    assert set(body["scope"][0].split()) == {str(FLOWS.manage_flows), "openid"}
    expected = base64.b64encode(f"{cid}:s3cret".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    stored = json.loads(token_storage_path(cid).read_text())
    assert stored["data"]["DEFAULT"]["flows.globus.org"]["access_token"] == "AT-flows.globus.org"
    authorizers = manager.get_authorizers()
    assert authorizers[str(FLOWS.manage_flows)].get_authorization_header() == (
        "Bearer AT-flows.globus.org"
    )


def test_logout_revokes_every_token_and_clears_storage(mock: responses.RequestsMock) -> None:
    native = str(uuid.uuid4())
    wanted = {"auth.globus.org": ["openid"], "flows.globus.org": [str(FLOWS.run_status)]}
    mock.add(responses.POST, TOKEN_URL, json=token_doc(wanted))
    mock.add(responses.POST, REVOKE_URL, json={"active": False})
    manager, _ = user_manager(native)
    manager.login([FLOWS.run_status])
    assert manager.logout() == ["auth.globus.org", "flows.globus.org"]
    revoked = {
        parse_qs(c.request.body)["token"][0]  # type: ignore[arg-type]
        for c in mock.calls
        if c.request.url == REVOKE_URL
    }
    assert revoked == {
        "AT-auth.globus.org",
        "RT-auth.globus.org",
        "AT-flows.globus.org",
        "RT-flows.globus.org",
    }
    assert json.loads(token_storage_path(native).read_text())["data"]["DEFAULT"] == {}
    assert manager.get_authorizers() == {}


def test_whoami_reads_userinfo_and_shows_no_token(mock: responses.RequestsMock) -> None:
    native = str(uuid.uuid4())
    mock.add(
        responses.POST,
        TOKEN_URL,
        json=token_doc({"auth.globus.org": ["openid", "profile", "email"]}),
    )
    mock.add(
        responses.GET,
        USERINFO_URL,
        json={
            "sub": IDENTITY,
            "preferred_username": "scientist@anl.gov",
            "name": "A. Scientist",
            "email": "scientist@anl.gov",
            "organization": "Argonne",
            "identity_provider_display_name": "Argonne National Laboratory",
            "identity_set": [{"sub": IDENTITY, "username": "scientist@anl.gov"}],
        },
    )
    manager, _ = user_manager(native)
    manager.login(["openid", "profile", "email"])
    info = manager.whoami()
    assert info["identity_id"] == IDENTITY
    assert info["username"] == "scientist@anl.gov"
    assert info["linked_identities"] == ["scientist@anl.gov"]
    assert info["client_id"] == native
    assert info["confidential"] is False
    assert mock.calls[-1].request.headers["Authorization"] == "Bearer AT-auth.globus.org"
    assert "AT-" not in json.dumps(info)
    assert "RT-" not in json.dumps(info)


def say_hello(**data: Any) -> str:
    """Greet."""
    return f"hello {data['name']}"


@generate_flow_definition
class HelloTool(GladierBaseTool):  # type: ignore[misc]
    compute_functions = (say_hello,)
    required_input = ("name",)


@generate_flow_definition
class HelloClient(GladierBaseClient):  # type: ignore[misc]
    gladier_tools = (HelloTool,)


def _xpcs_client() -> type[GladierBaseClient]:
    from flows.xpcs.definition import XPCSFlowClient

    return XPCSFlowClient


@pytest.mark.parametrize("client_class", [lambda: HelloClient, _xpcs_client])
def test_gladier_client_logs_in_through_our_manager(
    mock: responses.RequestsMock, client_class: Any
) -> None:
    flows_scopes = (FLOWS.manage_flows, FLOWS.view_flows, FLOWS.run, FLOWS.run_status)
    wanted = {
        "flows.globus.org": [str(s) for s in (*flows_scopes, FLOWS.run_manage)],
        "funcx_service": [COMPUTE_ALL],
        "auth.globus.org": ["openid"],
    }
    mock.add(responses.POST, TOKEN_URL, json=token_doc(wanted))
    manager, flow = user_manager(str(uuid.uuid4()))
    client = client_class()(login_manager=manager, auto_registration=False)
    assert client.login_manager is manager
    assert not client.is_logged_in()
    client.login()  # gladier's own UserAppLoginManager crashes here on scope_names
    assert client.is_logged_in()
    assert {str(FLOWS.manage_flows), COMPUTE_ALL} <= set(flow.asked[0])
    compute_authorizer = manager.get_manager_authorizers()[COMPUTE_ALL]
    assert compute_authorizer.get_authorization_header() == "Bearer AT-funcx_service"


def test_gladiers_own_manager_still_crashes_on_scope_names() -> None:
    """Why our manager exists; if this starts failing, gladier fixed it upstream."""
    from gladier.managers.login_manager import UserAppLoginManager

    with pytest.raises(AttributeError, match="scope_names"):
        UserAppLoginManager.get_resource_server(None, str(FLOWS.manage_flows))
