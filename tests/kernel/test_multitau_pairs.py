"""Two frame arrays in one kernel pass: ``feed(frames, following)`` and the sink's pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau.correlator import MultiTauCorrelator, PixelBins, multitau
from xpcs_kernel.multitau.feed import FeedEngine
from xpcs_kernel.multitau.sink import MultiTauSink

from .test_multitau import random_bins
from .test_multitau_stream import assert_same, to_csr

N_FRAMES, N_PIXELS = 700, 600  # 3 tiles; 700 frames span 10 levels and several BLOCKs


@pytest.fixture(scope="module")
def frames() -> NDArray[np.uint16]:
    return np.random.default_rng(31).poisson(1.7, size=(N_FRAMES, N_PIXELS)).astype(np.uint16)


@pytest.fixture(scope="module")
def index() -> NDArray[np.intp]:
    # a masked selection: runs of detector pixels and isolated ones
    keep = np.random.default_rng(32).random(N_PIXELS) < 0.7
    keep[100:300] = True
    return np.flatnonzero(keep)


@pytest.fixture(scope="module")
def bins(index: NDArray[np.intp]) -> PixelBins:
    return random_bins(np.random.default_rng(33), index.size)


def _count_kernel_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Frames per kernel call of every correlator from now on."""
    calls: list[int] = []
    real = FeedEngine.run_dense

    def spy(self: FeedEngine, state: Any, arr: Any, scale: Any, *args: Any, **kw: Any) -> None:
        more = kw.get("more")
        calls.append(int(arr.shape[0]) + (0 if more is None else int(more.shape[0])))
        real(self, state, arr, scale, *args, **kw)

    monkeypatch.setattr(FeedEngine, "run_dense", spy)
    return calls


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize(("first", "second"), [(139, 139), (1, 300), (255, 2), (256, 256)])
def test_a_pair_sums_exactly_as_its_concatenation(
    frames: NDArray[np.uint16],
    index: NDArray[np.intp],
    bins: PixelBins,
    first: int,
    second: int,
    normalize: bool,
) -> None:
    def run(pairs: bool) -> Any:
        corr = MultiTauCorrelator(N_PIXELS, pixel_index=index, normalize_frame=normalize)
        start = 0
        while start < N_FRAMES:
            a = frames[start : start + first]
            b = frames[start + first : start + first + second]
            if pairs:
                corr.feed(a, b)
            else:
                corr.feed(np.concatenate([a, b]))
            start += first + second
        assert corr.n_frames == N_FRAMES
        return corr.g2(bins)

    paired = run(True)
    assert_same(paired, run(False))  # one kernel call each: the same float32 sums
    whole = multitau(frames, bins, pixel_index=index, normalize_frame=normalize)
    np.testing.assert_allclose(paired.g2, whole.g2, rtol=0 if not normalize else 1e-6)


def test_a_pair_is_one_kernel_call(
    frames: NDArray[np.uint16], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_kernel_calls(monkeypatch)
    corr = MultiTauCorrelator(N_PIXELS)
    corr.feed(frames[:100], frames[100:250].reshape(150, 20, 30))  # (n, H, W) works too
    corr.feed(frames[250:300], frames[300:300])  # an empty second array
    corr.feed(frames[300:300], frames[300:340])  # an empty first array
    assert calls == [250, 50, 40]
    assert corr.n_frames == 340


def test_arrays_of_different_types_are_fed_one_after_the_other(
    frames: NDArray[np.uint16],
    bins: PixelBins,
    index: NDArray[np.intp],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _count_kernel_calls(monkeypatch)
    corr = MultiTauCorrelator(N_PIXELS, pixel_index=index)
    corr.feed(frames[:300].astype(np.uint8), frames[300:])
    assert calls == [300, 400]
    ref = MultiTauCorrelator(N_PIXELS, pixel_index=index)
    ref.feed(frames[:300])
    ref.feed(frames[300:])
    assert_same(corr.g2(bins), ref.g2(bins))  # integer counts: uint8 and uint16 agree


def test_a_bad_second_array_feeds_neither(frames: NDArray[np.uint16]) -> None:
    corr = MultiTauCorrelator(N_PIXELS)
    with pytest.raises(UsageError, match="frames") as err:
        corr.feed(frames[:50], frames[50:80, :-1])
    assert err.value.argument == "frames"
    with pytest.raises(UsageError, match="integer or float"):
        corr.feed(frames[:50], np.zeros((3, N_PIXELS), dtype=complex))
    assert corr.n_frames == 0


@pytest.mark.parametrize("chunk", [64, 139, 233])
def test_the_streaming_sink_correlates_chunks_in_pairs(
    frames: NDArray[np.uint16],
    index: NDArray[np.intp],
    bins: PixelBins,
    chunk: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _count_kernel_calls(monkeypatch)
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES, in_memory_bytes=0)
    for start in range(0, N_FRAMES, chunk):
        sink.feed(frames[start : start + chunk].reshape(-1, 20, 30))
    result = sink.g2(bins)
    sizes = [min(chunk, N_FRAMES - s) for s in range(0, N_FRAMES, chunk)]
    pairs = [sum(sizes[i : i + 2]) for i in range(0, len(sizes), 2)]  # the odd last one alone
    assert calls == pairs
    assert not sink.in_memory
    whole = multitau(frames, bins, pixel_index=index)
    np.testing.assert_array_equal(result.pair_counts, whole.pair_counts)
    np.testing.assert_allclose(result.g2, whole.g2, rtol=0)  # integer counts: exact


def test_the_sink_correlates_a_held_chunk_before_event_frames(
    frames: NDArray[np.uint16], index: NDArray[np.intp], bins: PixelBins
) -> None:
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES, in_memory_bytes=0)
    sink.feed(frames[:100])  # held for a pair
    indptr, pixels, counts = to_csr(frames[100:])
    sink.feed_sparse(N_FRAMES - 100, indptr, pixels, counts)
    whole = multitau(frames, bins, pixel_index=index)
    np.testing.assert_allclose(sink.g2(bins).g2, whole.g2, rtol=0)


def test_the_sink_raises_on_a_bad_chunk_at_once(frames: NDArray[np.uint16]) -> None:
    sink = MultiTauSink(
        N_PIXELS, pixel_index=np.arange(N_PIXELS), n_frames=N_FRAMES, in_memory_bytes=0
    )
    with pytest.raises(UsageError, match="shape"):
        sink.feed(frames[:10, :-5])  # not held for later: the error names this chunk


def test_the_sink_feeds_large_chunks_alone(
    frames: NDArray[np.uint16],
    index: NDArray[np.intp],
    bins: PixelBins,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import xpcs_kernel.multitau.sink as sink_module

    monkeypatch.setattr(sink_module, "PAIR_BYTES", 100 * N_PIXELS * 2)  # 100 uint16 frames
    calls = _count_kernel_calls(monkeypatch)
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES, in_memory_bytes=0)
    for start, stop in ((0, 200), (200, 260), (260, 300), (300, 700)):
        sink.feed(frames[start:stop])
    result = sink.g2(bins)
    assert calls == [200, 100, 400]  # 200 and 400 frames: alone; 60 + 40: a pair
    np.testing.assert_allclose(result.g2, multitau(frames, bins, pixel_index=index).g2, rtol=0)


def test_a_bad_chunk_after_a_held_one_loses_nothing(
    frames: NDArray[np.uint16], index: NDArray[np.intp], bins: PixelBins
) -> None:
    sink = MultiTauSink(N_PIXELS, pixel_index=index, n_frames=N_FRAMES, in_memory_bytes=0)
    sink.feed(frames[:100])  # held
    with pytest.raises(UsageError, match="shape"):
        sink.feed(frames[100:110, :-1])
    sink.feed(frames[100:])  # the caller goes on: the held frames were correlated
    np.testing.assert_allclose(
        sink.g2(bins).g2, multitau(frames, bins, pixel_index=index).g2, rtol=0
    )
