"""Recognise a frame file by its content and open it as a :class:`FrameSource`.

Detection looks at the bytes, never only at the name:

* HDF5: the signature ``\\x89HDF\\r\\n\\x1a\\n`` at offset 0 (or 512, 1024, ...
  after a user block);
* IMM: a first header with plausible rows/cols and a ``dlen`` consistent
  with them, followed (when the file is long enough) by a second header of
  the same geometry;
* Rigaku: a size that is a multiple of 8 whose first 1024 words have
  non-decreasing frame numbers.

The file extension (``.h5``/``.hdf``/``.hdf5``/``.nxs``, ``.imm``, ``.bin``)
is a hint only: it breaks a tie between plausible formats, and when no
content matches it picks the reader that then reports what is wrong (a
truncated IMM file, out-of-order Rigaku frames, a corrupt HDF5 file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io.array import ArrayFrameSource
from xpcs_kernel.io.base import FrameSource
from xpcs_kernel.io.hdf5 import DEFAULT_DATASET, Hdf5FrameSource
from xpcs_kernel.io.imm import IMM_HEADER_BYTES, ImmFrameSource, read_imm_header
from xpcs_kernel.io.rigaku import RigakuFrameSource, decode_rigaku_words

__all__ = ["FrameFormat", "detect_format", "open_frames"]

FrameFormat = Literal["hdf5", "imm", "rigaku"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_USERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)
_EXTENSIONS: dict[str, FrameFormat] = {
    ".h5": "hdf5",
    ".hdf": "hdf5",
    ".hdf5": "hdf5",
    ".nxs": "hdf5",
    ".imm": "imm",
    ".bin": "rigaku",
}
_SNIFF_BYTES = 8192
_MAX_SIDE = 1 << 16


def _is_hdf5(head: bytes) -> bool:
    return any(head[o : o + 8] == _HDF5_SIGNATURE for o in _HDF5_USERBLOCK_OFFSETS)


def _plausible_imm_header(header: bytes) -> tuple[int, int, bool, int] | None:
    fields = read_imm_header(header)
    rows, cols, dlen = int(fields["rows"]), int(fields["cols"]), int(fields["dlen"])
    sparse = fields["compression"] != 0
    if not (0 < rows <= _MAX_SIDE and 0 < cols <= _MAX_SIDE):
        return None
    if (not sparse and dlen != rows * cols) or dlen > rows * cols:
        return None
    return rows, cols, sparse, dlen


def _is_imm(handle: BinaryIO, head: bytes, size: int) -> bool:
    if len(head) < IMM_HEADER_BYTES:
        return False
    first = _plausible_imm_header(head[:IMM_HEADER_BYTES])
    if first is None:
        return False
    rows, cols, sparse, dlen = first
    following = IMM_HEADER_BYTES + dlen * (6 if sparse else 2)
    if following + IMM_HEADER_BYTES <= size:
        # a second frame must follow with the same geometry
        handle.seek(following)
        second = _plausible_imm_header(handle.read(IMM_HEADER_BYTES))
        return second is not None and second[:3] == (rows, cols, sparse)
    return True


def _is_rigaku(head: bytes, size: int) -> bool:
    if size == 0 or size % 8:
        return False
    words = np.frombuffer(head[: len(head) // 8 * 8], dtype="<u8")
    frames, _, _ = decode_rigaku_words(words)
    return bool(np.all(np.diff(frames) >= 0))


def detect_format(path: str | os.PathLike[str]) -> FrameFormat:
    """Tell the format of a frame file from its content.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    {"hdf5", "imm", "rigaku"}
        The format the content matches. If the content is plausible as both
        IMM and Rigaku the extension decides (else IMM). If it matches none
        but the extension names a format, that format is returned, so that
        its reader reports precisely what is wrong with the file.

    Raises
    ------
    FrameFormatError
        If the file does not exist, cannot be read, or matches no format and
        has no known extension.
    """
    file = Path(path)
    candidates: list[FrameFormat] = []
    try:
        size = file.stat().st_size
        with open(file, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
            if _is_hdf5(head):
                return "hdf5"
            if _is_imm(handle, head, size):
                candidates.append("imm")
    except FileNotFoundError as err:
        raise FrameFormatError("file not found", path=file) from err
    except OSError as err:
        raise FrameFormatError(f"cannot read file: {err}", path=file) from err
    if _is_rigaku(head, size):
        candidates.append("rigaku")
    hint = _EXTENSIONS.get(file.suffix.lower())
    if len(candidates) == 1:
        return candidates[0]
    if candidates:  # both IMM and Rigaku look plausible: the extension decides
        return hint if hint in candidates else candidates[0]
    if hint is not None:
        # no content match: let the reader the name points to report what is wrong
        return hint
    raise FrameFormatError(
        "unrecognised frame file",
        path=file,
        offset=0,
        expected="HDF5, IMM or Rigaku 64-bit sparse content",
        found=f"{size} bytes starting {head[:8]!r}",
    )


def open_frames(
    source: str | os.PathLike[str] | NDArray[Any],
    *,
    dataset: str | None = None,
    format: str | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> FrameSource:
    """Open frames from a file (HDF5, IMM, Rigaku) or a numpy array.

    Parameters
    ----------
    source : str, PathLike or ndarray (N, H, W)
        A frame file or an array of frames.
    dataset : str, optional
        HDF5 dataset of the frames; default ``/entry/data/data``. HDF5 only.
    format : {"hdf5", "imm", "rigaku"}, optional
        Skip content detection (:func:`detect_format`).
    frame_shape : tuple of int, optional
        ``(H, W)``. Required knowledge for Rigaku files (default one 3M
        module, ``(512, 1024)``); for other sources it is checked against
        the data.

    Returns
    -------
    FrameSource
        Close it (or use it as a context manager) when done.

    Raises
    ------
    UsageError
        For an unknown ``format`` or an option that does not apply.
    FrameFormatError
        If the file is unrecognised or invalid, or ``frame_shape`` disagrees
        with the data.
    """
    if isinstance(source, np.ndarray):
        for name, value in (("dataset", dataset), ("format", format)):
            if value is not None:
                raise UsageError("does not apply to an in-memory array", argument=name)
        opened: FrameSource = ArrayFrameSource(source)
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise UsageError(
                f"expected a path or a numpy array, got {type(source).__name__}", argument="source"
            )
        if format is None:
            fmt = detect_format(source)
        elif format in get_args(FrameFormat):
            fmt = format  # type: ignore[assignment]
        else:
            raise UsageError(
                f"must be one of {get_args(FrameFormat)}, got {format!r}", argument="format"
            )
        if dataset is not None and fmt != "hdf5":
            raise UsageError(f"applies to HDF5 files only, not {fmt}", argument="dataset")
        if fmt == "hdf5":
            opened = Hdf5FrameSource(source, dataset=dataset or DEFAULT_DATASET)
        elif fmt == "imm":
            opened = ImmFrameSource(source)
        else:
            return RigakuFrameSource(source, frame_shape=frame_shape)
    if frame_shape is not None and tuple(frame_shape) != opened.frame_shape:
        opened.close()
        raise FrameFormatError(
            "frame shape differs from the frame_shape argument",
            path=opened.path,
            expected=str(tuple(frame_shape)),
            found=str(opened.frame_shape),
        )
    return opened
