"""A stand-in detector that writes a raw file while something follows it.

For tests, demos and ``benchmarks/live.py``:

* :func:`write_swmr` appends frames to an HDF5 dataset in SWMR mode (the way
  an area detector's HDF5 plugin does), ``frames_per_write`` at a time, one
  write every ``interval`` seconds, and logs ``frames wall_time`` per write;
* :func:`append_bytes` copies a finished file (IMM, Rigaku, anything) into a
  growing one in pieces of ``piece`` bytes, which cut frames and words
  anywhere, and can stop short to leave a truncated last frame.

Both create ``path + done_marker`` at the end when asked. Run as
``python -m xpcs_kernel.live.detector swmr|bytes ...`` to get a separate
writer process.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.io import DEFAULT_DATASET
from xpcs_kernel.metadata import METADATA_KEYS

__all__ = ["append_bytes", "main", "write_swmr"]


def _pace(start: float, step: int, interval: float) -> None:
    delay = start + step * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _finish(path: Path, done_marker: str | None) -> None:
    if done_marker:
        Path(str(path) + done_marker).touch()


def write_swmr(
    path: str | os.PathLike[str],
    frames: NDArray[Any],
    *,
    n_frames: int | None = None,
    frames_per_write: int = 1,
    interval: float = 0.01,
    frame_time: float = 1e-3,
    energy_kev: float | None = None,
    done_marker: str | None = None,
    log: str | os.PathLike[str] | None = None,
) -> None:
    """Write ``n_frames`` frames (cycling through ``frames``) to ``path`` in SWMR mode.

    Parameters
    ----------
    path
        The HDF5 file (created; the dataset is ``/entry/data/data``).
    frames : ndarray (N, H, W)
        The frames to write, repeated when ``n_frames > N``.
    n_frames
        Frames to write (default ``N``).
    frames_per_write, interval
        ``frames_per_write`` frames every ``interval`` seconds.
    frame_time, energy_kev
        Metadata written before the SWMR writes start.
    done_marker
        Create ``path + done_marker`` once the file is closed.
    log
        Append ``"<frames written> <time.time()>"`` after every flush.
    """
    total = len(frames) if n_frames is None else int(n_frames)
    out = Path(path)
    log_file = open(log, "a") if log is not None else None  # noqa: SIM115
    try:
        with h5py.File(out, "w", libver="latest") as f:
            f.create_dataset(METADATA_KEYS["frame_time"][0], data=np.float64(frame_time))
            if energy_kev is not None:
                f.create_dataset(METADATA_KEYS["energy_kev"][0], data=np.float64(energy_kev))
            shape = frames.shape[1:]
            ds = f.create_dataset(
                DEFAULT_DATASET,
                shape=(0, *shape),
                maxshape=(None, *shape),
                dtype=frames.dtype,
                chunks=(max(1, min(frames_per_write, 2**22 // max(1, frames[0].nbytes))), *shape),
            )
            f.swmr_mode = True
            start, written, step = time.monotonic(), 0, 0
            while written < total:
                n = min(frames_per_write, total - written)
                index = np.arange(written, written + n) % len(frames)
                ds.resize(written + n, axis=0)
                ds[written : written + n] = frames[index]
                ds.flush()
                written += n
                step += 1
                if log_file is not None:
                    log_file.write(f"{written} {time.time():.6f}\n")
                    log_file.flush()
                _pace(start, step, interval)
    finally:
        if log_file is not None:
            log_file.close()
    _finish(out, done_marker)


def append_bytes(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    piece: int,
    interval: float,
    stop_at: int | None = None,
    done_marker: str | None = None,
) -> None:
    """Copy ``source`` into ``path`` ``piece`` bytes every ``interval`` seconds.

    ``stop_at`` stops after that many bytes (a truncated last frame).
    """
    data = Path(source).read_bytes()
    end = len(data) if stop_at is None else min(int(stop_at), len(data))
    out = Path(path)
    with open(out, "ab") as handle:
        start, offset, step = time.monotonic(), 0, 0
        while offset < end:
            handle.write(data[offset : min(end, offset + piece)])
            handle.flush()
            offset += piece
            step += 1
            _pace(start, step, interval)
    _finish(out, done_marker)


def main(argv: list[str] | None = None) -> int:
    """``python -m xpcs_kernel.live.detector swmr FRAMES.npy OUT.h5 ... | bytes SRC OUT ...``."""
    parser = argparse.ArgumentParser(prog="python -m xpcs_kernel.live.detector")
    sub = parser.add_subparsers(dest="kind", required=True)
    swmr = sub.add_parser("swmr", help="append frames of a .npy stack to an HDF5 file (SWMR)")
    swmr.add_argument("frames", type=Path)
    swmr.add_argument("output", type=Path)
    swmr.add_argument("--n-frames", type=int, default=None)
    swmr.add_argument("--per-write", type=int, default=1)
    swmr.add_argument("--interval", type=float, default=0.01)
    swmr.add_argument("--frame-time", type=float, default=1e-3)
    swmr.add_argument("--energy", type=float, default=None)
    swmr.add_argument("--done-marker", default=None)
    swmr.add_argument("--log", type=Path, default=None)
    raw = sub.add_parser("bytes", help="copy a finished file into a growing one, piece by piece")
    raw.add_argument("source", type=Path)
    raw.add_argument("output", type=Path)
    raw.add_argument("--piece", type=int, required=True)
    raw.add_argument("--interval", type=float, default=0.01)
    raw.add_argument("--stop-at", type=int, default=None)
    raw.add_argument("--done-marker", default=None)
    args = parser.parse_args(argv)
    if args.kind == "swmr":
        write_swmr(
            args.output,
            np.load(args.frames, mmap_mode="r"),
            n_frames=args.n_frames,
            frames_per_write=args.per_write,
            interval=args.interval,
            frame_time=args.frame_time,
            energy_kev=args.energy,
            done_marker=args.done_marker,
            log=args.log,
        )
    else:
        append_bytes(
            args.source,
            args.output,
            piece=args.piece,
            interval=args.interval,
            stop_at=args.stop_at,
            done_marker=args.done_marker,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
