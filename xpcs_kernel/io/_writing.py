"""Helpers shared by the frame writers: atomic replace and chunk iteration."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = ["FramesLike", "atomic_path", "iter_frame_blocks"]

#: Frames to write: one ``(N, H, W)`` array, or an iterable of ``(n, H, W)`` chunks.
FramesLike = NDArray[Any] | Iterable[NDArray[Any]]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise UsageError(f"directory {target.parent} does not exist", argument="path")
    while True:  # an exclusive create honours the umask (mkstemp would force 0600)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            with open(tmp, "xb"):
                break
        except FileExistsError:
            continue
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def iter_frame_blocks(frames: FramesLike, *, block_frames: int = 256) -> Iterator[NDArray[Any]]:
    """Yield ``(n, H, W)`` blocks from an array or an iterable of chunks.

    All blocks are checked to be 3-d with the same frame shape and dtype kind.
    """
    if isinstance(frames, np.ndarray):
        if frames.ndim != 3:
            raise UsageError(f"must have shape (N, H, W), got {frames.shape}", argument="frames")
        for start in range(0, frames.shape[0], block_frames):
            yield frames[start : start + block_frames]
        return
    shape: tuple[int, ...] | None = None
    for block in frames:
        block = np.asarray(block)
        if block.ndim == 2:
            block = block[np.newaxis]
        if block.ndim != 3:
            raise UsageError(
                f"each chunk must have shape (n, H, W), got {block.shape}", argument="frames"
            )
        if shape is None:
            shape = block.shape[1:]
        elif block.shape[1:] != shape:
            raise UsageError(
                f"chunk frame shape {block.shape[1:]} differs from the first chunk's {shape}",
                argument="frames",
            )
        yield block


def check_integer_range(block: NDArray[Any], high: int, *, what: str) -> None:
    """Raise :class:`UsageError` unless ``block`` holds integers in ``[0, high]``."""
    if block.size == 0:
        return
    if block.dtype.kind == "f":
        if not np.array_equal(block, np.round(block)):
            raise UsageError(f"{what} needs integer values", argument="frames")
    elif block.dtype.kind not in ("u", "i"):
        raise UsageError(f"{what} needs integer values, got {block.dtype}", argument="frames")
    low, top = block.min(), block.max()
    if low < 0 or top > high:
        raise UsageError(
            f"{what} holds values in [0, {high}], got [{low}, {top}]", argument="frames"
        )
