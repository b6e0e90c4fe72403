"""``xpcs-flows demo``: the main job, end to end, on this machine.

1. Synthesize a speckle dataset with known correlation times and its q-map
   (the "beamline" files).
2. Ask the facility selector where the job should run, with the reasons.
3. Run the XPCS flow (the same definition that is deployed to Globus) on the
   local engine: transfer in, correlate, plots, publication (catalog entry),
   with the run recorded in the per-user state database.
4. Print the result and plot paths, the catalog entry and the fitted rates
   next to the true ones.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import click

from xpcs_kernel.options import CorrelationOptions

__all__ = ["correlation_time_text", "demo_command", "run_demo"]


def _choose_facility(raw: Path, frames: int, pixels: int) -> dict[str, Any]:
    from deployments import FacilityChooser, JobRequest, load_deployments
    from flows.cli.decision_table import skipped_deployments

    request = JobRequest(
        dataset=raw.stem,
        bytes_in=raw.stat().st_size,
        frames=frames,
        pixels=pixels,
        allow_local=True,
    )
    decision = FacilityChooser().decide(request).to_dict()
    decision["skipped"] = skipped_deployments(load_deployments().problems)
    return decision


def run_demo(
    workdir: Path,
    *,
    frames: int,
    shape: tuple[int, int],
    seed: int,
    db_path: Path | None = None,
) -> dict[str, Any]:
    """Synthesize, choose a facility, run the flow locally; a JSON-friendly report."""
    from flows.xpcs.local import LocalFacility, run_local_flow
    from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

    workdir = workdir.resolve()
    beamline = workdir / "beamline"
    beamline.mkdir(parents=True, exist_ok=True)
    raw = beamline / "demo_raw.h5"
    qmap = beamline / "demo_qmap.h5"
    spec = SyntheticSpec(n_frames=frames, shape=shape, seed=seed)
    t0 = time.perf_counter()
    truth = write_synthetic(raw, qmap, spec, compression="lz4")
    t_synth = time.perf_counter() - t0

    decision = _choose_facility(raw, frames, shape[0] * shape[1])
    chosen = decision["chosen"]
    if chosen != "local":
        # the demo runs on the local engine; a configured remote site is reported, not used
        decision["note"] = f"{chosen} ranked first; the demo runs on the local engine"
    facility = LocalFacility.in_directory(
        workdir, name="local", beamline_root=beamline, allowed_roots=("/",)
    )
    from xpcs_kernel.compile_notice import CompileNotice

    t0 = time.perf_counter()
    notice = CompileNotice()  # the flow's correlation compiles the kernels on a first run
    with notice:
        result = run_local_flow(
            raw,
            qmap,
            workdir=workdir,
            facility=facility,
            db_path=db_path,
            options=CorrelationOptions(mode="both", frame_time=spec.frame_time),
            label="demo_raw @ local",
            tags=("demo", "engine:local"),
        )
    t_flow = time.perf_counter() - t0
    if result.status != "SUCCEEDED":
        raise click.ClickException(f"the flow failed: {json.dumps(result.failure)}")
    comparison = []
    for row, tau_true in zip(result.fitted_rates, truth.tau_c, strict=True):
        tau_fit_frames = row["tau_c"] / spec.frame_time
        comparison.append(
            {
                "bin": row["bin"],
                "q": row["q"],
                "tau_c_true_frames": float(tau_true),
                "tau_c_fit_frames": tau_fit_frames,
                "relative_error": tau_fit_frames / float(tau_true) - 1.0,
                "contrast_true": truth.beta,
                "contrast_fit": row["beta"],
            }
        )
    return {
        "raw": str(raw),
        "qmap": str(qmap),
        "synthesize_seconds": t_synth,
        "flow_seconds": t_flow,
        "facility": decision,
        "run_id": result.run_id,
        "status": result.status,
        "result": str(result.result_path),
        "plots": [str(p) for p in result.plot_paths],
        "published": [str(p) for p in result.published_files],
        "published_dir": str(result.published_dir),
        "catalog_subject": result.catalog_subject,
        "catalog_entry": (
            dataclasses.asdict(result.catalog_entry) if result.catalog_entry else None
        ),
        "summary": result.summary,
        "first_run_compile": notice.active,
        "comparison": comparison,
    }


def correlation_time_text(timings: dict[str, float], *, first_run: bool) -> str:
    """The correlation time, saying whether (or how much) compiling the kernels is in it."""
    text = f"{timings.get('correlate', 0):.2f} s"
    if "compile" in timings:  # the kernel reports its compile time separately
        return f"{text} (+ compiling {timings['compile']:.2f} s)"
    if first_run:
        return f"{text} (with compiling the kernels: first run)"
    return text


def _print_report(report: dict[str, Any]) -> None:
    from flows.cli.decision_table import decision_table

    echo = click.echo
    echo(f"synthesized {report['raw']} ({report['synthesize_seconds']:.1f} s)")
    decision = report["facility"]
    echo(f"facility: {decision['chosen']} (engine: local); where and why:")
    for line in decision_table(decision, decision.get("skipped")):
        echo(line)
    if "note" in decision:
        echo(f"  note: {decision['note']}")
    echo(f"run {report['run_id']}: {report['status']} in {report['flow_seconds']:.1f} s")
    summary = report["summary"]
    timings = summary.get("timings", {})
    echo(f"result   {report['result']}")
    echo(
        f"         {summary['n_frames']} frames, {summary['n_pixels']} pixels, "
        f"correlation {correlation_time_text(timings, first_run=report['first_run_compile'])}, "
        f"{summary.get('correlation_rate', 0):.3g} pixel-frames/s"
    )
    for plot in report["plots"]:
        echo(f"plot     {plot}")
    echo(f"catalog  {report['catalog_subject']}")
    echo(f"         ({len(report['published'])} files published)")
    echo("fitted vs true correlation time (frames) and contrast:")
    for row in report["comparison"]:
        echo(
            f"  bin {row['bin']}  q={row['q']:.5f}  true {row['tau_c_true_frames']:8.2f}  "
            f"fit {row['tau_c_fit_frames']:8.2f} ({row['relative_error']:+.1%})  "
            f"contrast {row['contrast_fit']:.3f} (true {row['contrast_true']:.3f})"
        )


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Where the dataset, the facility staging and publication areas go.",
)
@click.option("--frames", type=int, default=2000, show_default=True)
@click.option("--shape", type=(int, int), default=(128, 128), show_default=True, metavar="H W")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="State database (runs, catalog) [default: the per-user one].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo_command(
    workdir: Path,
    frames: int,
    shape: tuple[int, int],
    seed: int,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Synthesize a dataset with known dynamics and run the whole XPCS flow on this machine."""
    report = run_demo(workdir, frames=frames, shape=shape, seed=seed, db_path=db_path)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report)
