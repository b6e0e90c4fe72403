"""Whole-command workloads on what detectors write: uint16 stacks that stream.

* ``u16``: 256x256 x 2000 uint16, LZ4, mean 2 photons/pixel/frame (fits the
  in-memory path: 262 MB);
* ``u16long``: 256x320 x 8000 uint16, LZ4, the ring q-map leaves ~38 % of the
  pixels out; 1.3 GB of frames: streamed chunk by chunk;
* ``u16mpx``: 1024x1024 x 1000 uint16, bitshuffle-LZ4 (Eiger's filter); 2 GB
  of frames: streamed.

Each runs ``xpcs-flows correlate`` and boost_corr's CLI on the same file
(:func:`bench_command_workloads.command_rows`).
"""

from __future__ import annotations

from bench_command_workloads import command_rows
from bench_context import Context
from bench_data import DataSpec, prepare

__all__ = ["wl_u16", "wl_u16long", "wl_u16mpx"]

_BOOST = (("boost_corr CLI (CPU), loader race fixed", True),)


def _run(ctx: Context, name: str, spec: DataSpec) -> None:
    files = prepare(spec, ctx.data_dir, npy=False, h5=True, log=ctx.log)
    before = len(ctx.rows)
    command_rows(ctx, name, files, files.raw_h5, boost_variants=_BOOST)
    note = f"{spec.dtype} {spec.compression}, q-map masks {spec.masked_fraction():.0%}"
    for row in ctx.rows[before:]:
        row.note = f"{row.note}; {note}".strip("; ")


def wl_u16(ctx: Context) -> None:
    """uint16 LZ4 256x256, mean 2 (2000 frames; --quick 500)."""
    n = 500 if ctx.quick else 2000
    _run(ctx, "uint16 LZ4", DataSpec(n, 256, 256, mean=2.0, dtype="uint16"))


def wl_u16long(ctx: Context) -> None:
    """uint16 LZ4 256x320 with a ring q-map masking ~38 %, streamed (8000 frames; --quick 2000)."""
    n = 2000 if ctx.quick else 8000
    _run(ctx, "uint16 LZ4, streamed", DataSpec(n, 256, 320, mean=2.0, dtype="uint16"))


def wl_u16mpx(ctx: Context) -> None:
    """uint16 bitshuffle 1024x1024 (1000 frames; --quick 200)."""
    n = 200 if ctx.quick else 1000
    spec = DataSpec(n, 1024, 1024, mean=0.5, dtype="uint16", compression="bitshuffle")
    _run(ctx, "uint16 bitshuffle 1 Mpx", spec)
