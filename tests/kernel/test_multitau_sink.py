"""The pipeline's multi-tau sink: frames gathered in memory when they fit, else streamed."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.multitau.correlator import MultiTauCorrelator, PixelBins
from xpcs_kernel.multitau.sink import MultiTauSink

from .test_multitau_stream import assert_same, to_csr

N_FRAMES, N_PIXELS = 240, 700


@pytest.fixture(scope="module")
def frames() -> NDArray[np.uint16]:
    return np.random.default_rng(8).poisson(1.0, size=(N_FRAMES, N_PIXELS)).astype(np.uint16)


@pytest.fixture(scope="module")
def index() -> NDArray[np.intp]:
    return np.flatnonzero(np.arange(N_PIXELS) % 7 != 3)


@pytest.fixture(scope="module")
def bins(index: NDArray[np.intp]) -> PixelBins:
    static = np.arange(index.size) % 6
    return PixelBins(static, np.array([0, 0, 1, 1, 2, 2]), 3)


def _reference(frames: NDArray[np.uint16], index: NDArray[np.intp], bins: PixelBins):  # type: ignore[no-untyped-def]
    corr = MultiTauCorrelator(N_PIXELS, pixel_index=index)
    corr.feed(frames)
    return corr.g2(bins)


@pytest.mark.parametrize("budget", [0, N_FRAMES * N_PIXELS * 2])
def test_in_memory_and_streamed_agree(
    frames: NDArray[np.uint16], index: NDArray[np.intp], bins: PixelBins, budget: int
) -> None:
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES, in_memory_bytes=budget)
    for f0 in range(0, N_FRAMES, 50):
        sink.feed(frames[f0 : f0 + 50].reshape(-1, 20, 35))  # (n, H, W) chunks
    assert sink.in_memory == (budget > 0)
    assert_same(sink.g2(bins), _reference(frames, index, bins))


def test_unexpected_chunks_spill_to_streaming(
    frames: NDArray[np.uint16], index: NDArray[np.intp], bins: PixelBins
) -> None:
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES)
    sink.feed(frames[:100])
    assert sink.in_memory
    sink.feed(frames[100:].astype(np.uint32))  # another dtype: the stack goes to the correlator
    assert not sink.in_memory
    assert_same(sink.g2(bins), _reference(frames, index, bins))
    more = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=100)
    more.feed(frames[:100])
    more.feed(frames[100:])  # more frames than announced: streamed, nothing lost
    assert not more.in_memory
    assert_same(more.g2(bins), _reference(frames, index, bins))


def test_sparse_chunks_stream(
    frames: NDArray[np.uint16], index: NDArray[np.intp], bins: PixelBins
) -> None:
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES)
    sink.feed(frames[:60])
    for f0 in range(60, N_FRAMES, 90):
        sink.feed_sparse(*_csr(frames[f0 : f0 + 90]))
    assert not sink.in_memory
    assert_same(sink.g2(bins), _reference(frames, index, bins))


def _csr(
    block: NDArray[np.uint16],
) -> tuple[int, NDArray[np.int64], NDArray[np.intp], NDArray[np.uint16]]:
    indptr, pixels, counts = to_csr(block)
    return block.shape[0], indptr, pixels, counts
