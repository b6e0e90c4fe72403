"""Periodic reprocessing: a Globus Timer that runs the deployed batch flow.

``xpcs-flows schedule create INPUT.json --every SECONDS`` validates the batch
flow input (the same schema and checks as a direct run), then creates a
:class:`globus_sdk.FlowTimer` for the deployed ``xpcs-batch`` flow with the
Timers service (:class:`globus_sdk.TimersClient`); ``schedule list`` and
``schedule delete`` manage them. The run label of each timed run is the
timer's name, tagged ``timer``, ``facility:<name>`` and ``engine:globus``, with
the run monitors and managers of the input's facility deployment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import globus_sdk

from flows.errors import GlobusServiceError
from flows.globus.runs import LABEL_MAX, map_globus_error
from xpcs_kernel.errors import ConfigurationError, UsageError

if TYPE_CHECKING:
    from flows.globus.deploy import DeployRecord

__all__ = [
    "BATCH_FLOW_NAME",
    "MIN_INTERVAL_S",
    "create_batch_timer",
    "delete_timer",
    "list_timers",
    "schedule_group",
    "timers_client",
]

#: The deploy-state name of the batch flow (``xpcs-flows deploy --batch``).
BATCH_FLOW_NAME = "xpcs-batch"
#: The shortest interval accepted (the Timers service refuses shorter ones).
MIN_INTERVAL_S = 60


def timers_client(flow_id: str) -> globus_sdk.TimersClient:
    """The logged-in user's TimersClient, with consent for running ``flow_id``."""
    from flows.globus.auth import XPCSLoginManager

    client = globus_sdk.TimersClient(app=XPCSLoginManager.from_environment().app)
    return client.add_app_flow_user_scope(flow_id)


def _deployed_batch(state_path: Path | None) -> DeployRecord:
    from flows.globus.deploy import deployed_flow

    record = deployed_flow(BATCH_FLOW_NAME, state_path=state_path)
    if record is None:
        raise ConfigurationError(
            "the XPCS batch flow is not deployed; run `xpcs-flows deploy --batch` first",
            field="flow",
            expected=f"a deployed flow named {BATCH_FLOW_NAME}",
        )
    return record


def create_batch_timer(
    flow_input: Mapping[str, Any],
    *,
    name: str,
    interval_s: int,
    start: datetime | None = None,
    stop_after_runs: int | None = None,
    end: datetime | None = None,
    flow_id: str | None = None,
    function_ids: Mapping[str, str] | None = None,
    client: globus_sdk.TimersClient | None = None,
    state_path: Path | None = None,
) -> dict[str, Any]:
    """Create a timer that runs the batch flow with ``flow_input`` every ``interval_s``.

    Parameters
    ----------
    flow_input
        The batch flow's run input (``{"input": {...}}``); its ``plan`` is
        derived here (:func:`flows.xpcs.batch.with_plan`) and the whole validated.
    name
        The timer's name (also each run's label, at most 64 characters).
    interval_s
        Seconds between runs (at least :data:`MIN_INTERVAL_S`).
    start, stop_after_runs, end
        When to start (default now), and optionally stop after so many runs or at ``end``.
    flow_id, function_ids
        The deployed batch flow and its function ids (default: the deploy state).
    client
        The TimersClient (default: the logged-in user's, see :func:`timers_client`).

    Returns
    -------
    dict
        The timer document the service answered (``timer_id``, ``schedule`` ...).

    Raises
    ------
    UsageError, FlowInputError, ConfigurationError
        Bad schedule or input, or no deployed batch flow (nothing was sent).
    GlobusServiceError
        The Timers service refused the timer.
    """
    from flows.globus.runs import run_body
    from flows.xpcs.batch import with_plan
    from flows.xpcs.validate import validate_flow_input

    if not name or len(name) > LABEL_MAX:
        raise UsageError(f"must have 1 to {LABEL_MAX} characters", argument="name")
    if interval_s < MIN_INTERVAL_S:
        raise UsageError(f"must be at least {MIN_INTERVAL_S} s", argument="interval")
    if stop_after_runs is not None and end is not None:
        raise UsageError("give a number of runs or an end time, not both", argument="end")
    if stop_after_runs is not None and stop_after_runs < 1:
        raise UsageError("must be >= 1", argument="stop_after_runs")
    if function_ids is None or flow_id is None:
        record = _deployed_batch(state_path)
        flow_id = flow_id or record.flow_id
        function_ids = function_ids if function_ids is not None else record.function_ids
    body_input = dict(flow_input.get("input", {}))
    for key, value in function_ids.items():
        body_input.setdefault(key, value)
    checked = validate_flow_input(with_plan({"input": body_input}), batch=True)
    body = run_body(checked["input"], function_ids=function_ids)
    schedule_end: dict[str, Any] | globus_sdk.MissingType = globus_sdk.MISSING
    if stop_after_runs is not None:
        schedule_end = {"condition": "iterations", "iterations": stop_after_runs}
    elif end is not None:
        schedule_end = {"condition": "time", "datetime": end.isoformat()}
    schedule = globus_sdk.RecurringTimerSchedule(
        interval_s,
        start=start.isoformat() if start is not None else globus_sdk.MISSING,
        end=schedule_end,
    )
    facility = str(checked["input"]["facility"])
    request: dict[str, Any] = {
        "body": body,
        "label": name,
        "tags": ["timer", f"facility:{facility}", "engine:globus"],
        **_principals(facility),
    }
    timer = globus_sdk.FlowTimer(flow_id=flow_id, name=name, schedule=schedule, body=request)
    timers = client if client is not None else timers_client(flow_id)
    try:
        response = timers.create_timer(timer)
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="create_timer", flow_id=flow_id) from exc
    return dict(response.get("timer") or response.data)


def _principals(facility: str) -> dict[str, list[str]]:
    """Run monitors and managers of the deployment ``facility`` (none if it is unknown)."""
    from deployments import load_deployments

    found = load_deployments().deployments.get(facility)
    if found is None:
        return {}
    out = {"run_monitors": list(found.run_monitors), "run_managers": list(found.run_managers)}
    return {key: value for key, value in out.items() if value}


def list_timers(client: globus_sdk.TimersClient) -> list[dict[str, Any]]:
    """The user's timers (id, name, schedule, status, next run)."""
    try:
        response = client.list_jobs()
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="list_timers") from exc
    return [dict(job) for job in response.get("jobs", [])]


def delete_timer(timer_id: str, client: globus_sdk.TimersClient) -> dict[str, Any]:
    """Delete timer ``timer_id``; returns the service's answer."""
    try:
        response = client.delete_job(timer_id)
    except globus_sdk.GlobusError as exc:
        raise map_globus_error(exc, operation="delete_timer") from exc
    return dict(response.data)


def _client(ctx: click.Context, flow_id: str | None) -> globus_sdk.TimersClient:
    obj = ctx.find_root().obj if isinstance(ctx.find_root().obj, dict) else {}
    client = obj.get("timers_client")
    if client is not None:
        if not isinstance(client, globus_sdk.TimersClient):
            raise click.UsageError("ctx.obj['timers_client'] is not a TimersClient")
        return client
    if flow_id is None:
        from flows.globus.auth import XPCSLoginManager

        return globus_sdk.TimersClient(app=XPCSLoginManager.from_environment().app)
    return timers_client(flow_id)


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    code = 1 if isinstance(exc, GlobusServiceError) and exc.http_status not in (401, 403) else 2
    raise click.exceptions.Exit(code)


@click.group("schedule")
def schedule_group() -> None:
    """Globus Timers that run the batch flow periodically (create, list, delete)."""


@schedule_group.command("create")
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Timer name (and each run's label).")
@click.option("--every", "interval_s", type=int, required=True, help="Seconds between runs.")
@click.option("--start", type=click.DateTime(), default=None, help="First run [default: now].")
@click.option("--runs", "stop_after_runs", type=int, default=None, help="Stop after N runs.")
@click.option("--end", type=click.DateTime(), default=None, help="Stop at this time.")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create_command(
    ctx: click.Context,
    input_file: Path,
    name: str,
    interval_s: int,
    start: datetime | None,
    stop_after_runs: int | None,
    end: datetime | None,
    state_file: Path | None,
    as_json: bool,
) -> None:
    """Run the batch flow with INPUT_FILE (its JSON run input) every --every seconds."""
    from flows.xpcs.validate import FlowInputError

    try:
        flow_input = json.loads(input_file.read_text())
        flow_id = _deployed_batch(state_file).flow_id
        timer = create_batch_timer(
            flow_input,
            name=name,
            interval_s=interval_s,
            start=start,
            stop_after_runs=stop_after_runs,
            end=end,
            client=_client(ctx, flow_id),
            state_path=state_file,
        )
    except json.JSONDecodeError as exc:
        _fail(UsageError(f"{input_file} is not JSON: {exc}", argument="INPUT_FILE"))
        return
    except (UsageError, ConfigurationError, FlowInputError, GlobusServiceError) as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(timer, indent=2, default=str))
    else:
        click.echo(f"timer {timer.get('job_id') or timer.get('timer_id')} created: {name}")


@schedule_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """The timers of the logged-in user."""
    try:
        jobs = list_timers(_client(ctx, None))
    except GlobusServiceError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(jobs, indent=2, default=str))
        return
    for job in jobs:
        click.echo(f"{job.get('job_id')}  {job.get('name')}  {job.get('status', '')}")


@schedule_group.command("delete")
@click.argument("timer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def delete_command(ctx: click.Context, timer_id: str, as_json: bool) -> None:
    """Delete timer TIMER_ID."""
    try:
        answer = delete_timer(timer_id, _client(ctx, None))
    except GlobusServiceError as exc:
        _fail(exc)
        return
    click.echo(json.dumps(answer, default=str) if as_json else f"timer {timer_id} deleted")
