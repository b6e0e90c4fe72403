"""``xpcs-flows run | status | logs | cancel | list``: runs from the command line.

Exit codes (every command)
--------------------------
0
    Success: the run was started, is ACTIVE or SUCCEEDED, was canceled on request.
1
    The run FAILED (canceled runs included), or a Globus service failed (5xx, network).
2
    Usage or configuration error: bad arguments, unreadable q-map, invalid flow
    input, unknown facility, unknown run id, missing login or permission (401/403).
3
    ``--wait`` timed out: the run is still ACTIVE (it goes on).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from deployments import NoFacilityAvailable
from flows.cli.live import (
    follow_settings,
    live_lines,
    live_options,
    refuse_no_live_facility,
)
from flows.errors import GlobusPermissionError, GlobusServiceError, RunNotFound, RunWaitTimeout
from flows.runs.handle import Run
from flows.xpcs.validate import FlowInputError
from xpcs_kernel.errors import ConfigurationError, InputDataError, UsageError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "cancel_command",
    "list_command",
    "logs_command",
    "run_command",
    "schedule_command",
    "status_command",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3

F = TypeVar("F", bound=Callable[..., Any])


def _exit_codes(func: F) -> F:
    """Map our errors to the documented exit codes with one clear line on stderr."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RunWaitTimeout as exc:
            click.echo(f"timeout: {exc} (the run goes on; check it with `status`)", err=True)
            raise click.exceptions.Exit(EXIT_TIMEOUT) from None
        except (
            RunNotFound,
            GlobusPermissionError,
            UsageError,
            ConfigurationError,
            FlowInputError,
            InputDataError,
        ) as exc:
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(EXIT_USAGE) from None
        except GlobusServiceError as exc:
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(EXIT_FAILED) from None

    return cast(F, wrapper)


def _db_option(func: F) -> F:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="State database (runs, history) [default: the per-user one].",
    )(func)


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def _engine_option(func: F) -> F:
    return click.option(
        "--engine",
        type=click.Choice(["local", "globus"]),
        default=None,
        help="Look the run up on this engine (globus: runs this machine did not start).",
    )(func)


def _attach(run_id: str, db_path: Path | None, engine: str | None) -> Run:
    """The run's handle; a local run found without a driver is resumed by a detached process
    (this command exits soon)."""
    from flows.local import default_state_db
    from flows.runs.lookup import resolve_run_id

    run_id = resolve_run_id(run_id, db_path if db_path is not None else default_state_db())
    run = Run.from_id(run_id, db_path=db_path, engine=engine)
    run.resume_in = "process"
    return run


def _decision_lines(decision: Mapping[str, Any] | None) -> list[str]:
    """Why the run went where it did: the selector's ranked table, one line per facility."""
    if not decision or not decision.get("candidates"):
        return []
    from flows.cli.decision_table import decision_table

    lines = [f"  facility chosen: {decision.get('chosen')}"]
    return lines + decision_table(decision, decision.get("skipped"), indent="   ")


def _describe(info: dict[str, Any]) -> str:
    lines = [f"run {info['run_id']}: {info['status']}"]
    lines.append(f"  {info['label']}  (facility {info['facility']}, engine {info['engine']})")
    lines += _decision_lines(info.get("decision"))
    if info.get("duration_s") is not None:
        lines.append(f"  duration {info['duration_s']:.1f} s")
    if info["status"] == "ACTIVE" and info.get("current_state"):
        lines.append(f"  current state {info['current_state']}")
    lines += live_lines(info.get("live_progress"))
    if info.get("attempts"):
        lines.append(f"  after failed attempt(s) {', '.join(info['attempts'])}")
    outputs = info.get("outputs")
    if outputs:
        lines.append(f"  result  {outputs['result_path']}")
        lines += [f"  plot    {p}" for p in outputs["plot_paths"]]
        lines.append(f"  catalog {outputs['catalog_subject']}")
    failure = info.get("failure")
    if failure:
        error = failure.get("error") or failure.get("code") or "failed"
        cause = failure.get("cause") or failure.get("description") or ""
        state = failure.get("state") or failure.get("state_name")
        where = f" in {state}" if state else ""
        lines.append(f"  failure{where}: {error}: {str(cause)[:400]}")
    return "\n".join(lines)


def _finish(run: Run, as_json: bool) -> None:
    info = run.to_dict()
    click.echo(json.dumps(info, indent=2, default=str) if as_json else _describe(info))
    if info["status"] == "FAILED":
        raise click.exceptions.Exit(EXIT_FAILED)


@click.command("run")
@click.argument("raw", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--qmap", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--engine", type=click.Choice(["local", "globus"]), default="local", show_default=True
)
@click.option("--facility", default="auto", show_default=True, help="A deployment name or auto.")
@click.option("--label", default=None, help="Run label [default: '<dataset> @ <facility>'].")
@click.option("--tag", "tags", multiple=True, help="Extra run tag (repeatable).")
@click.option("--mode", type=click.Choice(["multitau", "twotime", "both"]), default=None)
@click.option(
    "--option",
    "raw_options",
    multiple=True,
    metavar="KEY=JSON",
    help="Another correlation option, e.g. --option stride=2 (repeatable).",
)
@click.option("--wait", is_flag=True, help="Wait for the end (failing over if needed).")
@click.option("--timeout", type=float, default=None, help="With --wait: seconds at most.")
@live_options
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local facilities' directories [default: next to the database].",
)
@_db_option
@_json_option
@_exit_codes
def run_command(
    raw: Path,
    qmap: Path,
    engine: str,
    facility: str,
    label: str | None,
    tags: Sequence[str],
    mode: str | None,
    raw_options: Sequence[str],
    wait: bool,
    timeout: float | None,
    live: bool,
    idle: float | None,
    workdir: Path | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Launch the XPCS flow for RAW (exit 0 started/succeeded, 1 failed, 2 usage, 3 timeout)."""
    from flows.launch.api import launch

    options: dict[str, Any] = {}
    for item in raw_options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {item!r}", argument="--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    if mode is not None:
        options["mode"] = mode
    follow = follow_settings(live, idle)
    try:
        run = launch(
            raw,
            qmap,
            facility=facility,
            engine=engine,  # type: ignore[arg-type]
            label=label,
            tags=tags,
            options=options,
            db_path=db_path,
            workdir=workdir,
            wait=wait,
            timeout=timeout,
            progress=not as_json,
            detach=True,
            live=live,
            follow=follow,
        )
    except NoFacilityAvailable as exc:
        if not live:
            raise
        refuse_no_live_facility(exc)  # nowhere to follow the file: exit 2
    if wait:
        _finish(run, as_json)
        return
    info = {
        "run_id": run.run_id,
        "engine": run.engine,
        "facility": run.facility,
        "label": run.label,
        "status": "ACTIVE",
        "decision": None if run.decision is None else dict(run.decision),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        click.echo(f"started run {run.run_id} on {run.facility} ({run.engine} engine)")
        click.echo(f"  {run.label}")
        for line in _decision_lines(info["decision"]):  # type: ignore[arg-type]
            click.echo(line)
        click.echo(f"  follow it with: xpcs-flows status {run.run_id}")


@click.command("status")
@click.argument("run_id", metavar="RUN_ID")
@click.option("--wait", is_flag=True, help="Wait for the run to end first.")
@click.option("--timeout", type=float, default=None, help="With --wait: seconds at most.")
@_engine_option
@_db_option
@_json_option
@_exit_codes
def status_command(
    run_id: str,
    wait: bool,
    timeout: float | None,
    engine: str | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Show run RUN_ID, or the one run whose id starts with it (exit 0 active/succeeded,
    1 failed, 2 unknown or ambiguous run, 3 timeout)."""
    run = _attach(run_id, db_path, engine)
    if wait:
        run.wait(progress=not as_json, timeout=timeout)
    _finish(run, as_json)


@click.command("logs")
@click.argument("run_id")
@_engine_option
@_db_option
@_json_option
@_exit_codes
def logs_command(run_id: str, engine: str | None, db_path: Path | None, as_json: bool) -> None:
    """Show the log entries of run RUN_ID, oldest first."""
    entries = _attach(run_id, db_path, engine).logs()
    if as_json:
        click.echo(json.dumps(entries, indent=2, default=str))
        return
    for entry in entries:
        details = entry.get("details") or {}
        state = details.get("state_name") if isinstance(details, dict) else None
        where = f" [{state}]" if state else ""
        click.echo(
            f"{entry.get('time', '')}  {entry.get('code', '')}{where}  "
            f"{entry.get('description', '')}"
        )


@click.command("cancel")
@click.argument("run_id")
@_engine_option
@_db_option
@_json_option
@_exit_codes
def cancel_command(run_id: str, engine: str | None, db_path: Path | None, as_json: bool) -> None:
    """Cancel run RUN_ID (it ends FAILED); exit 0 once the request is accepted."""
    run = _attach(run_id, db_path, engine)
    before = run.status()
    if before in ("SUCCEEDED", "FAILED"):
        raise UsageError(f"run {run_id} already ended ({before}); nothing to cancel")
    run.cancel()
    after = run.status()
    if as_json:
        click.echo(json.dumps({"run_id": run_id, "status": after, "canceled": True}))
    else:
        click.echo(f"cancel requested for run {run_id}: now {after}")


@click.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@_db_option
@_json_option
@_exit_codes
def list_command(limit: int, db_path: Path | None, as_json: bool) -> None:
    """Recent runs launched from this machine: facility, state, duration."""
    from flows.local import default_state_db
    from flows.runs.lookup import recent_runs

    db = db_path if db_path is not None else default_state_db()
    rows = []
    for recent in recent_runs(db, limit):  # launched runs and local runs (the demo's)
        run = Run.from_id(recent.run_id, db_path=db)
        entry = run.entry
        run.resume_in = "process"
        try:
            info = run.to_dict()
            status, duration = info["status"], info["duration_s"]
        except GlobusServiceError as exc:  # reported in the row, not hidden
            status, duration = f"unknown ({exc.http_status or 'no answer'})", None
        rows.append(
            {
                "run_id": entry.run_id,
                "dataset": entry.dataset,
                "facility": entry.facility,
                "engine": entry.engine,
                "attempt": entry.attempt,
                "status": status,
                "duration_s": duration,
                "label": entry.label,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no runs launched yet")
        return
    click.echo(
        f"{'run id':<36}  {'facility':<12} {'engine':<7} {'status':<10} {'dur':>8}  dataset"
    )
    for row in rows:
        dur = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f}s"
        click.echo(
            f"{row['run_id']:<36}  {row['facility']:<12} {row['engine']:<7} "
            f"{row['status']:<10} {dur:>8}  {row['dataset']}"
        )


def _schedule_command() -> click.Command:
    from flows.globus.timers import schedule_group

    return schedule_group


schedule_command = _schedule_command()
