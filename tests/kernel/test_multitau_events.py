"""Event lists through the staging block: when frames reach the kernel, and that
staging never changes a result, loses a frame or keeps a bad call's frames."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau import events
from xpcs_kernel.multitau.correlator import MultiTauCorrelator, PixelBins, delay_list, multitau
from xpcs_kernel.multitau.events import check_events

from .test_multitau import random_bins
from .test_multitau_stream import assert_same, to_csr

N_FRAMES, N_PIXELS = 61, 300
BLOCK_FRAMES = 7


@pytest.fixture
def small_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """A staging block of 7 float32 or uint16 frames, 14 uint8 ones."""
    monkeypatch.setattr(events, "BLOCK_BYTES", 4 * N_PIXELS * BLOCK_FRAMES)


@pytest.fixture(scope="module")
def frames() -> NDArray[np.uint16]:
    return np.random.default_rng(7).poisson(0.3, size=(N_FRAMES, N_PIXELS)).astype(np.uint16)


@pytest.fixture(scope="module")
def bins() -> PixelBins:
    return random_bins(np.random.default_rng(8), N_PIXELS)


def in_kernel(corr: MultiTauCorrelator) -> int:
    """Frames the kernel has correlated into the state (staged ones excluded)."""
    return corr._state.n_frames


@pytest.mark.usefixtures("small_block")
def test_frames_wait_until_the_block_is_full(frames: NDArray[np.uint16]) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    seen = []
    for start in range(0, 24, 6):
        block = frames[start : start + 6]
        corr.feed_sparse(6, *to_csr(block))
        seen.append((corr.n_frames, in_kernel(corr)))
    # small counts: uint8 rows, 14 a block. 6 and 12 staged; the 14th frame
    # fills the block; 24 = 14 + 10 staged
    assert seen == [(6, 0), (12, 0), (18, 14), (24, 14)]
    # the delays count the staged frames
    assert corr.delay_scheme().delays.tolist() == delay_list(24).delays.tolist()
    assert corr.delay_scheme().pair_counts[0] == 23


@pytest.mark.usefixtures("small_block")
def test_reading_or_feeding_dense_flushes_and_results_equal_dense(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    expected = multitau(frames, bins, path="dense")
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed_sparse(5, *to_csr(frames[:5]))
    partial = corr.g2(bins)  # a read correlates the 5 staged frames
    assert in_kernel(corr) == 5
    assert_same(partial, multitau(frames[:5], bins, path="dense"))
    corr.feed_sparse(4, *to_csr(frames[5:9]))
    corr.feed(frames[9:20])  # dense frames come after the 4 staged ones
    assert in_kernel(corr) == 20
    corr.feed_sparse(30, *to_csr(frames[20:50]))  # more than a block in one call
    resumed = MultiTauCorrelator.from_state(corr.state())  # state() flushes too
    assert resumed.n_frames == 50
    resumed.feed_sparse(11, *to_csr(frames[50:]))
    assert_same(resumed.g2(bins), expected)


@pytest.mark.usefixtures("small_block")
def test_a_bad_pixel_keeps_nothing_of_its_call(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed_sparse(2, *to_csr(frames[:2]))
    for n in (3, 20):  # within the block's room (one scatter), and beyond it (checked first)
        indptr, pixels, counts = to_csr(frames[2 : 2 + n])
        pixels = pixels.copy()
        pixels[-1] = N_PIXELS  # one past the detector
        with pytest.raises(UsageError) as info:
            corr.feed_sparse(n, indptr, pixels, counts)
        assert info.value.argument == "pixels"
        assert f"[0, {N_PIXELS})" in str(info.value)
        assert (corr.n_frames, in_kernel(corr)) == (2, 0)
    corr.feed_sparse(N_FRAMES - 2, *to_csr(frames[2:]))
    assert_same(corr.g2(bins), multitau(frames, bins, path="dense"))


@pytest.mark.usefixtures("small_block")
def test_a_sum_above_uint16_goes_through_float32_in_order(bins: PixelBins) -> None:
    rng = np.random.default_rng(3)
    dense = rng.poisson(2.0, size=(12, N_PIXELS)).astype(np.float64)
    dense[4, 10] = 80_000.0  # two events of 40,000 at one pixel in frame 4
    indptr, pixels, counts = to_csr(dense.astype(np.uint32))
    counts = counts.astype(np.int64)
    k = int(np.flatnonzero(pixels[indptr[4] : indptr[5]] == 10)[0]) + int(indptr[4])
    counts[k] = 40_000
    pixels = np.insert(pixels, k, 10)
    counts = np.insert(counts, k, 40_000)
    indptr = indptr.copy()
    indptr[5:] += 1
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed_sparse(3, indptr[:4], pixels[: indptr[3]], counts[: indptr[3]])  # staged
    rest = indptr[3:] - indptr[3]
    corr.feed_sparse(9, rest, pixels[indptr[3] :], counts[indptr[3] :])
    assert_same(corr.g2(bins), multitau(dense, bins, path="dense"))


def test_check_events_passes_unsigned_counts_without_a_pass() -> None:
    indptr = np.array([0, 2])
    pixels = np.array([0, 1], dtype=np.int32)
    for dtype in (np.uint8, np.uint16, np.uint32):
        counts = np.array([3, 200], dtype=dtype)
        ptr, pix, kept = check_events(1, indptr, pixels, counts)
        assert kept is counts  # no copy, no min/max: the scatter checks the sums
    assert (ptr.dtype, pix.dtype) == (np.int64, np.int64)
    assert check_events(1, indptr, pixels, np.array([3, 65_535]))[2].dtype == np.uint16
    assert check_events(1, indptr, pixels, np.array([3, 65_536]))[2].dtype == np.float32
    assert check_events(1, indptr, pixels, np.array([-1, 2]))[2].dtype == np.float32
    assert check_events(1, indptr, pixels, np.array([0.5, 2.0]))[2].dtype == np.float32
    big = np.array([3, 2**40], dtype=np.uint64)  # beyond what the int64 sum check can take
    assert check_events(1, indptr, pixels, big)[2].dtype == np.float32


@pytest.mark.usefixtures("small_block")
def test_a_sum_above_uint8_switches_to_uint16_rows_for_good(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    dense = frames.astype(np.uint32)
    dense[9, 5] = 300  # frame 9: one count too large for uint8 rows
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed_sparse(9, *to_csr(dense[:9]))  # staged in uint8 rows
    stage = corr._engine._stage
    assert stage is not None
    assert stage._block is not None
    assert stage._block.dtype == np.uint8
    corr.feed_sparse(20, *to_csr(dense[9:29]))  # overflows: the 9 go to the kernel first
    assert stage._block.dtype == np.uint16
    assert in_kernel(corr) >= 9
    corr.feed_sparse(N_FRAMES - 29, *to_csr(dense[29:]))  # small counts: uint16 rows still
    assert stage._block.dtype == np.uint16
    assert_same(corr.g2(bins), multitau(dense, bins, path="dense"))


@pytest.mark.usefixtures("small_block")
def test_a_bad_pixel_after_a_uint8_overflow_keeps_nothing_of_its_call(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed_sparse(2, *to_csr(frames[:2]))
    block = frames[2:12].astype(np.uint32)  # fits the uint8 block: no check before
    block[0, 1] = 999  # overflows at once: the call would reach the kernel
    indptr, pixels, counts = to_csr(block)
    pixels = pixels.copy()
    pixels[-1] = N_PIXELS
    with pytest.raises(UsageError) as info:
        corr.feed_sparse(10, indptr, pixels, counts)
    assert info.value.argument == "pixels"
    assert (corr.n_frames, in_kernel(corr)) == (2, 0)
    corr.feed_sparse(N_FRAMES - 2, *to_csr(frames[2:]))
    assert_same(corr.g2(bins), multitau(frames, bins, path="dense"))


@pytest.mark.usefixtures("small_block")
def test_uint32_counts_above_uint16_are_exact(bins: PixelBins) -> None:
    rng = np.random.default_rng(4)
    dense = rng.poisson(1.0, size=(10, N_PIXELS)).astype(np.uint32)
    dense[6, 3] = 70_000  # one event too large for the uint16 rows
    corr = MultiTauCorrelator(N_PIXELS)
    for start in (0, 4, 8):
        block = dense[start : start + 4]
        indptr, pixels, counts = to_csr(block)
        assert counts.dtype == np.uint32
        corr.feed_sparse(block.shape[0], indptr, pixels, counts)
    assert_same(corr.g2(bins), multitau(dense.astype(np.float64), bins, path="dense"))


def test_prefault_changes_nothing_and_never_clears_a_fed_state(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    expected = multitau(frames, bins, path="dense")
    corr = MultiTauCorrelator(N_PIXELS)
    corr.prefault(N_FRAMES)
    corr.feed_sparse(20, *to_csr(frames[:20]))  # staged: the state is still empty
    corr.prefault(N_FRAMES)
    corr.feed(frames[20:30])
    corr.prefault(N_FRAMES)  # after frames: must not zero the state
    corr.feed_sparse(N_FRAMES - 30, *to_csr(frames[30:]))
    assert_same(corr.g2(bins), expected)
    dense = MultiTauCorrelator(N_PIXELS)
    dense.prefault(10 * N_FRAMES)  # more levels than the frames will use
    dense.feed(frames)
    assert_same(dense.g2(bins), expected)


@pytest.mark.usefixtures("small_block")
def test_a_bad_pixel_after_a_uint16_overflow_is_not_correlated(
    frames: NDArray[np.uint16], bins: PixelBins
) -> None:
    dense = frames.astype(np.uint32)
    dense[1, 4] = 300  # uint16 rows from frame 1 on
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed_sparse(3, *to_csr(dense[:3]))
    block = dense[3:4].copy()  # one frame: one scatter, in one thread
    block[0, 0] = 70_000  # beyond uint16: the float32 path
    indptr, pixels, counts = to_csr(block)
    pixels = pixels.copy()
    pixels[-1] = N_PIXELS  # found by the float32 scatter, after the overflow
    with pytest.raises(UsageError):
        corr.feed_sparse(1, indptr, pixels, counts)
    assert corr.n_frames == 3  # the 3 earlier frames only (flushed, not lost)
    corr.feed_sparse(N_FRAMES - 3, *to_csr(dense[3:]))
    assert_same(corr.g2(bins), multitau(dense, bins, path="dense"))
