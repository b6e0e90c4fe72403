"""Plots: a Globus Compute state that draws the standard XPCS figures as PNGs.

:func:`xpcs_plots` reads the APS result file written by the Correlate step and
draws, with matplotlib's Agg backend: g2 with its fit per dynamic q-bin,
SAXS 1D and 2D (log scale), the mean intensity against time and, when
the file holds them, the two-time maps (scales and labels from
:mod:`xpcs_kernel.plot_scales`). It is self-contained (imports in its
body) and returns only the PNG paths.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gladier import GladierBaseTool

from tools._states import (
    COMPUTE_V3_URL,
    HOUR,
    action_state,
    compute_output,
    failed_state_name,
    failure_state,
)

__all__ = ["PLOTS_OUTPUT", "BatchPlots", "Plots", "xpcs_plots"]

#: JSONPath of the single-dataset plot list.
PLOTS_OUTPUT = compute_output("Plots")


def xpcs_plots(
    result: str, output_dir: str, max_panels: int = 24, max_twotime: int | None = None
) -> dict[str, object]:
    """Draw the PNG figures of one result file.

    The choices (colour limits, log or linear axes, titles and legends) are
    those of :mod:`xpcs_kernel.plot_scales`: two-time maps on a viridis scale
    between the 1st and 99th percentiles of their off-diagonal entries, q with
    its unit in every title, the fitted correlation time and contrast in the
    g2 legends, a log intensity axis only where the values span a decade.

    Parameters
    ----------
    result
        The APS result file (``*_results.hdf``) on the compute endpoint.
    output_dir
        Where the PNGs are written (created).
    max_panels
        At most this many q-bins in the g2 figure (the first ones).
    max_twotime
        At most this many two-time maps (the first processed bins); ``None``:
        one per bin the file holds.

    Returns
    -------
    dict
        ``result`` and ``plots``: the PNG paths, in drawing order.

    Raises
    ------
    Exception
        An unreadable result file or a drawing error: the action fails.
    """
    import math
    import os
    import pathlib

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

    from xpcs_kernel import plot_scales as ps
    from xpcs_kernel.live.progress import frames_label
    from xpcs_kernel.result import read_result

    cmap = "viridis"
    res = read_result(result)
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = pathlib.Path(result).name.removesuffix(".hdf").removesuffix("_results")
    written: list[str] = []
    for stale in out.glob(f"{stem}_*.png"):  # figures of an earlier run with other options
        stale.unlink()

    def save(fig: Figure, name: str) -> None:
        target = out / f"{stem}_{name}.png"
        partial = out / f".{target.name}.partial.png"
        fig.savefig(partial, dpi=90)
        plt.close(fig)
        os.replace(partial, target)  # a PNG appears complete or not at all
        written.append(str(target))

    def plain_log_axis(axis: Axis) -> None:
        """Log ticks at 1, 2, 5 x 10^k written as plain numbers (no crowded minor labels)."""
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())

    meta = res.metadata
    step = meta.frame_time * meta.stride * meta.avg
    unit = ps.q_unit(res.qmap.get("map_units"))
    dyn_q = np.asarray(res.fit.get("q", res.qmap.get("dynamic_v_list_dim0", [])), dtype=float)

    def q_of(b: int) -> float:
        return float(dyn_q[b]) if b < dyn_q.size else float("nan")

    if res.g2 is not None and res.delays is not None:
        tau = res.delays.astype(float) * step
        n_bins = min(res.g2.shape[1], max_panels)
        cols = min(4, n_bins)
        rows = math.ceil(n_bins / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
        for b in range(n_bins):
            ax = axes[b // cols][b % cols]
            err = res.g2_err[:, b] if res.g2_err is not None else None
            ax.errorbar(tau, res.g2[:, b], yerr=err, fmt="o", ms=2, lw=0.6, label="data")
            if res.fit and bool(res.fit["success"][b]):
                t_fine = np.geomspace(max(tau[0], 1e-12), tau[-1], 200)
                gamma = float(res.fit["gamma"][b])
                model = res.fit["baseline"][b] + res.fit["beta"][b] * np.exp(
                    -2.0 * (gamma * t_fine) ** res.fit["alpha"][b]
                )
                tau_c = 1.0 / gamma if gamma > 0 else float("inf")
                legend = ps.fit_legend(tau_c, float(res.fit["beta"][b]))
                ax.plot(t_fine, model, "r-", lw=1, label=legend)
                ax.legend(fontsize=6.5, loc="upper right", frameon=False)
            ax.set_xscale("log")
            ax.set_title(ps.g2_title(q_of(b), unit), fontsize=9)
        for b in range(n_bins, rows * cols):
            axes[b // cols][b % cols].axis("off")
        fig.supxlabel("delay τ (s)")
        fig.supylabel("g2(q, τ)")
        fig.suptitle(f"g2, {frames_label(meta.parameters, meta.end - meta.begin)}", fontsize=9)
        fig.tight_layout()
        save(fig, "g2")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    q_static = np.asarray(res.qmap.get("static_v_list_dim0", []), dtype=float)
    has_q = q_static.size == res.saxs_1d.size
    x = q_static if has_q else np.arange(res.saxs_1d.size, dtype=float)
    y = np.asarray(res.saxs_1d, dtype=float)
    keep = np.isfinite(y) & (y > 0) & (x > 0) if has_q else np.isfinite(y)
    ax.plot(x[keep], y[keep], "o-", ms=3)
    if has_q:
        ax.set_xscale("log")
        plain_log_axis(ax.xaxis)
    if ps.log_spans(y[keep]):
        ax.set_yscale("log")
    else:
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.set_xlabel(f"q ({unit})" if has_q else "static bin")
    ax.set_ylabel("I (counts/pixel/frame)")
    ax.set_title("SAXS 1D: azimuthal average")
    fig.tight_layout()
    save(fig, "saxs_1d")

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = np.asarray(res.saxs_2d, dtype=float)
    shown = np.log10(np.where(image > 0, image, np.nan))
    vmin, vmax = ps.image_limits(shown)
    im = ax.imshow(shown, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(im, ax=ax, label="log10 I (counts/pixel/frame)")
    ax.set_xlabel("x (pixel)")
    ax.set_ylabel("y (pixel)")
    ax.set_title("SAXS 2D: mean frame")
    fig.tight_layout()
    save(fig, "saxs_2d")

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    frames, intensity = res.intensity_vs_time
    ax.plot(frames * step, intensity, lw=0.8)
    ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mean I (counts/pixel/frame)")
    ax.set_title("Intensity vs time")
    fig.tight_layout()
    save(fig, "intensity_vs_time")

    if res.twotime_bins is not None:
        bins = res.twotime_bins.tolist()
        for b in bins if max_twotime is None else bins[:max_twotime]:
            c2 = res.load_c2(int(b))
            vmin, vmax = ps.twotime_limits(c2)
            fig, ax = plt.subplots(figsize=(5, 4.2))
            extent = (0.0, c2.shape[0] * step, 0.0, c2.shape[0] * step)
            im = ax.imshow(c2, origin="lower", cmap=cmap, extent=extent, vmin=vmin, vmax=vmax)
            fig.colorbar(im, ax=ax, label="C(t1, t2)", extend="both")
            ax.set_xlabel("t1 (s)")
            ax.set_ylabel("t2 (s)")
            ax.set_title(ps.twotime_title(q_of(int(b)), unit), fontsize=10)
            fig.tight_layout()
            save(fig, f"twotime_bin{b}")
    return {"result": str(result), "plots": written}


def _plots_fragment(batch: bool) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "endpoint_id.$": "$.input.compute_endpoint",
        "user_endpoint_config.$": "$.input.user_endpoint_config",
    }
    if batch:
        parameters["tasks.$"] = "$.input.plan.plots_tasks"
        comment = "Draw the figures of every dataset of the batch (one Compute task each)"
    else:
        parameters["tasks"] = [
            {
                "function_id.$": "$.input.xpcs_plots_function_id",
                "kwargs": {
                    "result.$": f"{compute_output('Correlate')}.output",
                    "output_dir.$": "$.Paths.compute_plots",
                },
            }
        ]
        comment = "Draw g2 with fits, SAXS 1D/2D, intensity vs time and two-time maps (PNG)"
    return {
        "StartAt": "Plots",
        "States": {
            "Plots": action_state(
                "Plots",
                action_url=COMPUTE_V3_URL,
                parameters=parameters,
                wait_time=24 * HOUR,
                comment=comment,
            ),
            failed_state_name("Plots"): failure_state("Plots"),
        },
    }


class Plots(GladierBaseTool):  # type: ignore[misc]
    """Compute v3 state running :func:`xpcs_plots` on the Correlate step's result file."""

    flow_definition: ClassVar[dict[str, Any]] = _plots_fragment(batch=False)
    compute_functions: ClassVar[list[Any]] = [xpcs_plots]
    required_input: ClassVar[list[str]] = ["compute_endpoint", "user_endpoint_config"]
    flow_input: ClassVar[dict[str, Any]] = {}


class BatchPlots(GladierBaseTool):  # type: ignore[misc]
    """Compute v3 fan-out of :func:`xpcs_plots`, one task per dataset of the batch."""

    flow_definition: ClassVar[dict[str, Any]] = _plots_fragment(batch=True)
    compute_functions: ClassVar[list[Any]] = [xpcs_plots]
    required_input: ClassVar[list[str]] = ["compute_endpoint", "user_endpoint_config", "plan"]
    flow_input: ClassVar[dict[str, Any]] = {}
