"""The eager dense path correlates pixel groups one after another (bounded state)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

import xpcs_kernel.multitau.correlator as multitau_module
from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.multitau.correlator import G2Result, MultiTauCorrelator, PixelBins, multitau
from xpcs_kernel.multitau.eager import correlate_by_groups
from xpcs_kernel.multitau.feed import FeedEngine
from xpcs_kernel.multitau.state import CorrelatorState

from .test_multitau import assert_matches, random_bins, reference
from .test_multitau_stream import assert_same

N_FRAMES, N_PIXELS = 300, 1900  # 8 tiles: several groups of one or two tiles


@pytest.fixture(scope="module")
def frames() -> NDArray[np.uint8]:
    rng = np.random.default_rng(77)
    return rng.poisson(1.2, size=(N_FRAMES, N_PIXELS)).astype(np.uint8)


@pytest.fixture(scope="module")
def bins() -> PixelBins:
    return random_bins(np.random.default_rng(5), N_PIXELS - 100)


@pytest.fixture(scope="module")
def index() -> NDArray[np.intp]:
    rng = np.random.default_rng(6)
    return np.sort(rng.choice(N_PIXELS, size=N_PIXELS - 100, replace=False))


def _one_correlator(
    frames: NDArray[np.uint8], bins: PixelBins, index: NDArray[np.intp], *, normalize: bool = False
) -> G2Result:
    """Every pixel in one state, all frames in one call (the same float32 sums)."""
    corr = MultiTauCorrelator(N_PIXELS, pixel_index=index, normalize_frame=normalize)
    corr.feed(frames)
    return corr.g2(bins)


@pytest.mark.parametrize("group_pixels", [256, 512, 700, 10_000])
@pytest.mark.parametrize("normalize_frame", [False, True])
def test_groups_equal_one_correlator(
    frames: NDArray[np.uint8],
    bins: PixelBins,
    index: NDArray[np.intp],
    group_pixels: int,
    normalize_frame: bool,
) -> None:
    engine = FeedEngine(N_PIXELS, pixel_index=index, threads=2, normalize_frame=normalize_frame)
    grouped = correlate_by_groups(
        engine, frames, bins, delays_per_level=4, group_pixels=group_pixels
    )
    assert_same(grouped, _one_correlator(frames, bins, index, normalize=normalize_frame))
    if not normalize_frame:
        ref = reference(
            frames[:, index], bins.static_index, bins.dynamic_of_static, bins.n_dynamic
        )
        assert_matches(grouped, ref, rtol=1e-6)


def test_groups_do_not_depend_on_threads(
    frames: NDArray[np.uint8], bins: PixelBins, index: NDArray[np.intp]
) -> None:
    results = [
        correlate_by_groups(
            FeedEngine(N_PIXELS, pixel_index=index, threads=t, normalize_frame=False),
            frames,
            bins,
            delays_per_level=4,
            group_pixels=256,
        )
        for t in (1, 2, 3)
    ]
    for other in results[1:]:
        for name in ("g2", "g2_err", "G2_static", "IP_static", "IF_static"):
            np.testing.assert_array_equal(getattr(other, name), getattr(results[0], name))


def test_multitau_uses_small_groups(
    frames: NDArray[np.uint8],
    bins: PixelBins,
    index: NDArray[np.intp],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    real = correlate_by_groups

    def spy(*args: object, **kwargs: int) -> object:
        seen.append(kwargs["group_pixels"])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(multitau_module, "_EAGER_GROUP_BYTES", 1)  # one tile per group
    monkeypatch.setattr(multitau_module, "correlate_by_groups", spy)
    result = multitau(frames, bins, pixel_index=index, path="dense")
    assert seen == [256]
    assert_same(result, _one_correlator(frames, bins, index))
    # not kernel-ready (float16): the plain correlator, same numbers
    half = multitau(frames.astype(np.float16), bins, pixel_index=index, path="dense")
    assert seen == [256]
    assert_same(half, result)


def test_group_errors(frames: NDArray[np.uint8], bins: PixelBins, index: NDArray[np.intp]) -> None:
    engine = FeedEngine(N_PIXELS, pixel_index=index, threads=1, normalize_frame=False)
    with pytest.raises(CorrelationError, match="1 frame"):
        correlate_by_groups(engine, frames[:1], bins, delays_per_level=4, group_pixels=256)
    wrong = PixelBins(np.zeros(5, dtype=np.intp), np.array([0]), 1)
    with pytest.raises(UsageError) as info:
        correlate_by_groups(engine, frames, wrong, delays_per_level=4, group_pixels=256)
    assert info.value.argument == "bins"


def test_reset_state_equals_fresh(frames: NDArray[np.uint8]) -> None:
    bins = PixelBins(np.arange(600) % 4, np.array([0, 0, 1, 1]), 2)
    used = MultiTauCorrelator(600)
    used.feed(frames[:, :600][::-1])  # something else first
    used._state.reset()
    assert used.n_frames == 0
    used.feed(frames[:, :600])
    fresh = MultiTauCorrelator(600)
    fresh.feed(frames[:, :600])
    assert_same(used.g2(bins), fresh.g2(bins))
    state_a, state_b = used.state(), fresh.state()
    for key in state_b:
        np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)
    assert isinstance(used._state, CorrelatorState)
