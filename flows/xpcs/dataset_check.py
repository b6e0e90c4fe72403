"""Whether a raw file can be correlated with a q-map: the one check before any run starts.

``xpcs-flows run``, :func:`flows.launch.launch` (through
:func:`flows.launch.preflight.preflight`) and the watcher all call
:func:`check_against_qmap`, so they accept and refuse the same files.
"""

from __future__ import annotations

from pathlib import Path

from xpcs_kernel.errors import InputDataError, XPCSFlowsError

__all__ = ["check_against_qmap", "qmap_shape"]


def qmap_shape(qmap: Path) -> tuple[int, int]:
    """The detector shape ``(H, W)`` of the q-map file (read once at start-up)."""
    from xpcs_kernel.qmap.model import read_qmap

    shape = read_qmap(qmap).mask.shape
    return int(shape[0]), int(shape[1])


def check_against_qmap(raw: Path, shape: tuple[int, int], *, dataset: str | None = None) -> None:
    """Check that ``raw`` opens as frames of detector ``shape`` (HDF5 ``dataset`` if given).

    Raises
    ------
    XPCSFlowsError
        (:class:`~xpcs_kernel.errors.FrameFormatError` and kin) naming what is wrong.
    """
    from xpcs_kernel.io.detect import detect_format, open_frames

    try:
        fmt = detect_format(raw)
        # Rigaku files do not record their shape: the q-map's is the only one there is
        hint = shape if fmt == "rigaku" else None
        dset = dataset if fmt == "hdf5" else None
        with open_frames(raw, dataset=dset, format=fmt, frame_shape=hint) as source:
            if source.frame_shape != shape:
                raise InputDataError(
                    "the frame shape differs from the q-map's",
                    path=raw,
                    expected=str(shape),
                    found=str(source.frame_shape),
                )
            if source.n_frames < 1:
                raise InputDataError("the file holds no frames", path=raw)
    except XPCSFlowsError:
        raise
    except OSError as exc:
        raise InputDataError(f"cannot read frames: {exc}", path=raw) from exc
