"""Multi-tau correlator: streaming, resuming, partial results and the sparse path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau.correlator import (
    G2Result,
    MultiTauCorrelator,
    PixelBins,
    multitau,
    state_nbytes,
    stream_memory_budget,
)

from .test_multitau import assert_matches, random_bins, reference

N_FRAMES, N_PIXELS = 389, 530


@pytest.fixture(scope="module")
def frames() -> NDArray[np.uint16]:
    rng = np.random.default_rng(2024)
    return rng.poisson(1.5, size=(N_FRAMES, N_PIXELS)).astype(np.uint16)


@pytest.fixture(scope="module")
def bins() -> PixelBins:
    return random_bins(np.random.default_rng(99), N_PIXELS)


def assert_same(a: G2Result, b: G2Result) -> None:
    np.testing.assert_array_equal(a.delays, b.delays)
    np.testing.assert_array_equal(a.pair_counts, b.pair_counts)
    for name in ("g2", "g2_err", "G2_static", "IP_static", "IF_static"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=0)
    assert a.n_frames == b.n_frames


def to_csr(
    block: NDArray[np.uint16],
) -> tuple[NDArray[np.int64], NDArray[np.intp], NDArray[np.uint16]]:
    nz_frame, nz_pixel = np.nonzero(block)
    indptr = np.zeros(block.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(nz_frame, minlength=block.shape[0]), out=indptr[1:])
    return indptr, nz_pixel, block[nz_frame, nz_pixel]


@pytest.mark.parametrize("chunk", [1, 3, 16, 100, 257])
def test_streaming_equals_eager_and_reference(
    frames: NDArray[np.uint16], bins: PixelBins, chunk: int
) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    for start in range(0, N_FRAMES, chunk):
        corr.feed(frames[start : start + chunk])
    assert corr.n_frames == N_FRAMES
    streamed = corr.g2(bins)
    assert_same(streamed, multitau(frames, bins))
    ref = reference(frames, bins.static_index, bins.dynamic_of_static, bins.n_dynamic)
    assert_matches(streamed, ref, rtol=1e-9)


def test_partial_result_equals_eager_on_prefix(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    fed = 0
    for stop in (2, 9, 40, 123, N_FRAMES):
        corr.feed(frames[fed:stop])
        fed = stop
        partial = corr.g2(bins)
        assert partial.n_frames == stop
        np.testing.assert_array_equal(corr.delay_scheme().delays, partial.delays)
        assert_same(partial, multitau(frames[:stop], bins))
        assert_same(partial, corr.g2(bins))  # reading does not disturb the state


def test_resume_from_state_and_savez(
    frames: NDArray[np.uint16], bins: PixelBins, tmp_path: Path
) -> None:
    whole = multitau(frames, bins)
    first = MultiTauCorrelator(N_PIXELS)
    first.feed(frames[:150])
    state = first.state()
    resumed = MultiTauCorrelator.from_state(state)
    resumed.feed(frames[150:])
    assert_same(resumed.g2(bins), whole)
    # the saved state is a copy: feeding the original does not change it
    first.feed(frames[150:])
    assert_same(first.g2(bins), whole)
    np.savez(tmp_path / "state.npz", **state)
    with np.load(tmp_path / "state.npz") as saved:
        from_file = MultiTauCorrelator.from_state(saved)
    assert from_file.n_frames == 150
    from_file.feed(frames[150:300])
    np.savez(tmp_path / "state2.npz", **from_file.state())
    with np.load(tmp_path / "state2.npz") as saved:
        again = MultiTauCorrelator.from_state(saved)
    again.feed(frames[300:])
    assert_same(again.g2(bins), whole)


def test_resume_keeps_selection_and_normalization(frames: NDArray[np.uint16]) -> None:
    index = np.arange(7, N_PIXELS, 3)
    bins = random_bins(np.random.default_rng(4), index.size)
    whole = multitau(frames, bins, pixel_index=index, normalize_frame=True)
    corr = MultiTauCorrelator(N_PIXELS, pixel_index=index, normalize_frame=True)
    corr.feed(frames[:200])
    resumed = MultiTauCorrelator.from_state(corr.state())
    resumed.feed(frames[200:])
    # normalised frames are not integers: float32 partial sums differ in the last bits
    np.testing.assert_allclose(resumed.g2(bins).g2, whole.g2, rtol=1e-6)


def test_bad_state_raises_usage_error(frames: NDArray[np.uint16]) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed(frames[:50])
    state = corr.state()
    missing = {k: v for k, v in state.items() if k != "g2acc"}
    with pytest.raises(UsageError, match="g2acc"):
        MultiTauCorrelator.from_state(missing)
    wrong = dict(state, n_frames=np.asarray(5000))
    with pytest.raises(UsageError) as info:
        MultiTauCorrelator.from_state(wrong)
    assert info.value.argument == "state"


@pytest.mark.parametrize("chunk", [1, 50, N_FRAMES])
def test_sparse_equals_dense(frames: NDArray[np.uint16], bins: PixelBins, chunk: int) -> None:
    dense = multitau(frames, bins, path="dense")
    corr = MultiTauCorrelator(N_PIXELS)
    for start in range(0, N_FRAMES, chunk):
        block = frames[start : start + chunk]
        corr.feed_sparse(block.shape[0], *to_csr(block))
    assert_same(corr.g2(bins), dense)
    assert_same(multitau(frames, bins, path="sparse"), dense)


def test_sparse_repeated_events_add_and_unselected_pixels_are_ignored() -> None:
    # frame 0: pixel 1 twice (1 + 2 = 3), pixel 3 (not selected); frame 1: pixel 0
    indptr = np.array([0, 3, 4, 4])
    pixels = np.array([1, 3, 1, 0])
    counts = np.array([1, 5, 2, 4])
    corr = MultiTauCorrelator(4, pixel_index=np.array([0, 1, 2]))
    corr.feed_sparse(3, indptr, pixels, counts)
    dense = MultiTauCorrelator(4, pixel_index=np.array([0, 1, 2]))
    dense.feed(np.array([[0, 3, 0, 5], [4, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint16))
    bins = PixelBins(np.array([0, 1, 1]), np.array([0, 0]), 1)
    assert_same(corr.g2(bins), dense.g2(bins))
    assert corr.g2(bins).IP_static[0].tolist() == pytest.approx([2.0, 1.5 / 2])


def test_sparse_bad_input() -> None:
    corr = MultiTauCorrelator(10)
    good = (np.array([0, 1, 2]), np.array([1, 2]), np.array([1, 1]))
    cases = [
        ((3, *good), "indptr"),
        ((2, np.array([0, 2, 1]), good[1], good[2]), "indptr"),
        ((2, np.array([1, 1, 2]), good[1], good[2]), "indptr"),
        ((2, good[0], np.array([1, 10]), good[2]), "pixels"),
        ((2, good[0], good[1], np.array([1])), "counts"),
    ]
    for args, name in cases:
        with pytest.raises(UsageError) as info:
            corr.feed_sparse(*args)
        assert info.value.argument == name
    corr.feed_sparse(*(2, *good))
    assert corr.n_frames == 2


def test_threads_do_not_change_the_result(frames: NDArray[np.uint16], bins: PixelBins) -> None:
    results = []
    for threads in (1, 3):
        corr = MultiTauCorrelator(N_PIXELS, threads=threads)
        corr.feed(frames)
        results.append(corr.g2(bins))
    assert_same(results[0], results[1])


def test_dtypes_give_the_same_result(frames: NDArray[np.uint16], bins: PixelBins) -> None:
    small = frames[:60]
    expected = multitau(small, bins)
    for dtype in (np.uint8, np.int16, np.float32, np.float16, np.uint64, bool):
        converted = small.astype(dtype) if dtype is not bool else small > 0
        base = expected if dtype is not bool else multitau((small > 0).astype(np.uint16), bins)
        assert_same(multitau(converted, bins), base)
    # a non-contiguous view is accepted
    assert_same(multitau(np.asfortranarray(small), bins), expected)


def level_frames(frames: NDArray[np.float32], n_levels: int) -> list[NDArray[np.float32]]:
    """Level frames in float32, built exactly as the kernel builds them."""
    out = [np.asarray(frames, dtype=np.float32)]
    for _ in range(1, n_levels):
        x = out[-1]
        half = x.shape[0] // 2
        out.append((x[0 : 2 * half : 2] + x[1 : 2 * half : 2]) * np.float32(0.5))
    return out


def test_state_carries_and_totals_match_the_levels() -> None:
    # float frames: the means are rounded, so a rebuilt carry must round the same way
    rng = np.random.default_rng(5)
    data = (rng.random((1000, 300)) * 7).astype(np.float32)
    corr = MultiTauCorrelator(300)
    start = 0
    for size in rng.integers(1, 40, 200):
        corr.feed(data[start : start + size])
        start += int(size)
        if start >= data.shape[0]:
            break
        state = corr.state()
        levels = level_frames(data[:start], state["tail"].shape[0])
        for lev, x in enumerate(levels):
            w = state["tail"].shape[1]
            expected = np.zeros((w, 300), dtype=np.float32)
            last = x[-w:]
            if last.shape[0]:
                expected[w - last.shape[0] :] = last
            np.testing.assert_array_equal(state["tail"][lev], expected)
            if lev < state["total"].shape[0]:
                total = x.sum(axis=0, dtype=np.float64)
                np.testing.assert_allclose(state["total"][lev], total, rtol=1e-6)


def test_irregular_chunks_and_resume_over_many_levels() -> None:
    rng = np.random.default_rng(8)
    data = rng.poisson(2.0, size=(1500, 70)).astype(np.uint16)
    bins = random_bins(np.random.default_rng(3), 70)
    corr = MultiTauCorrelator(70)
    start = 0
    for size in rng.integers(1, 90, 200):
        if start >= data.shape[0]:
            break
        corr.feed(data[start : start + size])
        start += int(size)
        if rng.random() < 0.2:  # resume from a saved state now and then
            corr = MultiTauCorrelator.from_state(corr.state())
    assert corr.n_frames == data.shape[0]
    ref = reference(data, bins.static_index, bins.dynamic_of_static, bins.n_dynamic)
    assert_matches(corr.g2(bins), ref, rtol=1e-9)


def test_many_tiles_split_over_threads_give_identical_sums() -> None:
    rng = np.random.default_rng(4)
    n_pixels = 256 * 21 + 17  # 22 tiles: several ranges per thread
    data = rng.poisson(0.7, size=(150, n_pixels)).astype(np.uint8)
    states = []
    for threads in (1, 2, 5):
        corr = MultiTauCorrelator(n_pixels, threads=threads)
        for start in range(0, 150, 40):
            corr.feed(data[start : start + 40])
        states.append(corr.state())
    for other in states[1:]:
        for key, value in states[0].items():
            np.testing.assert_array_equal(other[key], value)


@pytest.mark.parametrize("n_frames", [1, 13, 389, 1000])
def test_state_nbytes_counts_the_arrays_in_use(n_frames: int) -> None:
    data = np.ones((n_frames, 600), dtype=np.uint8)
    corr = MultiTauCorrelator(600)
    corr.feed(data)
    st = corr._state
    used = st.tail0.nbytes + st.total0.nbytes + st.headsum0.nbytes + st.g2acc0.nbytes
    used += st.tail[1 : st.n_levels].nbytes
    used += st.headsum[: st.n_active].nbytes + st.g2acc[: st.n_active].nbytes
    assert state_nbytes(600, n_frames) == used


def test_stream_memory_budget_leaves_room_for_the_state() -> None:
    mib = 1 << 20
    big = stream_memory_budget(1 << 20, 10_000)
    assert 64 * mib <= big <= 256 * mib  # 1 Mpx x 10,000 frames: 876 MiB of state
    assert stream_memory_budget(1 << 20, 1000) == 512 * mib
    assert stream_memory_budget(4 << 20, 10_000) == 64 * mib  # the floor
    assert stream_memory_budget(256 * 256, 2000) == 2 * state_nbytes(256 * 256, 2000)
    # longer series need more state, so they get no larger chunks
    budgets = [stream_memory_budget(1 << 20, n) for n in (10**3, 10**4, 10**5, 10**6)]
    assert budgets == sorted(budgets, reverse=True)


def test_kernels_release_the_gil() -> None:
    # the pipeline reads and decompresses the next chunk in a thread meanwhile
    from xpcs_kernel.multitau.dense import dense_feed, densify_csr

    for kernel in (dense_feed, densify_csr):
        assert kernel.targetoptions.get("nogil") is True
