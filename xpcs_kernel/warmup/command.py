"""``warmup``: compile the kernels once into numba's on-disk cache.

Run it where the package is installed (an image build, ``xpcs-flows deploy``,
an endpoint's ``worker_init``) with ``NUMBA_CACHE_DIR`` pointing at a
directory the workers share: later runs load the machine code (0.1-0.3 s)
instead of compiling it inside the first correlation (14-50 s on a 2-core
VM).
"""

from __future__ import annotations

import json
import os

import click

__all__ = ["warmup_command"]


@click.command("warmup")
@click.option(
    "--dtype",
    "dtypes",
    multiple=True,
    help="Frame dtype to prepare (repeatable) [default: uint8 uint16 uint32 float32].",
)
@click.option("--no-sparse", is_flag=True, help="Skip the event-list (sparse) path.")
@click.option("--no-twotime", is_flag=True, help="Skip the two-time correlator.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def warmup_command(
    dtypes: tuple[str, ...], no_sparse: bool, no_twotime: bool, as_json: bool
) -> None:
    """Compile the correlation kernels into numba's cache (NUMBA_CACHE_DIR)."""
    from xpcs_kernel.warmup.kernels import DETECTOR_DTYPES, warm_kernels
    from xpcs_kernel.warmup.startup import prefer_lean_startup

    prefer_lean_startup()

    wanted = dtypes or DETECTOR_DTYPES
    cache = os.environ.get("NUMBA_CACHE_DIR") or "(numba default: __pycache__ beside the sources)"
    if not as_json:
        click.echo(f"compiling kernels for {', '.join(wanted)} into {cache} ...", err=True)
    seconds = warm_kernels(wanted, sparse=not no_sparse, twotime=not no_twotime)
    if as_json:
        click.echo(json.dumps({"dtypes": list(wanted), "cache": cache, "seconds": seconds}))
    else:
        click.echo(f"kernels ready in {seconds:.1f} s")
