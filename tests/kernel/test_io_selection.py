"""FrameSelection math, SparseFrames operations and sparse averaging."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io import (
    FrameChunk,
    FrameSelection,
    SparseFrames,
    average_sparse,
    dense_to_sparse,
)


def test_defaults_select_everything() -> None:
    sel = FrameSelection()
    assert (sel.begin, sel.end, sel.stride, sel.avg) == (0, None, 1, 1)
    assert sel.n_output(17) == 17
    np.testing.assert_array_equal(sel.raw_frames(4), [[0], [1], [2], [3]])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"begin": -1}, "begin"),
        ({"begin": 1.5}, "begin"),
        ({"begin": True}, "begin"),
        ({"begin": 5, "end": 5}, "end"),
        ({"end": 0}, "end"),
        ({"stride": 0}, "stride"),
        ({"avg": 0}, "avg"),
        ({"avg": "2"}, "avg"),
    ],
)
def test_invalid_fields(kwargs: dict[str, object], argument: str) -> None:
    with pytest.raises(UsageError) as err:
        FrameSelection(**kwargs)  # type: ignore[arg-type]
    assert err.value.argument == argument


def test_numpy_integers_are_accepted_and_normalised() -> None:
    sel = FrameSelection(begin=np.int64(2), end=np.int32(9), stride=np.uint8(2))  # type: ignore[arg-type]
    assert type(sel.begin) is int
    assert type(sel.end) is int
    assert sel.n_output(10) == 4


def test_n_output_matches_range_arithmetic() -> None:
    n_frames = 37
    for begin, end, stride, avg in itertools.product(
        [0, 1, 5, 36], [None, 20, 37], [1, 2, 3, 7], [1, 2, 4, 5]
    ):
        if end is not None and end <= begin:
            continue
        sel = FrameSelection(begin, end, stride, avg)
        used = list(range(begin, n_frames if end is None else end, stride))
        n_out = len(used) // avg
        if n_out == 0:
            with pytest.raises(UsageError) as err:
                sel.n_output(n_frames)
            assert err.value.argument == "avg"
            continue
        assert sel.n_output(n_frames) == n_out
        raw = sel.raw_frames(n_frames)
        assert raw.shape == (n_out, avg)
        np.testing.assert_array_equal(raw.ravel(), used[: n_out * avg])


def test_partial_last_group_is_dropped() -> None:
    sel = FrameSelection(begin=1, end=12, stride=2, avg=2)  # frames 1,3,5,7,9,11
    assert sel.n_output(20) == 3
    sel = FrameSelection(begin=1, end=12, stride=2, avg=4)  # 1,3,5,7 | 9,11 dropped
    assert sel.n_output(20) == 1
    np.testing.assert_array_equal(sel.raw_frames(20), [[1, 3, 5, 7]])


def test_n_output_rejects_a_selection_beyond_the_file() -> None:
    with pytest.raises(UsageError) as err:
        FrameSelection(begin=10).n_output(10)
    assert err.value.argument == "begin"
    with pytest.raises(UsageError) as err:
        FrameSelection(end=11).n_output(10)
    assert err.value.argument == "end"
    assert FrameSelection(end=10).n_output(10) == 10


def _random_dense(seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.poisson(0.3, size=shape) * rng.integers(1, 4, size=shape)).astype(np.uint16)


def test_dense_sparse_round_trip() -> None:
    dense = _random_dense(0, (8, 5, 6))
    dense[3] = 0
    sparse = dense_to_sparse(dense)
    assert sparse.n_frames == 8
    assert sparse.frame_shape == (5, 6)
    assert sparse.indptr[3] == sparse.indptr[4]  # the empty frame
    assert sparse.counts.dtype == np.uint32
    np.testing.assert_array_equal(np.diff(sparse.indptr), np.count_nonzero(dense, axis=(1, 2)))
    np.testing.assert_array_equal(sparse.to_dense(np.uint16), dense)
    np.testing.assert_array_equal(sparse.to_dense(), dense.astype(np.float32))
    frames = np.array([6, 0, 3, 3], dtype=np.int64)
    np.testing.assert_array_equal(sparse.take(frames).to_dense(np.uint16), dense[frames])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_dense_gives_float_counts(dtype: type[np.floating]) -> None:
    dense = np.zeros((2, 2, 2), dtype=dtype)
    dense[1, 0, 1] = 0.5
    sparse = dense_to_sparse(dense)
    assert sparse.counts.dtype == np.float32
    np.testing.assert_array_equal(sparse.pixels, [1])
    np.testing.assert_array_equal(sparse.counts, [0.5])
    np.testing.assert_array_equal(sparse.indptr, [0, 0, 1])


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int64, np.uint64])
def test_integer_dense_gives_uint32_counts(dtype: type[np.integer]) -> None:
    dense = np.zeros((3, 2, 2), dtype=dtype)
    dense[0, 1, 1] = 7
    dense[2, 0, 0] = 100
    sparse = dense_to_sparse(dense)
    assert sparse.counts.dtype == np.uint32
    np.testing.assert_array_equal(sparse.counts, [7, 100])
    np.testing.assert_array_equal(sparse.pixels, [3, 0])
    np.testing.assert_array_equal(sparse.indptr, [0, 1, 1, 2])


def test_dense_to_sparse_rejects_negative_and_huge_integers() -> None:
    dense = np.zeros((3, 2, 2), dtype=np.int64)
    dense[2, 0, 1] = -4
    with pytest.raises(FrameFormatError) as err:
        dense_to_sparse(dense, path="x.h5", first_frame=10)
    assert err.value.key == "frame 12"
    assert err.value.path == "x.h5"
    dense[2, 0, 1] = 2**32
    with pytest.raises(FrameFormatError, match="uint32"):
        dense_to_sparse(dense)


@pytest.mark.parametrize("avg", [1, 2, 3, 8])
def test_average_sparse_equals_dense_average(avg: int) -> None:
    dense = _random_dense(4, (8, 4, 3))
    got = average_sparse(dense_to_sparse(dense), avg)
    n_out = 8 // avg
    want = dense[: n_out * avg].reshape(n_out, avg, 4, 3).mean(axis=1)
    assert got.counts.dtype == np.float32
    assert got.n_frames == n_out
    np.testing.assert_allclose(got.to_dense(np.float64), want, rtol=1e-7)
    # entries are sorted by frame then pixel, each pixel once per frame
    for j in range(n_out):
        pix = got.pixels[got.indptr[j] : got.indptr[j + 1]]
        assert np.all(np.diff(pix) > 0)


def test_sparse_frames_validation() -> None:
    with pytest.raises(UsageError) as err:
        SparseFrames((2, 2), np.array([0, 2]), np.array([0]), np.array([1], dtype=np.uint32))
    assert err.value.argument == "indptr"
    with pytest.raises(UsageError) as err:
        SparseFrames((2, 2), np.array([0, 1]), np.array([0]), np.array([1, 2], dtype=np.uint32))
    assert err.value.argument == "counts"


def test_frame_chunk_needs_exactly_one_representation() -> None:
    sparse = dense_to_sparse(np.ones((2, 2, 2), dtype=np.uint8))
    assert FrameChunk(4, None, sparse).n_frames == 2
    assert FrameChunk(0, np.zeros((3, 2, 2)), None).n_frames == 3
    with pytest.raises(UsageError):
        FrameChunk(0, None, None)
    with pytest.raises(UsageError):
        FrameChunk(0, np.zeros((2, 2, 2)), sparse)


def test_average_sparse_sort_path_sorts_and_drops_zero_sums() -> None:
    # 1000 pixels, few entries per group (the sort path); pixels out of order
    indptr = np.array([0, 3, 5, 6, 6], dtype=np.int64)
    pixels = np.array([900, 7, 300, 7, 5, 999], dtype=np.int64)
    counts = np.array([2, 1, 0, 3, 4, 8], dtype=np.uint32)
    frames = SparseFrames((10, 100), indptr, pixels, counts)
    got = average_sparse(frames, 2)
    np.testing.assert_array_equal(got.indptr, [0, 3, 4])
    np.testing.assert_array_equal(got.pixels, [5, 7, 900, 999])  # pixel 300 summed to 0
    np.testing.assert_array_equal(got.counts, np.array([2.0, 2.0, 1.0, 4.0], dtype=np.float32))
    want = frames.to_dense(np.float64).reshape(2, 2, 10, 100).mean(axis=1)
    np.testing.assert_allclose(got.to_dense(np.float64), want)


def test_average_sparse_rejects_bad_avg() -> None:
    frames = dense_to_sparse(np.ones((2, 2, 2), dtype=np.uint8))
    with pytest.raises(UsageError) as err:
        average_sparse(frames, 0)
    assert err.value.argument == "avg"
