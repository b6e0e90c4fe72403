"""Globus login for xpcs-flows: one login manager for our code and for gladier.

gladier 0.11's ``UserAppLoginManager`` maps scopes to resource servers through
``scope_names``, which globus-sdk 4 removed, and crashes at the first login.
:class:`XPCSLoginManager` is a gladier ``BaseLoginManager`` on a globus-sdk
``GlobusApp`` instead: a ``UserApp`` (interactive, refresh tokens) on our
native client id (``XPCS_FLOWS_NATIVE_CLIENT_ID`` or ``[auth] native_client_id``
in ``globus.toml``), or a ``ClientApp`` when ``XPCS_FLOWS_CLIENT_ID`` and
``XPCS_FLOWS_CLIENT_SECRET`` are set (unattended beamline machines).

Tokens live in globus-sdk token storage (a JSON file only its owner can read)
under ``<config dir>/tokens/``, never in logs or results. The configuration
directory is ``$XPCS_FLOWS_CONFIG`` or ``$XDG_CONFIG_HOME/xpcs-flows``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import globus_sdk
from gladier.managers.login_manager import BaseLoginManager
from globus_sdk.login_flows import LoginFlowManager
from globus_sdk.scopes import Scope, ScopeParser
from globus_sdk.token_storage import JSONTokenStorage, TokenStorage, TokenValidationError

from flows.errors import LoginRequired
from flows.globus.runs import map_globus_error
from xpcs_kernel.errors import ConfigurationError, UsageError

__all__ = [
    "APP_NAME",
    "AuthSettings",
    "XPCSLoginManager",
    "build_app",
    "default_scope_requirements",
    "load_auth_settings",
    "resource_server_for_scope",
    "scopes_by_resource_server",
    "token_storage_path",
    "user_config_dir",
]

APP_NAME = "xpcs-flows"
CONFIG_ENV = "XPCS_FLOWS_CONFIG"
NATIVE_CLIENT_ID_ENV = "XPCS_FLOWS_NATIVE_CLIENT_ID"
CLIENT_ID_ENV = "XPCS_FLOWS_CLIENT_ID"
CLIENT_SECRET_ENV = "XPCS_FLOWS_CLIENT_SECRET"
CONFIG_FILE = "globus.toml"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_URN_SCOPE = re.compile(r"^urn:globus:auth:scope:(?P<rs>[^:]+):[^:]+$")
_URL_SCOPE = re.compile(r"^https://auth\.globus\.org/scopes/(?P<rs>[^/]+)/(?P<name>[^/]+)$")
_SERVICE_CLIENTS: tuple[Any, ...] = (
    globus_sdk.AuthClient,
    globus_sdk.FlowsClient,
    globus_sdk.TransferClient,
    globus_sdk.SearchClient,
    globus_sdk.ComputeClientV3,
    globus_sdk.GroupsClient,
    globus_sdk.TimersClient,
)


def user_config_dir() -> Path:
    """The user's xpcs-flows configuration directory (it may not exist yet)."""
    if root := os.environ.get(CONFIG_ENV):
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "xpcs-flows"


def token_storage_path(client_id: str) -> Path:
    """Where the tokens obtained with client ``client_id`` are stored."""
    return user_config_dir() / "tokens" / f"{client_id}.json"


@dataclass(frozen=True)
class AuthSettings:
    """Who logs in: a native app (a person) or, with a secret, a confidential client.

    ``source`` says where ``client_id`` came from (environment variable or file).
    """

    client_id: str
    source: str
    client_secret: str | None = field(default=None, repr=False)

    @property
    def confidential(self) -> bool:
        """Whether this is a confidential client (client credentials, no person)."""
        return self.client_secret is not None


def _check_uuid(value: str, *, source: str, name: str) -> str:
    value = value.strip()
    if not _UUID.match(value):
        raise ConfigurationError(
            "not a Globus client id", source=source, field=name, expected="a UUID", found=value
        )
    return value


def load_auth_settings(environ: Mapping[str, str] | None = None) -> AuthSettings:
    """Read the login configuration from the environment and ``globus.toml``.

    Returns the confidential client of ``XPCS_FLOWS_CLIENT_ID``/``_SECRET``
    when both are set in ``environ`` (default :data:`os.environ`), else the
    native client of ``XPCS_FLOWS_NATIVE_CLIENT_ID`` or of ``[auth]
    native_client_id`` in ``<config dir>/globus.toml``.

    Raises
    ------
    ConfigurationError
        Only one of the confidential variables is set, a client id is not a
        UUID, the file is not valid TOML, or no native client id is configured.
    """
    env = os.environ if environ is None else environ
    cid, secret = env.get(CLIENT_ID_ENV, "").strip(), env.get(CLIENT_SECRET_ENV, "").strip()
    if cid or secret:
        missing = CLIENT_SECRET_ENV if cid else CLIENT_ID_ENV
        if not (cid and secret):
            why = "a confidential client needs both its id and its secret"
            raise ConfigurationError(why, source="environment", field=missing, expected="set")
        cid = _check_uuid(cid, source="environment", name=CLIENT_ID_ENV)
        return AuthSettings(client_id=cid, source=CLIENT_ID_ENV, client_secret=secret)
    if native := env.get(NATIVE_CLIENT_ID_ENV, "").strip():
        native = _check_uuid(native, source="environment", name=NATIVE_CLIENT_ID_ENV)
        return AuthSettings(client_id=native, source=NATIVE_CLIENT_ID_ENV)
    path = user_config_dir() / CONFIG_FILE
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"invalid TOML: {exc}", source=path) from exc
        value = data.get("auth", {}).get("native_client_id")
        if isinstance(value, str) and value.strip():
            return AuthSettings(
                client_id=_check_uuid(value, source=str(path), name="auth.native_client_id"),
                source=str(path),
            )
    raise ConfigurationError(
        "no Globus native app client id configured: register a native app "
        f"(Globus web app, Settings > Developers) and set {NATIVE_CLIENT_ID_ENV}, or put "
        '`[auth]` `native_client_id = "<uuid>"` in this file; for an unattended machine set '
        f"{CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}",
        source=path,
        field="auth.native_client_id",
        expected="a UUID",
    )


def default_scope_requirements() -> dict[str, list[str]]:
    """The scopes ``xpcs-flows login`` asks for, by resource server.

    Identity (whoami), Flows (deploy, run, monitor), Compute (register
    functions, endpoint status), Transfer and Search (results, catalog).
    """
    f = globus_sdk.FlowsClient.scopes
    wanted: list[tuple[Any, Iterable[Any]]] = [
        (globus_sdk.AuthClient.scopes, globus_sdk.AuthClient.default_scope_requirements),
        (f, (f.manage_flows, f.view_flows, f.run, f.run_status, f.run_manage)),
        (globus_sdk.ComputeClientV3.scopes, (globus_sdk.ComputeClientV3.scopes.all,)),
        (globus_sdk.TransferClient.scopes, (globus_sdk.TransferClient.scopes.all,)),
        (globus_sdk.SearchClient.scopes, (globus_sdk.SearchClient.scopes.all,)),
    ]
    return {str(coll.resource_server): [str(s) for s in scopes] for coll, scopes in wanted}


def _known_scopes() -> dict[str, str]:
    known: dict[str, str] = {}
    for client in _SERVICE_CLIENTS:
        for scope in client.scopes:
            known[str(scope)] = str(client.scopes.resource_server)
    if compute_override := os.environ.get("GLOBUS_COMPUTE_SCOPE"):
        known[compute_override] = globus_sdk.ComputeClientV3.scopes.resource_server
    return known


def resource_server_for_scope(scope: str | Scope) -> str:
    """The resource server a scope belongs to (what a GlobusApp files it under).

    Known service scopes come from globus-sdk's scope collections; a flow's
    own scope (``.../scopes/<flow id>/flow_<id>_user``) belongs to the flow
    id; other ``urn:globus:auth:scope:<rs>:<name>`` scopes to ``<rs>``.

    Raises
    ------
    UsageError
        The scope has none of these forms.
    """
    parsed = scope if isinstance(scope, Scope) else ScopeParser.parse(scope)[0]
    text = parsed.scope_string
    known = _known_scopes()
    if text in known:
        return known[text]
    if text in ("openid", "profile", "email"):
        return globus_sdk.AuthClient.scopes.resource_server
    url = _URL_SCOPE.match(text)
    if url and url.group("name").startswith("flow_"):
        return url.group("rs")
    if urn := _URN_SCOPE.match(text):
        return urn.group("rs")
    raise UsageError(f"cannot tell which resource server scope {text!r} is for", argument="scope")


def scopes_by_resource_server(scopes: Iterable[str | Scope]) -> dict[str, list[str]]:
    """Group scopes (strings or :class:`~globus_sdk.scopes.Scope`) by resource server."""
    grouped: dict[str, list[str]] = {}
    for scope in scopes:
        text = str(scope)
        bucket = grouped.setdefault(resource_server_for_scope(scope), [])
        if text not in bucket:
            bucket.append(text)
    return grouped


@contextlib.contextmanager
def _mapped(operation: str) -> Iterator[None]:
    try:
        yield
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation=operation) from exc


def _login_or_refuse(app: globus_sdk.GlobusApp, error: TokenValidationError) -> None:
    """Token validation error handler: log in when a person can answer, else refuse."""
    if isinstance(app, globus_sdk.ClientApp) or sys.stdin.isatty():
        app.login(force=True)
        return
    raise LoginRequired(
        f"Globus login needed ({error}); run `xpcs-flows login` in a terminal, or set "
        f"{CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} on an unattended machine",
        resource_server=getattr(error, "resource_server", None),
    )


def build_app(
    settings: AuthSettings | None = None,
    *,
    token_storage: TokenStorage | None = None,
    login_flow_manager: LoginFlowManager | None = None,
) -> globus_sdk.GlobusApp:
    """A GlobusApp for ``settings`` (default :func:`load_auth_settings`).

    Tokens go to ``token_storage`` (default a JSON file at :func:`token_storage_path`);
    a UserApp logs in with ``login_flow_manager`` (default: print a URL, read the code).
    """
    settings = settings or load_auth_settings()
    handler = _login_or_refuse
    if token_storage is None:
        path = token_storage_path(settings.client_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token_storage = JSONTokenStorage(path)
    if settings.confidential:
        if login_flow_manager is not None:
            raise UsageError("a confidential client has no login flow", argument="login_flow")
        config = globus_sdk.GlobusAppConfig(
            token_storage=token_storage, token_validation_error_handler=handler
        )
        secret = settings.client_secret
        return globus_sdk.ClientApp(
            APP_NAME, client_id=settings.client_id, client_secret=secret, config=config
        )
    config = globus_sdk.GlobusAppConfig(
        token_storage=token_storage,
        request_refresh_tokens=True,
        login_flow_manager=login_flow_manager,
        token_validation_error_handler=handler,
    )
    return globus_sdk.UserApp(APP_NAME, client_id=settings.client_id, config=config)


class XPCSLoginManager(BaseLoginManager):  # type: ignore[misc]
    """A gladier login manager on a GlobusApp ``app`` (:func:`build_app`), also ours.

    Pass it to ``GladierBaseClient(login_manager=...)``; give :attr:`app` to
    globus-sdk clients (``FlowsClient(app=manager.app)``) or use the helpers.
    """

    def __init__(self, app: globus_sdk.GlobusApp) -> None:
        super().__init__()
        self.globus_app = app

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> XPCSLoginManager:
        """The manager for the configured client (see :func:`load_auth_settings`)."""
        return cls(build_app(load_auth_settings(environ)))

    @property
    def app(self) -> globus_sdk.GlobusApp:
        """The globus-sdk app holding the tokens."""
        return self.globus_app

    @property
    def confidential(self) -> bool:
        """Whether the app is a confidential client (no person logs in)."""
        return isinstance(self.app, globus_sdk.ClientApp)

    def _stored(self) -> dict[str, Any]:
        return self.app.token_storage.token_storage.get_token_data_by_resource_server()

    def get_authorizers(self) -> dict[str, globus_sdk.authorizers.GlobusAuthorizer]:
        """Authorizers for every stored scope, keyed by scope string (no login attempted)."""
        authorizers: dict[str, globus_sdk.authorizers.GlobusAuthorizer] = {}
        for rs, data in self._stored().items():
            scopes = data.scope.split()
            if rs not in self.app.scope_requirements:
                self.app.add_scope_requirements({rs: scopes})
            try:
                with self.app._disabled_token_validation_error_handler():
                    authorizer = self.app.get_authorizer(rs)
            except TokenValidationError:
                continue
            for scope in scopes:
                authorizers[scope] = authorizer
        return authorizers

    def login(self, scopes: Iterable[str | Scope] = (), *, force: bool = True) -> None:
        """Log in for ``scopes`` (plus the app's existing requirements).

        gladier calls this with the scopes it misses; a UserApp runs the
        interactive login flow, a ClientApp the client-credentials grant.
        """
        grouped = scopes_by_resource_server(scopes)
        if grouped:
            self.app.add_scope_requirements(grouped)
        with _mapped("login"):
            self.app.login(force=force)

    def login_default(
        self, extra_scopes: Iterable[str | Scope] = (), *, force: bool = False
    ) -> None:
        """Log in for :func:`default_scope_requirements` and ``extra_scopes``.

        A confidential client always asks for tokens (cheap; proves its secret).
        """
        self.app.add_scope_requirements(default_scope_requirements())
        self.login(extra_scopes, force=force or self.confidential)

    def logout(self) -> list[str]:
        """Revoke every stored token and clear the storage; returns the resource servers."""
        servers = sorted(self._stored())
        with _mapped("logout"):
            self.app.logout(sweep=True)
        return servers

    def whoami(self) -> dict[str, Any]:
        """Who the tokens belong to (Globus Auth userinfo, no token); LoginRequired if none."""
        if not self.confidential and not self._stored():
            raise LoginRequired("not logged in: run `xpcs-flows login`")
        with _mapped("userinfo"):
            info = self.auth_client().userinfo()
        linked = [i.get("username") for i in info.get("identity_set", []) if i.get("username")]
        return {
            "identity_id": info.get("sub"),
            "username": info.get("preferred_username"),
            "name": info.get("name"),
            "email": info.get("email"),
            "organization": info.get("organization"),
            "identity_provider": info.get("identity_provider_display_name"),
            "linked_identities": linked,
            "client_id": str(self.app.client_id),
            "confidential": self.confidential,
            "resource_servers": sorted(self._stored()),
        }

    def auth_client(self) -> globus_sdk.AuthClient:
        """An AuthClient on this app."""
        return globus_sdk.AuthClient(app=self.app)

    def flows_client(self) -> globus_sdk.FlowsClient:
        """A FlowsClient on this app."""
        return globus_sdk.FlowsClient(app=self.app)

    def specific_flow_client(self, flow_id: str) -> globus_sdk.SpecificFlowClient:
        """A SpecificFlowClient for ``flow_id`` (its run scope joins the app's needs)."""
        return globus_sdk.SpecificFlowClient(flow_id, app=self.app)

    def search_client(self) -> globus_sdk.SearchClient:
        """A SearchClient on this app."""
        return globus_sdk.SearchClient(app=self.app)

    def transfer_client(self) -> globus_sdk.TransferClient:
        """A TransferClient on this app."""
        return globus_sdk.TransferClient(app=self.app)

    def compute_client(self) -> Any:
        """A Globus Compute client on this app (code serialized like gladier: DillCodeSource)."""
        from globus_compute_sdk import Client
        from globus_compute_sdk.serialize import DillCodeSource

        strategy = DillCodeSource()  # type: ignore[no-untyped-call]
        return Client(do_version_check=False, code_serialization_strategy=strategy, app=self.app)
