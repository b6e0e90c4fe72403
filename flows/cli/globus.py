"""``xpcs-flows login | logout | whoami | deploy``: the Globus side of the CLI.

The lead registers these click commands in :mod:`flows.cli.app`. A login manager
may be put in ``ctx.obj["login_manager"]`` (tests, embedding); otherwise one
is built from the environment and configuration
(:meth:`flows.globus.auth.XPCSLoginManager.from_environment`). No command prints a
token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flows.globus.auth import XPCSLoginManager, token_storage_path
from flows.globus.deploy import DeployableFlow, default_state_path, deploy, deployed_flow

__all__ = ["deploy_command", "login_command", "logout_command", "whoami_command"]

#: State-file keys of the two flows.
FLOW_NAMES = {False: "xpcs", True: "xpcs-batch"}
#: State-file key of the live flow (``deploy --live``; as flows.launch.engines names it).
LIVE_FLOW_NAME = "xpcs-live"


def _manager(ctx: click.Context) -> XPCSLoginManager:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    manager = obj.get("login_manager")
    if manager is None:
        manager = XPCSLoginManager.from_environment()
        ctx.ensure_object(dict)["login_manager"] = manager
    if not isinstance(manager, XPCSLoginManager):
        raise click.UsageError("ctx.obj['login_manager'] is not an XPCSLoginManager")
    return manager


def _flow_spec(batch: bool) -> DeployableFlow:
    from flows.xpcs.definition import xpcs_flow

    spec: DeployableFlow = xpcs_flow(batch=batch)
    return spec


def _live_flow_spec() -> DeployableFlow:
    from flows.xpcs.definition import xpcs_flow

    spec: DeployableFlow = xpcs_flow(live=True)
    return spec


def _deployed_flow_scopes(state_path: Path) -> list[str]:
    scopes = []
    for name in (*FLOW_NAMES.values(), LIVE_FLOW_NAME):
        record = deployed_flow(name, state_path=state_path)
        if record is not None:
            scopes.append(record.flow_scope)
    return scopes


def _describe(info: dict[str, Any]) -> str:
    who = info.get("username") or info.get("identity_id") or "(unknown)"
    lines = [f"logged in as {who}" + (f" ({info['name']})" if info.get("name") else "")]
    if info.get("confidential"):
        lines.append(f"  confidential client {info['client_id']} (no person logs in)")
    if info.get("linked_identities"):
        lines.append(f"  linked identities: {', '.join(info['linked_identities'])}")
    if info.get("resource_servers"):
        lines.append(f"  tokens for: {', '.join(info['resource_servers'])}")
    return "\n".join(lines)


@click.command("login")
@click.option("--force", is_flag=True, help="Log in again even if the stored tokens suffice.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Deploy state whose flows to consent to (default: the user's).",
)
@click.pass_context
def login_command(ctx: click.Context, force: bool, state_file: Path | None) -> None:
    """Log in to Globus (Auth, Flows, Compute, Transfer, Search and our deployed flows).

    A person logs in through a browser; with XPCS_FLOWS_CLIENT_ID and
    XPCS_FLOWS_CLIENT_SECRET set, the confidential client gets its tokens.
    """
    manager = _manager(ctx)
    manager.login_default(_deployed_flow_scopes(state_file or default_state_path()), force=force)
    path = token_storage_path(str(manager.app.client_id))
    click.echo(f"logged in; tokens stored in {path}")


@click.command("logout")
@click.pass_context
def logout_command(ctx: click.Context) -> None:
    """Revoke the stored Globus tokens and remove them from this machine."""
    servers = _manager(ctx).logout()
    if servers:
        click.echo(f"logged out: revoked and removed tokens for {', '.join(servers)}")
    else:
        click.echo("no stored tokens: nothing to revoke")


@click.command("whoami")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def whoami_command(ctx: click.Context, as_json: bool) -> None:
    """Show the Globus identity the stored tokens belong to."""
    info = _manager(ctx).whoami()
    click.echo(json.dumps(info, indent=2, sort_keys=True) if as_json else _describe(info))


@click.command("deploy")
@click.option("--batch", is_flag=True, help="Deploy the batch flow (many datasets per run).")
@click.option("--live", is_flag=True, help="Deploy the live flow (run --live).")
@click.option("--json", "as_json", is_flag=True, help="Print the deployment as JSON.")
@click.option("--force", is_flag=True, help="Register and update even if nothing changed.")
@click.option("--viewer", "viewers", multiple=True, help="Principal URN allowed to see the flow.")
@click.option("--starter", "starters", multiple=True, help="Principal URN allowed to run it.")
@click.option("--administrator", "administrators", multiple=True, help="Principal URN.")
@click.option("--run-manager", "run_managers", multiple=True, help="Principal URN.")
@click.option("--run-monitor", "run_monitors", multiple=True, help="Principal URN.")
@click.option("--subscription-id", default=None, help="Globus subscription of the flow.")
@click.option("--compute-group", default=None, help="Globus group to share functions with.")
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Deploy state file (default: ~/.local/share/xpcs-flows/globus-deploy.json).",
)
@click.pass_context
def deploy_command(
    ctx: click.Context,
    batch: bool,
    live: bool,
    as_json: bool,
    force: bool,
    viewers: tuple[str, ...],
    starters: tuple[str, ...],
    administrators: tuple[str, ...],
    run_managers: tuple[str, ...],
    run_monitors: tuple[str, ...],
    subscription_id: str | None,
    compute_group: str | None,
    state_file: Path | None,
) -> None:
    """Register the compute functions and create or update the flow, when changed."""
    if batch and live:
        raise click.UsageError("--batch and --live: there is no live batch flow")
    spec = _live_flow_spec() if live else _flow_spec(batch)
    manager = _manager(ctx)
    record = deploy(
        spec,
        name=LIVE_FLOW_NAME if live else FLOW_NAMES[batch],
        app=manager.app,
        state_path=state_file,
        flow_viewers=viewers,
        flow_starters=starters,
        flow_administrators=administrators,
        run_managers=run_managers,
        run_monitors=run_monitors,
        subscription_id=subscription_id,
        compute_group=compute_group,
        force=force,
    )
    if as_json:
        click.echo(json.dumps(record.to_dict(), indent=2, sort_keys=True))
        return
    click.echo(f"flow {record.name}: {record.flow_id} ({record.flow_action})")
    for fn in record.functions:
        click.echo(f"  {fn.key} = {fn.function_id} ({fn.action})")
    click.echo(f"state: {record.state_path}")
