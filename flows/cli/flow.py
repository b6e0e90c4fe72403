"""CLI commands of the flow: ``flow-definition`` and ``catalog list|show``.

The lead registers them in :mod:`flows.cli.app`:
``cli.add_command(flow_definition_command, "flow-definition")`` and
``cli.add_command(catalog_command, "catalog")``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from flows.local import CatalogEntry, LocalCatalog, default_state_db
from flows.local.sqlite import connect
from flows.xpcs.definition import xpcs_flow
from xpcs_kernel.errors import UsageError

__all__ = ["catalog_command", "flow_definition_command", "list_catalog"]


@click.command("flow-definition")
@click.option("--batch", is_flag=True, help="The batch flow (many datasets in one run).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {definition, input_schema} as JSON (the default; kept for scripts).",
)
@click.option("--summary", is_flag=True, help="Print one line per state instead.")
def flow_definition_command(batch: bool, as_json: bool, summary: bool) -> None:
    """Print the flow definition and input schema exactly as deployed (JSON)."""
    spec = xpcs_flow(batch=batch)
    if summary and as_json:
        raise UsageError("choose one of --json and --summary", argument="--summary")
    if not summary:
        click.echo(
            json.dumps(
                {"definition": spec.definition, "input_schema": spec.input_schema}, indent=2
            )
        )
        return
    click.echo(f"{spec.title}: {spec.subtitle}")
    click.echo(f"keywords: {', '.join(spec.keywords)}")
    for name, state in spec.definition["States"].items():
        url = state.get("ActionUrl", "")
        click.echo(f"  {name:24s} {state['Type']:15s} {url}")


def _db_option(func: Any) -> Any:
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="State database (default: the per-user one).",
    )(func)


def list_catalog(db_path: Path, index: str | None = None) -> list[CatalogEntry]:
    """Every entry of the local catalog (of ``index``, or of every index), by index and subject."""
    catalog = LocalCatalog(db_path)
    if index is not None:
        return catalog.list(index)
    conn = connect(db_path)
    try:
        rows = conn.execute(
            "SELECT DISTINCT search_index FROM local_catalog ORDER BY search_index"
        ).fetchall()
    finally:
        conn.close()
    return [entry for (name,) in rows for entry in catalog.list(str(name))]


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "n/a"


def _entry_dict(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "index": entry.index,
        "subject": entry.subject,
        "version": entry.version,
        "created_time": entry.created_time,
        "updated_time": entry.updated_time,
        "visible_to": list(entry.visible_to),
        "content": dict(entry.content),
    }


@click.group("catalog", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Without a subcommand: list as JSON.")
@_db_option
@click.pass_context
def catalog_command(ctx: click.Context, as_json: bool, db_path: Path | None) -> None:
    """The local catalog (what the local engine's Search ingest published); alone: list it."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(catalog_list, index=None, as_json=as_json, db_path=db_path)


@catalog_command.command("list")
@click.option("--index", default=None, help="Only this search index.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@_db_option
def catalog_list(index: str | None, as_json: bool, db_path: Path | None) -> None:
    """List the catalog entries."""
    entries = list_catalog(db_path or default_state_db(), index)
    if as_json:
        click.echo(json.dumps([_entry_dict(e) for e in entries], indent=2))
        return
    from flows.runs.live_progress import live_in_progress

    going = live_in_progress(db_path or default_state_db())
    if not entries and not going:
        click.echo("the local catalog is empty")
    for e in entries:
        name = e.content.get("dataset", {}).get("name", "?")
        click.echo(f"{e.subject}  {name}  v{e.version}  {e.updated_time}")
    for run_id, dataset, progress in going:  # published once complete; the g2 so far meanwhile
        so_far = "no result yet" if progress is None else f"{progress.frames} frames so far"
        click.echo(f"(live, run {run_id})  {dataset}  {so_far}")
        if progress is not None:
            click.echo("\n".join("  " + line for line in progress.lines()[1:]))


@catalog_command.command("show")
@click.argument("subject")
@click.option("--index", default=None, help="The search index (default: any).")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@_db_option
def catalog_show(subject: str, index: str | None, as_json: bool, db_path: Path | None) -> None:
    """Show one catalog entry."""
    matches = [
        e for e in list_catalog(db_path or default_state_db(), index) if e.subject == subject
    ]
    if not matches:
        raise UsageError(f"no catalog entry with subject {subject!r}", argument="subject")
    entry = matches[0]
    if as_json:
        click.echo(json.dumps(_entry_dict(entry), indent=2))
        return
    content = entry.content
    click.echo(f"subject:   {entry.subject} (version {entry.version}, {entry.updated_time})")
    click.echo(f"dataset:   {content.get('dataset', {}).get('name')}")
    click.echo(f"facility:  {content.get('facility')}")
    pub = content.get("publication") or {}
    click.echo(f"published: {pub.get('id')}:{pub.get('path')}")
    for row in content.get("fitted_rates") or []:
        q, tau, beta = (_num(row.get(k)) for k in ("q", "tau_c", "beta"))
        click.echo(f"  q={q} 1/A  tau_c={tau} s  beta={beta}")
    click.echo(f"files:     {len(content.get('manifest') or [])}")
