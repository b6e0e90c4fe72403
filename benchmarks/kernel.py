"""Benchmark our XPCS kernel against peer codes (boost_corr on CPU, scikit-beam).

Run with the project's environment; peers run in ``.venv-bench`` (see
``benchmarks/setup_peers.sh``) and are left out when it is missing::

    .venv/bin/python benchmarks/kernel.py [--quick] [--workload NAME ...]

Every measurement runs in its own fresh process (ours: this script with
``--child``; peers: ``benchmarks/peers.py``), so peak RSS is per code. All
codes see the same synthetic data, written once to ``bench-data/`` (git
ignored) and reused. A missing piece is reported as ``n/a (reason)`` in the
table instead of stopping the run. ``benchmarks/README.md`` explains the
columns and holds measured numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_children import CHILD_TASKS
from bench_context import Context, machine_header, na_row
from bench_proc import ROOT
from bench_tables import markdown_table, print_table
from bench_workloads import WORKLOAD_FUNCS
from peers import emit

WORKLOADS = (
    "dense",
    "mpx",
    "command",
    "u16",
    "u16long",
    "u16mpx",
    "jit",
    "coldstart",
    "twotime",
    "sparse",
    "startup",
    "rss10k",
)
DEFAULT_WORKLOADS = ("dense", "mpx", "command", "u16", "u16long", "u16mpx", "jit", "twotime")
DEFAULT_WORKLOADS += ("coldstart", "sparse", "startup")


def _child_main(argv: list[str]) -> int:
    task, spec = argv[0], json.loads(argv[1])
    summary = CHILD_TASKS[task](spec)
    emit(summary)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="Small sizes (about a minute).")
    p.add_argument(
        "--workload",
        action="append",
        choices=WORKLOADS,
        help=f"Workload(s) to run (repeatable). Default: {' '.join(DEFAULT_WORKLOADS)}; "
        "rss10k is opt-in (writes a large file).",
    )
    p.add_argument(
        "--data-dir", type=Path, default=ROOT / "bench-data", help="Cache of generated inputs."
    )
    p.add_argument("--mpx-frames", type=int, default=500, help="Frames of the 1 Mpx workload.")
    p.add_argument(
        "--occupancy",
        type=float,
        action="append",
        help="Mean photons/pixel/frame of the sparse workload (repeatable). "
        "Default: 0.001 0.01 0.1 (--quick: 0.01).",
    )
    p.add_argument(
        "--sparse-format",
        action="append",
        choices=("rigaku", "imm"),
        help="File format(s) of the sparse workload (repeatable). Default: rigaku.",
    )
    p.add_argument(
        "--boost-max-memory",
        type=float,
        default=8.0,
        help="boost_corr's --max-memory in GB (its default 36 exceeds this machine).",
    )
    p.add_argument(
        "--rss-boost", action="store_true", help="Also run boost_corr in the rss10k workload."
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Run each measurement N times and keep the fastest (the CPU is shared).",
    )
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="Do not run our command once untimed first (then its times include JIT loading).",
    )
    p.add_argument("--json", type=Path, help="Also write the rows as JSON to this file.")
    p.add_argument("--markdown", action="store_true", help="Also print a Markdown table.")
    p.add_argument("--debug", action="store_true", help="Show child stderr and tracebacks.")
    return p


def _byte_compile_ours() -> None:
    """Our packages as an installed wheel has them: compiled to bytecode.

    An editable install in an environment with PYTHONDONTWRITEBYTECODE set (as
    this project's sandbox) would otherwise compile every imported module of
    ours from source in every timed command (0.06 s of a 1 s run).
    """
    packages = [str(ROOT / name) for name in ("xpcs_kernel", "flows", "tools", "deployments")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *packages],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return _child_main(argv[1:])
    args = _parser().parse_args(argv)
    print(machine_header(), flush=True)
    _byte_compile_ours()
    occ = tuple(args.occupancy or ((0.01,) if args.quick else (0.001, 0.01, 0.1)))
    with tempfile.TemporaryDirectory(prefix="xpcs-bench-") as work:
        ctx = Context(
            data_dir=args.data_dir,
            work=Path(work),
            quick=args.quick,
            debug=args.debug,
            boost_max_memory=args.boost_max_memory,
            mpx_frames=args.mpx_frames,
            sparse_occupancies=occ,
            sparse_formats=tuple(args.sparse_format or ("rigaku",)),
            rss_boost=args.rss_boost,
            warmup=not args.no_warmup,
            repeat=max(1, args.repeat),
        )
        for name in args.workload or DEFAULT_WORKLOADS:
            ctx.log(f"[{name}]")
            try:
                WORKLOAD_FUNCS[name](ctx)
            except Exception as err:  # a broken workload must not hide the others
                if args.debug:
                    traceback.print_exc()
                ctx.rows.append(na_row(name, "-", "", f"{type(err).__name__}: {err}"))
    print_table(ctx.rows)
    if args.markdown:
        print(markdown_table(ctx.rows))
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {**asdict(r), "corr_rate": r.corr_rate, "total_rate": r.total_rate}
                    for r in ctx.rows
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
