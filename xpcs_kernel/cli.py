"""Kernel commands: ``correlate`` and ``synth``.

They are part of ``xpcs-flows`` and also run as ``python -m xpcs_kernel``
on endpoints where only the kernel's dependencies are installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from xpcs_kernel.live.follow_cli import follow_options, run_follow
from xpcs_kernel.options import BACKENDS, MODES, PATHS, CorrelationOptions

__all__ = ["correlate_command", "format_summary", "synth_command"]


def _progress_bar(total_label: str) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{total_label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=_console(stderr=True),
    )


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def format_summary(summary: Any) -> list[str]:
    """One screen of text for a :class:`~xpcs_kernel.pipeline.correlate.CorrelationSummary`."""
    t = summary.timings
    lines = [
        f"result      {summary.output}",
        f"frames      {summary.n_frames} x {summary.frame_shape[0]}x{summary.frame_shape[1]} "
        f"({summary.n_pixels} correlated pixels, {summary.path} path)",
        f"bins        {summary.n_dynamic} dynamic, {summary.n_static} static",
        f"time        total {t.get('total', 0):.2f} s (compile {t.get('compile', 0):.2f}, "
        f"read {t.get('read', 0):.2f}, SAXS {t.get('saxs', 0):.2f}, "
        f"correlate {t.get('correlate', 0):.2f}, two-time {t.get('twotime', 0):.2f}, "
        f"fit {t.get('fit', 0):.2f}, write {t.get('write', 0):.2f})",
        f"throughput {summary.correlation_rate:.3g} pixel-frames/s correlating, "
        f"{summary.overall_rate:.3g} overall",
    ]
    if summary.fit:
        lines.append(f"{'bin':>4} {'q (1/A)':>10} {'tau_c (s)':>11} {'contrast':>9}  fit")
        for row in summary.fit:
            lines.append(
                f"{row['bin']:>4} {row['q']:>10.5f} {row['tau_c']:>11.4g} "
                f"{row['beta']:>9.4f}  {'ok' if row['success'] else 'failed'}"
            )
    if summary.diffusion:
        d = summary.diffusion
        lines.append(f"diffusion   D = {d['D']:.4g} +- {d['D_err']:.2g} A^2/s (Gamma = D q^2)")
    return lines


@click.command("correlate")
@click.argument("raw", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--qmap",
    "qmap",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="q-map file (pySimpleMask /qmap layout or legacy /data layout).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Result file to write (APS layout); appears atomically.",
)
@click.option("--mode", type=click.Choice(MODES), default="multitau", show_default=True)
@click.option("--begin", type=int, default=0, show_default=True, help="First frame (0-based).")
@click.option("--end", type=int, default=None, help="Stop before this frame [default: last].")
@click.option("--stride", type=int, default=1, show_default=True, help="Use every N-th frame.")
@click.option("--avg", type=int, default=1, show_default=True, help="Average groups of N frames.")
@click.option(
    "--frame-time",
    type=float,
    default=None,
    help="Seconds between frames [default: from the raw file].",
)
@click.option(
    "--normalize-frame",
    is_flag=True,
    help="Divide each frame by its mean intensity (beam drift correction).",
)
@click.option(
    "--dataset", default=None, help="HDF5 dataset of the frames [default: /entry/data/data]."
)
@click.option(
    "--twotime-bins",
    default=None,
    help="Comma-separated 0-based dynamic bins for two-time [default: all].",
)
@click.option(
    "--path",
    "kernel_path",
    type=click.Choice(PATHS),
    default="auto",
    show_default=True,
    help="Multi-tau kernel: dense, sparse, or chosen by occupancy.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="numba",
    show_default=True,
    help="Kernel backend: numba (CPU), torch (GPU; the xpcs-flows[gpu] extra) or auto "
    "(torch where torch sees a GPU, else numba).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="torch device: auto (a GPU if present), cpu, cuda[:N] (NVIDIA/AMD) or xpu[:N] (Intel).",
)
@click.option("--no-fit", is_flag=True, help="Skip the g2 fits.")
@click.option(
    "--allow-saturated", is_flag=True, help="Accept saturated pixel values instead of failing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@follow_options
def correlate_command(
    raw: Path,
    qmap: Path,
    output: Path,
    mode: str,
    begin: int,
    end: int | None,
    stride: int,
    avg: int,
    frame_time: float | None,
    normalize_frame: bool,
    dataset: str | None,
    twotime_bins: str | None,
    kernel_path: str,
    backend: str,
    device: str,
    no_fit: bool,
    allow_saturated: bool,
    as_json: bool,
    quiet: bool,
    follow: bool,
    **follow_args: Any,
) -> None:
    """Correlate RAW frames with a q-map and write the APS result file.

    With --follow, RAW may still be written: the result file is replaced with
    the results so far every --update seconds until the writer's done marker
    appears or no frame arrives for --idle seconds.
    """
    from xpcs_kernel.digest import start_sha256

    # the provenance hash runs on the second core while numba and the kernels import
    raw_sha256 = None if follow else start_sha256(raw)

    from xpcs_kernel.errors import UsageError
    from xpcs_kernel.pipeline.correlate import correlate_file
    from xpcs_kernel.warmup.startup import prefer_lean_startup

    prefer_lean_startup()  # a command process: numba's set-up skips scipy and cffi

    bins: tuple[int, ...] | None = None
    if twotime_bins:
        try:
            bins = tuple(int(b) for b in twotime_bins.split(","))
        except ValueError:
            raise UsageError(
                f"expected comma-separated integers, got {twotime_bins!r}",
                argument="--twotime-bins",
            ) from None
    options = CorrelationOptions(
        mode=mode,  # type: ignore[arg-type]
        begin=begin,
        end=end,
        stride=stride,
        avg=avg,
        frame_time=frame_time,
        normalize_frame=normalize_frame,
        dataset=dataset,
        twotime_bins=bins,
        path=kernel_path,  # type: ignore[arg-type]
        fit=not no_fit,
        allow_saturated=allow_saturated,
        backend=backend,  # type: ignore[arg-type]
        device=device,
    )
    if not quiet:  # the bar stands still while numba compiles: say why first
        from xpcs_kernel.compile_notice import announce_first_run

        announce_first_run(sys.stderr)
    show_bar = not quiet and not as_json and sys.stderr.isatty()
    if follow:
        summary = run_follow(raw, qmap, output, options, quiet=quiet or as_json, **follow_args)
    elif show_bar:
        bar = _progress_bar(raw.name)
        with bar:
            task = bar.add_task("correlate", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = correlate_file(
                raw, qmap, output, options=options, progress=progress, raw_sha256=raw_sha256
            )
    else:
        summary = correlate_file(raw, qmap, output, options=options, raw_sha256=raw_sha256)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in format_summary(summary):
            click.echo(line)


@click.command("synth")
@click.argument("raw_out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--qmap",
    "qmap_out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the matching q-map.",
)
@click.option("--frames", type=int, default=1000, show_default=True)
@click.option("--shape", type=(int, int), default=(128, 128), show_default=True, metavar="H W")
@click.option("--beta", type=float, default=0.2, show_default=True, help="Speckle contrast.")
@click.option(
    "--mean-count",
    type=float,
    default=2.0,
    show_default=True,
    help="Mean photons per pixel per frame.",
)
@click.option("--dynamic-bins", type=int, default=6, show_default=True)
@click.option("--static-bins", type=int, default=24, show_default=True)
@click.option(
    "--tau-c",
    type=(float, float),
    default=(2.0, 100.0),
    show_default=True,
    metavar="MIN MAX",
    help="Correlation times in frames (largest at smallest q).",
)
@click.option("--frame-time", type=float, default=1e-3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--compression",
    type=click.Choice(["none", "lz4", "bitshuffle", "gzip"]),
    default="lz4",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print the ground truth as JSON.")
def synth_command(
    raw_out: Path,
    qmap_out: Path,
    frames: int,
    shape: tuple[int, int],
    beta: float,
    mean_count: float,
    dynamic_bins: int,
    static_bins: int,
    tau_c: tuple[float, float],
    frame_time: float,
    seed: int,
    compression: str,
    as_json: bool,
) -> None:
    """Write a synthetic speckle dataset with known correlation times, and its q-map."""
    from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

    spec = SyntheticSpec(
        n_frames=frames,
        shape=shape,
        beta=beta,
        mean_count=mean_count,
        n_dynamic_q=dynamic_bins,
        n_static_q=static_bins,
        tau_c_range=tau_c,
        frame_time=frame_time,
        seed=seed,
    )
    data = write_synthetic(
        raw_out, qmap_out, spec, compression=None if compression == "none" else compression
    )
    truth: dict[str, Any] = {
        "raw": str(raw_out),
        "qmap": str(qmap_out),
        "frames": frames,
        "shape": list(shape),
        "beta": data.beta,
        "frame_time": frame_time,
        "tau_c_frames": [float(x) for x in data.tau_c],
        "q": [float(x) for x in data.qmap.dynamic_q],
    }
    if as_json:
        click.echo(json.dumps(truth, indent=2))
    else:
        click.echo(f"wrote {raw_out} ({frames} frames of {shape[0]}x{shape[1]}) and {qmap_out}")
        for q, tc in zip(truth["q"], truth["tau_c_frames"], strict=True):
            click.echo(f"  q = {q:.5f} 1/A   tau_c = {tc:.3g} frames")
