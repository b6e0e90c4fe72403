"""Results of the benchmark: table rows, g2 comparisons and the printed tables."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_data import DataSpec, theory_g2
from peers import read_qmap_arrays


@dataclass
class Row:
    """One line of the table: one code on one workload."""

    workload: str
    code: str
    size: str = ""
    pixel_frames: int = 0
    corr_s: float | None = None
    total_s: float | None = None
    rss_mib: float | None = None
    jit_s: float | None = None
    dg2_short: float | None = None
    dg2_all: float | None = None
    dtheory: float | None = None
    note: str = ""

    @property
    def corr_rate(self) -> float | None:
        return self.pixel_frames / self.corr_s if self.corr_s and self.pixel_frames else None

    @property
    def total_rate(self) -> float | None:
        return self.pixel_frames / self.total_s if self.total_s and self.pixel_frames else None


@dataclass
class G2:
    """Delays (frames) and g2 (n_tau, n_dynamic) of one code."""

    delays: np.ndarray
    g2: np.ndarray


def load_g2(path: Path) -> G2:
    with np.load(path) as z:
        return G2(np.asarray(z["delays"], np.int64), np.asarray(z["g2"], np.float64))


def skbeam_to_dynamic(path: Path, qmap: Path) -> G2:
    """Reduce scikit-beam's per-static-bin g2 to dynamic bins (mean of static g2)."""
    with np.load(path) as z:
        delays, g2s, labels = z["delays"], z["g2_static"], z["static_labels"]
    maps = read_qmap_arrays(str(qmap))
    n_dyn = int(maps["dqmap"].max())
    dyn_of = np.zeros(int(maps["sqmap"].max()) + 1, dtype=np.int64)
    sel = maps["sqmap"] > 0
    dyn_of[maps["sqmap"][sel]] = maps["dqmap"][sel]
    out = np.full((g2s.shape[0], n_dyn), np.nan)
    with np.errstate(invalid="ignore"):
        for d in range(1, n_dyn + 1):
            cols = np.flatnonzero(dyn_of[labels] == d)
            if cols.size:
                out[:, d - 1] = np.nanmean(g2s[:, cols], axis=1)
    return G2(np.asarray(delays, np.int64), out)


def g2_diff(ref: G2, other: G2, max_delay: int | None = None) -> float | None:
    """max |g2_ref - g2_other| over common delays >= 1 and common dynamic bins."""
    common = np.intersect1d(ref.delays, other.delays)
    common = common[common >= 1]
    if max_delay is not None:
        common = common[common <= max_delay]
    if common.size == 0:
        return None
    ir = np.searchsorted(ref.delays, common)
    io = np.searchsorted(other.delays, common)
    n = min(ref.g2.shape[1], other.g2.shape[1])
    a, b = ref.g2[ir, :n], other.g2[io, :n]
    ok = np.isfinite(a) & np.isfinite(b) & (a != 0) & (b != 0)
    return float(np.max(np.abs(a - b)[ok])) if ok.any() else None


def theory_diff(spec: DataSpec, g2: G2, max_delay: int = 8) -> float | None:
    """Mean |g2 - analytic g2| over delays 1..max_delay and all dynamic bins."""
    if spec.tiled:
        return None
    sel = (g2.delays >= 1) & (g2.delays <= max_delay)
    if not sel.any():
        return None
    th = theory_g2(spec, g2.delays[sel].astype(float))
    n = min(th.shape[1], g2.g2.shape[1])
    return float(np.nanmean(np.abs(g2.g2[sel, :n] - th[:, :n])))


def compare_rows(rows: list[tuple[Row, G2 | None]], spec: DataSpec) -> None:
    """Fill the g2 columns: differences to the first code that has a g2."""
    ref = next((g for _, g in rows if g is not None), None)
    for row, g in rows:
        if g is None:
            continue
        row.dtheory = theory_diff(spec, g)
        if ref is not None and g is not ref:
            row.dg2_short = g2_diff(ref, g, max_delay=8)
            row.dg2_all = g2_diff(ref, g)


def _fmt(v: float | None, fmt: str) -> str:
    return "-" if v is None or not math.isfinite(v) else format(v, fmt)


COLUMNS = (
    "code",
    "correlate s",
    "px-frames/s (corr)",
    "whole s",
    "px-frames/s (whole)",
    "peak RSS MiB",
    "JIT s",
    "max Δg2 (τ≤8)",
    "max Δg2 (all τ)",
    "mean dev. from theory (τ≤8)",
    "note",
)


def _cells(row: Row) -> list[str]:
    return [
        row.code,
        _fmt(row.corr_s, ".2f"),
        _fmt(row.corr_rate, ".3g"),
        _fmt(row.total_s, ".2f"),
        _fmt(row.total_rate, ".3g"),
        _fmt(row.rss_mib, ".0f"),
        _fmt(row.jit_s, ".2f"),
        _fmt(row.dg2_short, ".1e"),
        _fmt(row.dg2_all, ".1e"),
        _fmt(row.dtheory, ".1e"),
        row.note,
    ]


def _groups(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    """Rows grouped by workload (in order), titled with the data size."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.workload, []).append(row)
    out = []
    for name, members in groups.items():
        size = next((r.size for r in members if r.size), "")
        out.append((f"{name} ({size})" if size else name, members))
    return out


def print_table(rows: list[Row]) -> None:
    """One rich table per workload, on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # a terminal gets its own width (rich folds cells); a file or pipe gets a wide page
    console = Console(width=None if sys.stdout.isatty() else 220)
    for title, members in _groups(rows):
        table = Table(title=title, title_justify="left")
        for i, name in enumerate(COLUMNS):
            if i == 0:
                table.add_column(name, overflow="fold", min_width=18)
            elif i == len(COLUMNS) - 1:
                table.add_column(name, overflow="fold", min_width=20)
            else:
                table.add_column(name, overflow="fold", justify="right")
        for row in members:
            table.add_row(*(escape(c) for c in _cells(row)))
        console.print(table)


def markdown_table(rows: list[Row]) -> str:
    """The same tables in Markdown (for benchmarks/README.md)."""
    parts = []
    for title, members in _groups(rows):
        parts.append(f"#### {title}\n")
        parts.append("| " + " | ".join(COLUMNS) + " |")
        parts.append("|" + "|".join("---" for _ in COLUMNS) + "|")
        for r in members:
            parts.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |")
        parts.append("")
    return "\n".join(parts)
