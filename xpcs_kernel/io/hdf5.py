"""HDF5 frame stacks: reader and writer.

Frames are an ``(N, H, W)`` dataset, by default ``/entry/data/data`` (the
APS 8-ID layout), of any unsigned/signed integer or float type, optionally
compressed with LZ4 (HDF5 filter 32004), bitshuffle (32008) or gzip.
:mod:`hdf5plugin` is imported here so the compression filters are registered
before any read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import h5py
import hdf5plugin
import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io._writing import FramesLike, atomic_path, iter_frame_blocks
from xpcs_kernel.io.array import check_frame_dtype
from xpcs_kernel.io.base import FrameSource, SparseFrames, dense_to_sparse

__all__ = ["DEFAULT_DATASET", "Hdf5FrameSource", "write_hdf5_frames"]

#: Where APS 8-ID HDF5 files keep the frames.
DEFAULT_DATASET = "/entry/data/data"

# HDF5 keeps decompressed chunks in a cache per dataset. Our reads go forward
# and, without a stride, end on chunk boundaries, so a chunk is decompressed
# once whatever the cache; the cache holds _CACHED_CHUNKS chunks so that reads
# that do end inside a chunk (strides, a frame selection) do not decompress it
# twice. A cache larger than that costs: HDF5 fills all of it before it evicts,
# fresh memory paid for page by page (64 MiB: 63 MiB more peak RSS and 0.05 s on
# a 256x256 x 2000 uint16 LZ4 command, 2-core VM, 2026-12-08).
_CACHED_CHUNKS = 4
_CHUNK_CACHE_MIN_BYTES = 2**20
_CHUNK_CACHE_SLOTS = 521  # a prime, ~100x the chunks the cache holds

Compression = Literal[None, "lz4", "bitshuffle", "gzip"]


def _describe_level(group: h5py.Group) -> str:
    names = []
    for name in sorted(group.keys()):
        try:
            item = group.get(name)
        except (OSError, KeyError):  # a dangling link: still name it
            names.append(f"{name} (unreadable)")
            continue
        if isinstance(item, h5py.Dataset):
            names.append(f"{name} (dataset {item.shape} {item.dtype})")
        else:
            names.append(f"{name} (group)")
    return ", ".join(names) if names else "nothing"


class Hdf5FrameSource(FrameSource):
    """Frames from an ``(N, H, W)`` HDF5 dataset.

    Parameters
    ----------
    path : str or PathLike
        The HDF5 file.
    dataset : str
        Path of the frame dataset inside the file.

    Raises
    ------
    FrameFormatError
        If the file is not readable HDF5 (truncated, corrupt), the dataset is
        missing (the message lists what exists at that level), is not 3-d,
        holds no frames or has a non-numeric type. ``key`` is the dataset.
    """

    def __init__(self, path: str | os.PathLike[str], *, dataset: str = DEFAULT_DATASET) -> None:
        self.path = Path(path)
        self.dataset_name = dataset
        self.is_sparse = False
        try:
            self._file: h5py.File | None = h5py.File(
                self.path,
                "r",
                rdcc_nbytes=_CHUNK_CACHE_MIN_BYTES,
                rdcc_nslots=_CHUNK_CACHE_SLOTS,
                rdcc_w0=1.0,
            )
        except FileNotFoundError as err:
            raise FrameFormatError("file not found", path=self.path) from err
        except OSError as err:
            raise FrameFormatError(
                f"cannot open as HDF5 (truncated or corrupt?): {err}", path=self.path
            ) from err
        try:
            self._dataset = self._find_dataset(self._file, dataset)
        except BaseException:
            self._file.close()
            raise

    def _find_dataset(self, file: h5py.File, name: str) -> h5py.Dataset:
        try:
            item = file.get(name)
        except (OSError, KeyError, ValueError) as err:
            raise FrameFormatError(
                f"cannot open dataset: {err}", path=self.path, key=name
            ) from err
        if item is None:
            parent = file
            parts = [p for p in name.split("/") if p]
            for part in parts[:-1]:
                child = parent.get(part)
                if not isinstance(child, h5py.Group):
                    break
                parent = child
            raise FrameFormatError(
                f"dataset not found; {parent.name} holds {_describe_level(parent)}",
                path=self.path,
                key=name,
            )
        if not isinstance(item, h5py.Dataset):
            raise FrameFormatError(
                f"is a group, not a dataset; it holds {_describe_level(item)}",
                path=self.path,
                key=name,
            )
        if item.ndim != 3:
            raise FrameFormatError(
                "frame dataset has the wrong rank",
                path=self.path,
                key=name,
                expected="shape (N, H, W)",
                found=str(item.shape),
            )
        n, height, width = item.shape
        if n == 0 or height == 0 or width == 0:
            raise FrameFormatError(
                "frame dataset holds no frames",
                path=self.path,
                key=name,
                expected="N, H, W >= 1",
                found=str(item.shape),
            )
        check_frame_dtype(item.dtype, path=self._label, key=name)
        self.frame_shape = (int(height), int(width))
        self.n_frames = int(n)
        self.dtype = item.dtype.newbyteorder("=")
        cache = _chunk_cache_bytes(item)
        if cache is None:
            return item
        del item  # closed first, so that the reopened dataset gets its own cache
        # by the path asked for: it follows soft and external links as file.get did
        # (item.name is the path inside the file that holds the data)
        return _open_with_chunk_cache(file, name, cache)

    def _ds(self) -> h5py.Dataset:
        if self._file is None:
            raise UsageError("the frame source is closed", argument="source")
        return self._dataset

    def preferred_read_frames(self) -> int:
        chunks = self._ds().chunks
        return int(chunks[0]) if chunks else 1

    def reads_whole_span(self, step: int) -> bool:
        # a chunked dataset decompresses whole chunks: when every chunk holds a kept
        # frame (step <= chunk depth), one read of the span costs no extra decoding
        return step <= self.preferred_read_frames() or super().reads_whole_span(step)

    def read_dense(self, start: int, stop: int) -> NDArray[Any]:
        self._check_range(start, stop)
        out = np.empty((stop - start, *self.frame_shape), dtype=self.dtype)
        self._read_into(out, start, stop)
        return out

    def read_dense_strided(self, start: int, stop: int, step: int) -> NDArray[Any]:
        # HDF5 strided hyperslabs are slow (about 10x a loop of single-frame reads),
        # so a strided read is either one contiguous read or one read per frame.
        self._check_range(start, stop)
        if step == 1 or self.reads_whole_span(step):
            return super().read_dense_strided(start, stop, step)
        frames = range(start, stop, step)
        out = np.empty((len(frames), *self.frame_shape), dtype=self.dtype)
        for i, frame in enumerate(frames):
            self._read_into(out[i : i + 1], frame, frame + 1)
        return out

    def _read_into(self, out: NDArray[Any], start: int, stop: int) -> None:
        ds = self._ds()
        try:
            ds.read_direct(out, np.s_[start:stop])
        except (OSError, KeyError, RuntimeError) as err:
            raise FrameFormatError(
                f"cannot read frames [{start}, {stop}) (truncated or corrupt file, "
                f"or a compression filter is missing): {err}",
                path=self.path,
                key=self.dataset_name,
            ) from err

    def read_sparse(self, start: int, stop: int) -> SparseFrames:
        return dense_to_sparse(self.read_dense(start, stop), path=self.path, first_frame=start)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _chunk_cache_bytes(dataset: h5py.Dataset) -> int | None:
    """The chunk cache ``dataset`` needs, if the file's default is too small."""
    if not dataset.chunks:
        return None
    need = _CACHED_CHUNKS * int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
    return need if need > _CHUNK_CACHE_MIN_BYTES else None


def _open_with_chunk_cache(file: h5py.File, name: str, nbytes: int) -> h5py.Dataset:
    """Open ``name`` with a chunk cache of ``nbytes`` (no other handle may be open:
    HDF5 shares an open dataset, cache included, with later opens)."""
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(_CHUNK_CACHE_SLOTS, nbytes, 1.0)
    return h5py.Dataset(h5py.h5d.open(file.id, name.encode(), dapl=dapl))


def _filter_options(compression: Compression) -> dict[str, Any]:
    if compression is None:
        return {}
    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    if compression == "bitshuffle":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    raise UsageError(
        f"must be None, 'lz4', 'bitshuffle' or 'gzip', got {compression!r}", argument="compression"
    )


def write_hdf5_frames(
    path: str | os.PathLike[str],
    frames: FramesLike,
    *,
    dataset: str = DEFAULT_DATASET,
    compression: Compression = None,
    chunk_frames: int | None = None,
) -> Path:
    """Write frames to an HDF5 dataset of shape ``(N, H, W)``.

    The file is written under a temporary name in the same directory and
    renamed to ``path`` at the end, so readers never see a partial file.

    Parameters
    ----------
    path : str or PathLike
        Output file (replaced if it exists).
    frames : ndarray (N, H, W) or iterable of ndarray (n, H, W)
        The frames, or chunks of them (a large stack is then written without
        ever being held in memory). The dtype of the first chunk is kept.
    dataset : str
        Dataset path; intermediate groups are created.
    compression : {None, "lz4", "bitshuffle", "gzip"}
        HDF5 filter: LZ4 (32004), bitshuffle+LZ4 (32008) or gzip level 4.
    chunk_frames : int, optional
        Frames per HDF5 chunk. Default: about 1 MiB per chunk. Chunking is
        used whenever compressing or writing from an iterable.

    Returns
    -------
    Path
        ``path``.
    """
    if chunk_frames is not None and (isinstance(chunk_frames, bool) or chunk_frames < 1):
        raise UsageError(
            f"must be a positive integer, got {chunk_frames!r}", argument="chunk_frames"
        )
    options = _filter_options(compression)
    streaming = not isinstance(frames, np.ndarray)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as file:
        ds: h5py.Dataset | None = None
        written = 0
        for block in iter_frame_blocks(frames):
            if ds is None:
                height, width = block.shape[1:]
                frame_bytes = max(1, height * width * block.dtype.itemsize)
                depth = chunk_frames or max(1, 2**20 // frame_bytes)
                total = 0 if streaming else len(frames)  # type: ignore[arg-type]
                chunked = streaming or compression is not None or chunk_frames is not None
                if not streaming:
                    depth = min(depth, max(total, 1))
                ds = file.create_dataset(
                    dataset,
                    shape=(total, height, width),
                    maxshape=(None, height, width) if streaming else None,
                    dtype=block.dtype,
                    chunks=(depth, height, width) if chunked else None,
                    **options,
                )
            if streaming:
                ds.resize(written + block.shape[0], axis=0)
            ds[written : written + block.shape[0]] = block
            written += block.shape[0]
        if ds is None or written == 0:
            raise UsageError("no frames to write", argument="frames")
    return Path(path)
