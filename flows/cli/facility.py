"""``xpcs-flows facilities`` and ``xpcs-flows simulate``.

``facilities`` shows every deployment, its live status and the ranked
decision the selector would make now for a job of the given size (with the
reason for each choice or exclusion); unconfigured descriptors are listed
with what to fill in. ``simulate`` runs the cross-facility simulation of
:mod:`deployments.simulate.run`.

The lead registers both in :mod:`flows.cli.app`; an authorizer for the Globus
Compute status route may be put in ``ctx.obj["compute_authorizer"]``.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import click

from deployments.chooser import FacilityChooser
from deployments.history import RunHistory
from deployments.registry import user_config_dir
from deployments.select import JobRequest
from deployments.simulate.model import SCENARIOS
from deployments.simulate.run import POLICIES, simulate

__all__ = ["facilities_command", "simulate_command"]


def _format_facilities(report: dict[str, Any]) -> str:
    lines = []
    header = f"{'rank':>4}  {'deployment':<12} {'state':<9} {'est. total':>10}  reasons"
    lines.append(header)
    for row in report["decision"]["candidates"]:
        rank = str(row["rank"]) if row["rank"] is not None else "-"
        total = f"{row['estimate']['total_s']:.0f} s"
        reasons = "; ".join(row["reasons"])
        mark = "" if row["eligible"] else "excluded: "
        lines.append(
            f"{rank:>4}  {row['facility']:<12} {row['state']:<9} {total:>10}  {mark}{reasons}"
        )
    chosen = report["decision"]["chosen"]
    lines.append("")
    lines.append(f"chosen: {chosen}" if chosen else "chosen: none (every deployment is excluded)")
    if report["unconfigured"]:
        lines.append("")
        lines.append(f"not configured (put the missing values in {report['config_dir']}):")
        for name, error in report["unconfigured"].items():
            text = textwrap.fill(
                error["message"],
                width=96,
                initial_indent="    ",
                subsequent_indent="      ",
                break_on_hyphens=False,
            )
            lines.append(f"  {name}:")
            lines.append(text)
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (never, unbounded) by ``null``: JSON has no Infinity/NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@click.command("facilities")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of your descriptors (default: $XPCS_FLOWS_CONFIG/deployments or "
    "~/.config/xpcs-flows/deployments).",
)
@click.option(
    "--bytes",
    "bytes_in",
    type=click.IntRange(min=0),
    default=2_000_000_000,
    show_default=True,
    help="Size of the raw data of the job to place.",
)
@click.option("--frames", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--pixels",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Pixels per frame.",
)
@click.option("--gpu", "needs_gpu", is_flag=True, help="The job needs a GPU.")
@click.option(
    "--backend",
    type=click.Choice(["numba", "torch", "auto"]),
    default="numba",
    show_default=True,
    help="Kernel backend of the job: torch and auto runs use each facility's GPU rates.",
)
@click.option("--no-local", is_flag=True, help="Do not consider the local deployment.")
@click.option("--no-history", is_flag=True, help="Use the descriptors' priors, not learned rates.")
@click.pass_context
def facilities_command(
    ctx: click.Context,
    as_json: bool,
    config_dir: Path | None,
    bytes_in: int,
    frames: int,
    pixels: int,
    needs_gpu: bool,
    backend: str,
    no_local: bool,
    no_history: bool,
) -> None:
    """Show the deployments, their live status and where a job would run now."""
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    history = None if no_history else RunHistory()
    try:
        chooser = FacilityChooser(
            config_dir=config_dir,
            history=history,
            authorizer=obj.get("compute_authorizer"),
        )
        request = JobRequest(
            dataset="(example job)",
            bytes_in=bytes_in,
            frames=frames,
            pixels=pixels,
            needs_gpu=needs_gpu,
            backend=backend,
            allow_local=not no_local,
        )
        report = chooser.overview(request)
        report["config_dir"] = str(config_dir or user_config_dir())
    finally:
        if history is not None:
            history.close()
    if as_json:
        click.echo(json.dumps(_json_safe(report), indent=2, allow_nan=False))
    else:
        click.echo(_format_facilities(report))


@click.command("simulate")
@click.option(
    "--scenario",
    "scenario_name",
    type=click.Choice(sorted(SCENARIOS)),
    default="paper",
    show_default=True,
)
@click.option(
    "--policy",
    type=click.Choice([*POLICIES, "all"]),
    default="all",
    show_default=True,
    help="oracle is a clairvoyant reference bound (knows every future outage), not a policy.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    default=None,
    help="Nodes per site (default: the scenario's assumption, 64).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def simulate_command(
    scenario_name: str, policy: str, seed: int, nodes: int | None, as_json: bool
) -> None:
    """Simulate placing XPCS jobs on three sites (measured Balsam figures) under each policy."""
    policies = list(POLICIES) if policy == "all" else [policy]
    result = simulate(scenario_name, policies, seed=seed, nodes=nodes)
    if as_json:
        click.echo(json.dumps(_json_safe(result), indent=2, allow_nan=False))
        return
    sites = result["scenario"]["sites"]
    click.echo(
        f"scenario {scenario_name}, seed {seed}, {result['scenario']['batches']} batches of "
        f"{result['scenario']['batch_size']} jobs, nodes per site "
        + ", ".join(f"{s['name']} {s['nodes']}" for s in sites)
    )
    click.echo(
        f"{'policy':<18} {'median s':>9} {'(done)':>8} {'p95 s':>9} {'jobs/min':>9} "
        f"{'in outage':>9} {'lost':>5} {'failovers':>9}"
    )
    for name, r in result["policies"].items():

        def fmt(v: float | None) -> str:
            return "never" if v is None else f"{v:.1f}"

        click.echo(
            f"{name:<18} {fmt(r['median_latency_s']):>9} "
            f"{fmt(r['median_latency_completed_s']):>8} {fmt(r['p95_latency_s']):>9} "
            f"{r['throughput_jobs_per_min']:>9.1f} {r['started_in_outage']:>9} "
            f"{r['lost']:>5} {r['failovers']:>9}"
        )
    for name, note in (("ours", ""), ("oracle", " [clairvoyant bound, not a policy]")):
        ratio = result.get(f"{name}_vs_shortest_backlog_median")
        done = result.get(f"{name}_vs_shortest_backlog_median_completed")
        if ratio is not None:
            line = f"{name} / shortest-backlog median latency: {ratio:.2f}"
            line += " (all jobs, lost = never)"
            if done is not None:
                line += f", {done:.2f} (completed jobs only)"
            click.echo(line + note)
