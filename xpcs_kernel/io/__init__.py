"""Raw detector frames: readers (HDF5, IMM, Rigaku, numpy), writers and chunked streaming.

Open any supported source with :func:`open_frames` (the format is detected
from the content), then stream the frames an analysis needs with
:func:`iter_chunks` and a :class:`FrameSelection`::

    with open_frames("scan.h5") as source:
        for chunk in iter_chunks(source, FrameSelection(stride=2, avg=4)):
            ...  # chunk.dense (n, H, W) or chunk.sparse (SparseFrames)

The writers (:func:`write_hdf5_frames`, :func:`write_imm`,
:func:`write_rigaku`) serve tests, demos and benchmarks; each writes to a
temporary name and renames at the end.
"""

from __future__ import annotations

from xpcs_kernel.io.array import ArrayFrameSource
from xpcs_kernel.io.base import FrameSelection, FrameSource, SparseFrames, dense_to_sparse
from xpcs_kernel.io.chunks import FrameChunk, average_sparse, iter_chunks
from xpcs_kernel.io.detect import FrameFormat, detect_format, open_frames
from xpcs_kernel.io.hdf5 import DEFAULT_DATASET, Hdf5FrameSource, write_hdf5_frames
from xpcs_kernel.io.imm import ImmFrameSource, write_imm
from xpcs_kernel.io.rigaku import RIGAKU_MODULE_SHAPE, RigakuFrameSource, write_rigaku

__all__ = [
    "DEFAULT_DATASET",
    "RIGAKU_MODULE_SHAPE",
    "ArrayFrameSource",
    "FrameChunk",
    "FrameFormat",
    "FrameSelection",
    "FrameSource",
    "Hdf5FrameSource",
    "ImmFrameSource",
    "RigakuFrameSource",
    "SparseFrames",
    "average_sparse",
    "dense_to_sparse",
    "detect_format",
    "iter_chunks",
    "open_frames",
    "write_hdf5_frames",
    "write_imm",
    "write_rigaku",
]
