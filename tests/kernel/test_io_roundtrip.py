"""The same seeded frames through every reader give identical chunks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

import xpcs_kernel.io.chunks as chunks_module
from xpcs_kernel.io import (
    FrameChunk,
    FrameSelection,
    FrameSource,
    ImmFrameSource,
    iter_chunks,
    open_frames,
    write_hdf5_frames,
    write_imm,
    write_rigaku,
)

N, H, W = 23, 16, 12


def make_frames(seed: int = 7) -> NDArray[np.uint16]:
    rng = np.random.default_rng(seed)
    frames = rng.poisson(0.8, size=(N, H, W)).astype(np.uint16)
    frames[4, 3, 5] = 4095  # the largest 12-bit count: must survive every format
    frames[9, 0, 0] = 300  # > 255: would be lost by an 8-bit cast
    frames[11] = 0  # an empty frame in the middle
    return frames


Writer = Callable[[Path, NDArray[Any]], object]

WRITERS: dict[str, tuple[str, Writer]] = {
    "hdf5-plain": ("a.h5", lambda p, f: write_hdf5_frames(p, f)),
    "hdf5-lz4": ("a.h5", lambda p, f: write_hdf5_frames(p, f, compression="lz4", chunk_frames=5)),
    "hdf5-bitshuffle": (
        "a.h5",
        lambda p, f: write_hdf5_frames(p, f, compression="bitshuffle", chunk_frames=4),
    ),
    "hdf5-gzip": ("a.h5", lambda p, f: write_hdf5_frames(p, f, compression="gzip")),
    "imm-dense": ("a.imm", lambda p, f: write_imm(p, f, sparse=False)),
    "imm-sparse": ("a.imm", lambda p, f: write_imm(p, f, sparse=True)),
    "rigaku": ("a.bin", lambda p, f: write_rigaku(p, f)),
}
KINDS = [*WRITERS, "numpy"]


@pytest.fixture(scope="module")
def frames() -> NDArray[np.uint16]:
    return make_frames()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, frames: NDArray[np.uint16]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for kind, (name, write) in WRITERS.items():
        path = tmp_path_factory.mktemp(kind) / name
        write(path, frames)
        out[kind] = path
    return out


def open_kind(kind: str, files: dict[str, Path], frames: NDArray[np.uint16]) -> FrameSource:
    if kind == "numpy":
        return open_frames(frames)
    return open_frames(files[kind], frame_shape=(H, W))


def expected(frames: NDArray[Any], sel: FrameSelection) -> NDArray[np.float64]:
    """Explicit selection: output j = mean of raw frames begin + (j*avg + a)*stride."""
    end = frames.shape[0] if sel.end is None else sel.end
    used = list(range(sel.begin, end, sel.stride))
    n_out = len(used) // sel.avg
    out = np.zeros((n_out, *frames.shape[1:]))
    for j in range(n_out):
        for a in range(sel.avg):
            out[j] += frames[used[j * sel.avg + a]]
        out[j] /= sel.avg
    return out


def collect(chunks: list[FrameChunk]) -> NDArray[Any]:
    parts = [c.dense if c.dense is not None else c.sparse.to_dense() for c in chunks]  # type: ignore[union-attr]
    return np.concatenate(parts)


@pytest.mark.parametrize("kind", KINDS)
def test_raw_reads_round_trip(
    kind: str, files: dict[str, Path], frames: NDArray[np.uint16]
) -> None:
    with open_kind(kind, files, frames) as source:
        assert source.n_frames == N
        assert source.frame_shape == (H, W)
        assert source.dtype == np.uint16
        assert source.is_sparse == (kind in ("imm-sparse", "rigaku"))
        dense = source.read_dense(0, N)
        assert dense.dtype == np.uint16
        np.testing.assert_array_equal(dense, frames)
        np.testing.assert_array_equal(source.read_dense(5, 9), frames[5:9])
        sparse = source.read_sparse(3, 20)
        assert sparse.n_frames == 17
        assert sparse.counts.dtype == np.uint32
        assert sparse.nnz == np.count_nonzero(frames[3:20])
        np.testing.assert_array_equal(sparse.to_dense(np.uint16), frames[3:20])
        np.testing.assert_array_equal(source.read_dense_strided(1, 22, 5), frames[1:22:5])


SELECTIONS = [
    FrameSelection(),
    FrameSelection(begin=2),
    FrameSelection(begin=1, end=20, stride=3),
    FrameSelection(avg=4),  # 23 frames: a partial group of 3 is dropped
    FrameSelection(begin=1, end=22, stride=2, avg=3),
    FrameSelection(stride=6, avg=2),  # stride > 4: frame-by-frame reads
    FrameSelection(begin=22),  # a single frame
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sel", SELECTIONS, ids=repr)
def test_selection_matches_explicit_numpy(
    kind: str, sel: FrameSelection, files: dict[str, Path], frames: NDArray[np.uint16]
) -> None:
    want = expected(frames, sel)
    with open_kind(kind, files, frames) as source:
        for sparse in (False, True):
            chunks = list(iter_chunks(source, sel, chunk_frames=3, sparse=sparse))
            assert sum(c.n_frames for c in chunks) == sel.n_output(N) == want.shape[0]
            assert [c.start for c in chunks] == list(range(0, want.shape[0], 3))
            for c in chunks:
                assert (c.sparse is not None) == sparse
                assert (c.dense is not None) == (not sparse)
                if c.dense is not None:
                    assert c.dense.dtype == (np.uint16 if sel.avg == 1 else np.float32)
                else:
                    assert c.sparse is not None
                    assert c.sparse.counts.dtype == (np.uint32 if sel.avg == 1 else np.float32)
            np.testing.assert_allclose(collect(chunks), want, rtol=1e-6)


@pytest.mark.parametrize("kind", ["hdf5-lz4", "imm-dense", "imm-sparse", "rigaku", "numpy"])
@pytest.mark.parametrize("sel", [FrameSelection(), FrameSelection(begin=1, stride=2, avg=2)])
def test_chunk_boundaries_do_not_matter(
    kind: str, sel: FrameSelection, files: dict[str, Path], frames: NDArray[np.uint16]
) -> None:
    with open_kind(kind, files, frames) as source:
        results = []
        for chunk_frames in (1, 7, 1000):
            chunks = list(iter_chunks(source, sel, chunk_frames=chunk_frames))
            assert all(c.n_frames <= chunk_frames for c in chunks)
            assert len(chunks) == -(-sel.n_output(N) // chunk_frames)
            results.append(collect(chunks))
        for other in results[1:]:
            np.testing.assert_array_equal(other, results[0])
        np.testing.assert_allclose(results[0], expected(frames, sel), rtol=1e-6)


def test_default_representation_follows_the_source(
    files: dict[str, Path], frames: NDArray[np.uint16]
) -> None:
    for kind in KINDS:
        with open_kind(kind, files, frames) as source:
            (chunk, *_) = iter_chunks(source)
            assert (chunk.sparse is not None) == source.is_sparse


def test_rigaku_keeps_12_bit_counts(tmp_path: Path) -> None:
    frames = np.zeros((3, 4, 5), dtype=np.uint16)
    frames[0, 0, 0] = 4095
    frames[0, 1, 2] = 256
    frames[1, 3, 4] = 255
    frames[2, 2, 2] = 4000
    path = write_rigaku(tmp_path / "c.bin", frames)
    words = np.fromfile(path, dtype="<u8")
    assert words.size == 4
    assert int(words[0]) == (0 << 40) | (0 << 16) | 4095
    with open_frames(path, frame_shape=(4, 5)) as source:
        (chunk,) = iter_chunks(source)
        assert chunk.sparse is not None
        np.testing.assert_array_equal(chunk.sparse.counts, [4095, 256, 255, 4000])
        np.testing.assert_array_equal(chunk.sparse.pixels, [0, 7, 19, 12])
        np.testing.assert_array_equal(chunk.sparse.indptr, [0, 2, 3, 4])


def test_rigaku_trailing_empty_frame_is_kept(tmp_path: Path) -> None:
    frames = np.zeros((4, 3, 3), dtype=np.uint8)
    frames[1, 1, 1] = 2
    path = write_rigaku(tmp_path / "t.bin", frames)
    with open_frames(path, frame_shape=(3, 3)) as source:
        assert source.n_frames == 4
        np.testing.assert_array_equal(source.read_dense(0, 4), frames)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.int32, np.float32, np.float64])
def test_hdf5_keeps_native_dtype(tmp_path: Path, dtype: type[np.generic]) -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 200, size=(6, 5, 4)).astype(dtype)
    path = write_hdf5_frames(tmp_path / "t.h5", frames, dataset="/exchange/frames")
    with open_frames(path, dataset="/exchange/frames") as source:
        assert source.dtype == dtype
        (chunk,) = iter_chunks(source)
        assert chunk.dense is not None
        assert chunk.dense.dtype == dtype
        np.testing.assert_array_equal(chunk.dense, frames)
        (avg_chunk,) = iter_chunks(source, FrameSelection(avg=2))
        assert avg_chunk.dense is not None
        assert avg_chunk.dense.dtype == np.float32
        want = frames.astype(np.float64).reshape(3, 2, 5, 4).mean(axis=1)
        np.testing.assert_allclose(avg_chunk.dense, want, rtol=1e-6)


def test_hdf5_big_endian_is_read_native(tmp_path: Path) -> None:
    frames = np.arange(2 * 3 * 4, dtype=">u2").reshape(2, 3, 4)
    path = write_hdf5_frames(tmp_path / "be.h5", frames)
    with open_frames(path) as source:
        assert source.dtype == np.dtype("=u2")
        np.testing.assert_array_equal(source.read_dense(0, 2), frames)


def test_hdf5_compression_filters_are_the_aps_ones(files: dict[str, Path]) -> None:
    ids = {}
    for kind in ("hdf5-lz4", "hdf5-bitshuffle", "hdf5-gzip", "hdf5-plain"):
        with h5py.File(files[kind], "r") as f:
            plist = f["/entry/data/data"].id.get_create_plist()
            ids[kind] = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    assert ids == {
        "hdf5-lz4": [32004],
        "hdf5-bitshuffle": [32008],
        "hdf5-gzip": [1],
        "hdf5-plain": [],
    }


def test_hdf5_writer_streams_from_an_iterator(tmp_path: Path) -> None:
    frames = make_frames(11)
    blocks = (frames[i : i + 4] for i in range(0, N, 4))
    path = write_hdf5_frames(tmp_path / "it.h5", blocks, compression="lz4", chunk_frames=3)
    with h5py.File(path, "r") as f:
        ds = f["/entry/data/data"]
        assert ds.shape == (N, H, W)
        assert ds.chunks == (3, H, W)
    with open_frames(path) as source:
        assert source.preferred_read_frames() == 3
        np.testing.assert_array_equal(source.read_dense(0, N), frames)


def test_auto_chunks_respect_budget_and_hdf5_chunking(
    files: dict[str, Path], frames: NDArray[np.uint16]
) -> None:
    frame_bytes = H * W * 2
    with open_frames(files["hdf5-lz4"]) as source:  # HDF5 chunks of 5 frames
        budget = 4 * 12 * frame_bytes
        chunks = list(iter_chunks(source, memory_budget=budget))
        sizes = [c.n_frames for c in chunks]
        assert len(sizes) > 1
        assert max(sizes) * frame_bytes <= budget
        assert all(size % 5 == 0 for size in sizes[:-1])  # whole 5-frame HDF5 chunks
        np.testing.assert_array_equal(collect(chunks), frames)
        (whole,) = iter_chunks(source)  # default budget: everything at once
        assert whole.n_frames == N


@pytest.mark.parametrize("kind", ["rigaku", "imm-sparse"])
def test_event_chunks_stay_small_whatever_the_budget(
    kind: str,
    files: dict[str, Path],
    frames: NDArray[np.uint16],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open_kind(kind, files, frames) as source:
        per_frame = 2 * source.frame_nbytes(sparse=True)  # as read, plus a conversion
        monkeypatch.setattr(chunks_module, "SPARSE_CHUNK_BYTES", 3 * per_frame)
        chunks = list(iter_chunks(source, memory_budget=1 << 40))
        assert [c.n_frames for c in chunks[:-1]] == [3] * (len(chunks) - 1)
        np.testing.assert_array_equal(collect(chunks), frames)
        # dense chunks of the same source are not capped
        (whole,) = iter_chunks(source, sparse=False, memory_budget=1 << 40)
        assert whole.n_frames == N


def test_imm_time_stamps(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_imm(tmp_path / "t.imm", frames[:5], sparse=True, frame_time=0.25)
    with ImmFrameSource(path) as source:
        np.testing.assert_allclose(source.elapsed, [0.0, 0.25, 0.5, 0.75, 1.0])
        np.testing.assert_array_equal(source.corecotick, np.arange(5))


def test_array_source_reads_are_copies(frames: NDArray[np.uint16]) -> None:
    data = frames.copy()
    with open_frames(data) as source:
        (chunk,) = iter_chunks(source)
        assert chunk.dense is not None
        chunk.dense[:] = 0
    np.testing.assert_array_equal(data, frames)


def test_hdf5_strided_reads_frame_by_frame_for_large_gaps(tmp_path: Path) -> None:
    # 256 x 256 uint16 frames: skipping 4 frames skips 512 KiB, read frame by frame
    frames = np.random.default_rng(8).integers(0, 9, size=(12, 256, 256), dtype=np.uint16)
    plain = write_hdf5_frames(tmp_path / "p.h5", frames)
    chunked = write_hdf5_frames(tmp_path / "c.h5", frames, compression="lz4", chunk_frames=6)
    with open_frames(plain) as source:
        assert not source.reads_whole_span(5)
        np.testing.assert_array_equal(source.read_dense_strided(1, 12, 5), frames[1:12:5])
        chunks = list(iter_chunks(source, FrameSelection(stride=5), chunk_frames=2))
        np.testing.assert_array_equal(collect(chunks), frames[::5])
    with open_frames(chunked) as source:
        assert source.reads_whole_span(5)  # every 6-frame chunk holds a kept frame
        np.testing.assert_array_equal(source.read_dense_strided(1, 12, 5), frames[1:12:5])


@pytest.mark.parametrize(
    ("shape", "chunk_frames", "cache_bytes"),
    [
        ((7, 32, 32), 1, 2**20),  # 2 KiB chunks: the file's 1 MiB default holds plenty
        ((7, 300, 300), 2, 4 * 2 * 300 * 300 * 2),  # 352 KiB chunks: room for four
    ],
)
def test_hdf5_chunk_cache_holds_four_chunks_and_reads_stay_right(
    tmp_path: Path, shape: tuple[int, int, int], chunk_frames: int, cache_bytes: int
) -> None:
    frames = np.random.default_rng(3).poisson(2.0, size=shape).astype(np.uint16)
    path = tmp_path / "big-chunks.h5"
    write_hdf5_frames(path, frames, compression="lz4", chunk_frames=chunk_frames)
    with open_frames(path) as source:
        dataset = source._ds()  # type: ignore[attr-defined]
        _slots, nbytes, w0 = dataset.id.get_access_plist().get_chunk_cache()
        assert (nbytes, w0) == (cache_bytes, 1.0)
        # reads that end inside a chunk, then go on from there
        got = np.concatenate([source.read_dense(a, b) for a, b in ((0, 3), (3, 4), (4, 7))])
    np.testing.assert_array_equal(got, frames)


@pytest.mark.parametrize("link", ["soft", "external"])
def test_hdf5_frames_behind_a_link_get_their_chunk_cache(tmp_path: Path, link: str) -> None:
    # an Eiger master file links its frames from data files: the dataset reopened
    # with its own chunk cache must be the linked one
    frames = np.random.default_rng(5).poisson(2.0, size=(6, 300, 300)).astype(np.uint16)
    data = tmp_path / "data_000001.h5"
    write_hdf5_frames(data, frames, compression="lz4", chunk_frames=2)
    master = tmp_path / "master.h5" if link == "external" else data
    with h5py.File(master, "a") as f:
        if link == "external":
            f["/entry/data/data_000001"] = h5py.ExternalLink(data.name, "/entry/data/data")
        else:
            f["/entry/data/data_000001"] = h5py.SoftLink("/entry/data/data")
    with open_frames(master, dataset="/entry/data/data_000001") as source:
        _slots, nbytes, _w0 = source._ds().id.get_access_plist().get_chunk_cache()  # type: ignore[attr-defined]
        assert nbytes == 4 * 2 * 300 * 300 * 2
        got = np.concatenate([source.read_dense(0, 3), source.read_dense(3, 6)])
    np.testing.assert_array_equal(got, frames)
