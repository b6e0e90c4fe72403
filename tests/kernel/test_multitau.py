"""Multi-tau correlator: delay scheme, exact values, float64 reference, errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.multitau.correlator import (
    G2Result,
    MultiTauCorrelator,
    PixelBins,
    choose_path,
    delay_list,
    multitau,
)


def reference(
    frames: NDArray[np.generic],
    static: NDArray[np.intp],
    dyn_of_static: NDArray[np.intp],
    n_dyn: int,
    *,
    dpl: int = 4,
) -> dict[str, NDArray[np.float64]]:
    """Straightforward float64 multi-tau: explicit levels and numpy slicing."""
    x = np.asarray(frames, dtype=np.float64).reshape(frames.shape[0], -1)
    n_static = dyn_of_static.size
    dyn_p = dyn_of_static[static]
    rows: dict[str, list[NDArray[np.float64]]] = {
        k: [] for k in ("delays", "counts", "g2", "err", "G2", "IP", "IF")
    }
    level = 0
    while True:
        n_level = x.shape[0]
        lo = 1 if level == 0 else dpl + 1
        for k in range(lo, min(2 * dpl + 1, n_level)):
            g2_p = (x[:-k] * x[k:]).mean(axis=0)
            ip_p = x[:-k].mean(axis=0)
            if_p = x[k:].mean(axis=0)
            s_g2 = np.array([g2_p[static == s].mean() for s in range(n_static)])
            s_ip = np.array([ip_p[static == s].mean() for s in range(n_static)])
            s_if = np.array([if_p[static == s].mean() for s in range(n_static)])
            g_s = s_g2 / (s_ip * s_if)
            ratio = g2_p / (ip_p * if_p)
            rows["delays"].append(np.array(k << level))
            rows["counts"].append(np.array(n_level - k))
            rows["g2"].append(np.array([g_s[dyn_of_static == d].mean() for d in range(n_dyn)]))
            rows["err"].append(
                np.array(
                    [ratio[dyn_p == d].std() / np.sqrt((dyn_p == d).sum()) for d in range(n_dyn)]
                )
            )
            rows["G2"].append(s_g2)
            rows["IP"].append(s_ip)
            rows["IF"].append(s_if)
        if n_level // 2 <= dpl + 1:
            break
        half = n_level // 2
        x = 0.5 * (x[0 : 2 * half : 2] + x[1 : 2 * half : 2])
        level += 1
    return {key: np.array(value) for key, value in rows.items()}


def assert_matches(
    result: G2Result,
    ref: dict[str, NDArray[np.float64]],
    rtol: float,
    *,
    err_atol: float | None = None,
) -> None:
    np.testing.assert_array_equal(result.delays, ref["delays"])
    np.testing.assert_array_equal(result.pair_counts, ref["counts"])
    np.testing.assert_allclose(result.g2, ref["g2"], rtol=rtol)
    np.testing.assert_allclose(result.G2_static, ref["G2"], rtol=rtol)
    np.testing.assert_allclose(result.IP_static, ref["IP"], rtol=rtol)
    np.testing.assert_allclose(result.IF_static, ref["IF"], rtol=rtol)
    # The error is a spread of per-pixel ratios near 1: float32 frames leave it
    # ~1e-7 absolute uncertainty (1e-5 relative). The last delay has one pair:
    # the reference gives ~1e-17 there, ours exactly 0.
    atol = err_atol if err_atol is not None else (1e-12 if rtol < 1e-6 else 1e-8)
    np.testing.assert_allclose(result.g2_err, ref["err"], rtol=max(rtol, 1e-9), atol=atol)


def random_bins(rng: np.random.Generator, n_pixels: int) -> PixelBins:
    static = rng.integers(0, 12, n_pixels)
    static[:12] = np.arange(12)  # no empty static bin
    return PixelBins(static, np.arange(12) // 3, 4)


# --- delay scheme ---------------------------------------------------------------


def test_delay_list_2000_frames() -> None:
    scheme = delay_list(2000)
    assert scheme.delays.size == 38
    assert scheme.delays[-1] == 1536
    np.testing.assert_array_equal(scheme.delays[:12], [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16])
    assert scheme.levels.max() == 8
    np.testing.assert_array_equal(scheme.levels[-2:], [8, 8])
    np.testing.assert_array_equal(scheme.lags[-2:], [5, 6])
    np.testing.assert_array_equal(scheme.delays, scheme.lags << scheme.levels)
    np.testing.assert_array_equal(scheme.pair_counts[:2], [1999, 1998])
    np.testing.assert_array_equal(scheme.pair_counts[-2:], [2, 1])  # N_8 = 7
    np.testing.assert_array_equal(scheme.pair_counts, (2000 >> scheme.levels) - scheme.lags)
    assert np.all(np.diff(scheme.delays) > 0)


@pytest.mark.parametrize(
    ("n_frames", "n_delays", "last"),
    [(0, 0, None), (1, 0, None), (2, 1, 1), (9, 8, 8), (11, 8, 8), (12, 9, 10), (16, 11, 14)],
)
def test_delay_list_small(n_frames: int, n_delays: int, last: int | None) -> None:
    scheme = delay_list(n_frames)
    assert scheme.delays.size == n_delays
    if last is not None:
        assert scheme.delays[-1] == last
        assert scheme.pair_counts.min() == (1 if n_frames != 11 else 3)


def test_delay_list_other_density() -> None:
    scheme = delay_list(64, delays_per_level=2)
    np.testing.assert_array_equal(scheme.delays, [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48])


# --- exact values -----------------------------------------------------------------


def test_hand_computed_example() -> None:
    # pixel A = 1..6, pixel B = 2 always; lag 1 of A: G2 = 70/5 = 14, IP = 3, IF = 4
    frames = np.array([[1, 2], [2, 2], [3, 2], [4, 2], [5, 2], [6, 2]], dtype=np.uint16)
    one_bin = multitau(frames, PixelBins(np.array([0, 0]), np.array([0]), 1))
    np.testing.assert_array_equal(one_bin.delays, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(one_bin.pair_counts, [5, 4, 3, 2, 1])
    assert one_bin.G2_static[0, 0] == pytest.approx((14 + 4) / 2)
    assert one_bin.IP_static[0, 0] == pytest.approx((3 + 2) / 2)
    assert one_bin.IF_static[0, 0] == pytest.approx((4 + 2) / 2)
    assert one_bin.g2[0, 0] == pytest.approx(9 / 7.5)
    # per-pixel ratios 7/6 and 1: std 1/12, over sqrt(2) pixels
    assert one_bin.g2_err[0, 0] == pytest.approx(1 / (12 * np.sqrt(2)))
    # lag 5: the single pair (1, 6) and (2, 2)
    assert one_bin.g2[4, 0] == pytest.approx((6 + 4) / 2 / ((1 + 2) / 2 * (6 + 2) / 2))
    assert one_bin.g2_err[4, 0] == 0.0
    # two static bins in one dynamic bin: mean of 7/6 and 1
    two_bins = multitau(frames, PixelBins(np.array([0, 1]), np.array([0, 0]), 1))
    assert two_bins.g2[0, 0] == pytest.approx((7 / 6 + 1) / 2)
    assert two_bins.IP_static[0].tolist() == pytest.approx([3.0, 2.0])


def test_level_one_uses_pair_averages() -> None:
    # 12 frames: level 1 has 6 frames (averages of pairs) and lag 5 = delay 10
    values = np.array([0, 2, 4, 4, 1, 1, 3, 5, 0, 0, 6, 2], dtype=np.float64)
    result = multitau(values[:, None], PixelBins(np.array([0]), np.array([0]), 1))
    assert result.delays[-1] == 10
    level1 = values.reshape(6, 2).mean(axis=1)  # 1, 4, 1, 4, 0, 4
    assert result.G2_static[-1, 0] == pytest.approx(level1[0] * level1[5])
    assert result.IP_static[-1, 0] == pytest.approx(level1[0])
    assert result.IF_static[-1, 0] == pytest.approx(level1[5])


def test_constant_intensity_gives_one() -> None:
    frames = np.full((300, 40), 7, dtype=np.uint16)
    result = multitau(frames, PixelBins(np.arange(40) % 5, np.array([0, 0, 1, 1, 1]), 2))
    np.testing.assert_allclose(result.g2, 1.0, rtol=1e-12)
    np.testing.assert_allclose(result.g2_err, 0.0, atol=1e-12)
    np.testing.assert_allclose(result.IP_static, 7.0, rtol=1e-12)


def test_last_delay_error_is_exactly_zero() -> None:
    rng = np.random.default_rng(5)
    frames = rng.random((2000, 30)).astype(np.float32) * 10
    result = multitau(frames, PixelBins(np.zeros(30, dtype=np.intp), np.array([0]), 1))
    assert result.delays[-1] == 1536
    assert result.pair_counts[-1] == 1
    assert result.g2_err[-1, 0] == 0.0
    assert result.g2_err[-2, 0] > 0.0


# --- against the float64 reference ------------------------------------------------


@pytest.mark.parametrize(("n_frames", "n_pixels"), [(301, 700), (64, 300), (1000, 257)])
def test_integer_frames_match_reference(n_frames: int, n_pixels: int) -> None:
    rng = np.random.default_rng(n_frames)
    frames = rng.poisson(3.0, size=(n_frames, n_pixels)).astype(np.uint16)
    bins = random_bins(rng, n_pixels)
    ref = reference(frames, bins.static_index, bins.dynamic_of_static, bins.n_dynamic)
    assert_matches(multitau(frames, bins, path="dense"), ref, rtol=1e-9)


def test_float_frames_match_reference() -> None:
    rng = np.random.default_rng(7)
    frames = rng.gamma(2.0, 3.0, size=(517, 400))
    bins = random_bins(rng, 400)
    ref = reference(frames, bins.static_index, bins.dynamic_of_static, bins.n_dynamic)
    assert_matches(multitau(frames, bins), ref, rtol=1e-6)


@pytest.mark.parametrize("dpl", [1, 2, 3])
def test_other_delays_per_level_match_reference(dpl: int) -> None:
    rng = np.random.default_rng(dpl)
    frames = rng.poisson(2.0, size=(203, 50)).astype(np.uint16)
    bins = random_bins(rng, 50)
    corr = MultiTauCorrelator(50, delays_per_level=dpl)
    corr.feed(frames[:77])
    corr.feed(frames[77:])
    ref = reference(frames, bins.static_index, bins.dynamic_of_static, 4, dpl=dpl)
    assert_matches(corr.g2(bins), ref, rtol=1e-9)


def test_three_dimensional_frames() -> None:
    rng = np.random.default_rng(3)
    frames = rng.poisson(1.0, size=(40, 6, 7)).astype(np.uint16)
    bins = PixelBins(np.arange(42) % 4, np.array([0, 0, 1, 1]), 2)
    flat = multitau(frames.reshape(40, 42), bins)
    np.testing.assert_array_equal(multitau(frames, bins).g2, flat.g2)


def test_pixel_index_selects_pixels() -> None:
    rng = np.random.default_rng(11)
    frames = rng.poisson(2.0, size=(150, 20, 30)).astype(np.uint16)
    index = np.flatnonzero(rng.random(600) < 0.4)[::-1].copy()  # any order
    bins = random_bins(rng, index.size)
    ref = reference(
        frames.reshape(150, 600)[:, index], bins.static_index, bins.dynamic_of_static, 4
    )
    assert_matches(multitau(frames, bins, pixel_index=index), ref, rtol=1e-9)


def test_normalize_frame_divides_by_frame_mean() -> None:
    rng = np.random.default_rng(13)
    drift = np.linspace(1.0, 3.0, 200)[:, None]
    frames = rng.poisson(4.0 * drift, size=(200, 300)).astype(np.uint16)
    index = np.arange(50, 290)
    bins = random_bins(rng, index.size)
    selected = frames[:, index].astype(np.float64)
    normalized = selected / selected.mean(axis=1, keepdims=True)
    ref = reference(normalized, bins.static_index, bins.dynamic_of_static, 4)
    result = multitau(frames, bins, pixel_index=index, normalize_frame=True)
    assert_matches(result, ref, rtol=1e-6)
    sparse = multitau(frames, bins, pixel_index=index, normalize_frame=True, path="sparse")
    np.testing.assert_allclose(sparse.g2, result.g2, rtol=1e-6)


# --- errors -----------------------------------------------------------------------


def test_bad_frames_raise_usage_error() -> None:
    corr = MultiTauCorrelator(12)
    bad_frames = [np.zeros(12), np.zeros((3, 13)), np.zeros((3, 2, 2, 3))]
    bad_frames.append(np.zeros((2, 12), complex))
    for bad in bad_frames:
        with pytest.raises(UsageError) as info:
            corr.feed(bad)
        assert info.value.argument == "frames"
    assert corr.n_frames == 0


def test_too_few_frames_raise_correlation_error() -> None:
    corr = MultiTauCorrelator(4)
    bins = PixelBins(np.zeros(4, dtype=np.intp), np.array([0]), 1)
    with pytest.raises(CorrelationError):
        corr.g2(bins)
    corr.feed(np.ones((1, 4), dtype=np.uint16))
    with pytest.raises(CorrelationError):
        corr.g2(bins)
    corr.feed(np.ones((1, 4), dtype=np.uint16))
    assert corr.g2(bins).delays.tolist() == [1]


def test_bad_bins_and_options() -> None:
    with pytest.raises(UsageError, match="static_index"):
        PixelBins(np.array([0, 3]), np.array([0, 0]), 1)
    with pytest.raises(UsageError, match="dynamic_of_static"):
        PixelBins(np.array([0, 1]), np.array([0, 2]), 2)
    with pytest.raises(UsageError, match="n_dynamic"):
        PixelBins(np.array([0]), np.array([0]), 0)
    with pytest.raises(UsageError, match="static_index"):
        PixelBins(np.array([0.5]), np.array([0]), 1)
    corr = MultiTauCorrelator(4)
    corr.feed(np.ones((5, 4), dtype=np.uint16))
    with pytest.raises(UsageError) as info:
        corr.g2(PixelBins(np.zeros(3, dtype=np.intp), np.array([0]), 1))
    assert info.value.argument == "bins"
    for kwargs, name in (
        ({"pixel_index": np.array([0, 4])}, "pixel_index"),
        ({"pixel_index": np.array([1, 1])}, "pixel_index"),
        ({"pixel_index": np.array([2, 0, 2])}, "pixel_index"),  # unordered, repeated
        ({"delays_per_level": 0}, "delays_per_level"),
        ({"threads": 0}, "threads"),
    ):
        with pytest.raises(UsageError) as info:
            MultiTauCorrelator(4, **kwargs)  # type: ignore[arg-type]
        assert info.value.argument == name
    with pytest.raises(UsageError):
        choose_path(1.5)
    one_bin = PixelBins(np.zeros(4, dtype=np.intp), np.array([0]), 1)
    with pytest.raises(UsageError, match="path"):
        multitau(np.ones((5, 4)), one_bin, path="x")  # type: ignore[arg-type]


def test_choose_path() -> None:
    assert choose_path(1.0) == "dense"
    assert choose_path(0.5) == "dense"
    assert choose_path(0.0) in ("dense", "sparse")
    # event files stay events below the measured crossover
    assert choose_path(0.01, events=True) == "sparse"
    assert choose_path(0.099, events=True) == "sparse"
    assert choose_path(0.5, events=True) == "dense"


def test_long_bright_series_do_not_drift() -> None:
    # Sums of products reach 5e7 > 2^24, where a float32 running sum would lose
    # ~1e-4; the float64 flushes keep the error at the float32 rounding of one
    # upper-level product (level sums of 2^L frames above 2^12 are not exact).
    rng = np.random.default_rng(17)
    frames = rng.integers(40, 60, size=(20_000, 6)).astype(np.uint16)
    bins = PixelBins(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 1]), 2)
    ref = reference(frames, bins.static_index, bins.dynamic_of_static, 2)
    result = multitau(frames, bins)
    assert_matches(result, ref, rtol=2e-7, err_atol=1e-7)
    # the first levels (products of sums below 2^12) are exact
    np.testing.assert_allclose(result.G2_static[:16], ref["G2"][:16], rtol=1e-13)


def test_unordered_pixel_index_equals_sorted() -> None:
    rng = np.random.default_rng(5)
    frames = rng.poisson(2.0, size=(120, 64)).astype(np.uint8)
    idx = np.array([40, 3, 17, 60, 8])
    order = np.argsort(idx)
    bins = PixelBins(np.array([0, 1, 0, 1, 1]), np.array([0, 0]), 1)
    unordered = multitau(frames, bins, pixel_index=idx)
    sorted_bins = PixelBins(bins.static_index[order], bins.dynamic_of_static, 1)
    ordered = multitau(frames, sorted_bins, pixel_index=idx[order])
    np.testing.assert_allclose(unordered.g2, ordered.g2, rtol=1e-12)
    assert unordered.g2.shape == (ordered.delays.size, 1)


@pytest.mark.parametrize("layout", ["runs", "scattered"])
def test_pixel_index_gather_equals_contiguous_copy(layout: str) -> None:
    """Masked tiles are copied run by run (few runs) or pixel by pixel (many):
    either way the result equals correlating the selected columns directly."""
    rng = np.random.default_rng(11)
    n_pix = 4096
    frames = rng.poisson(1.5, size=(300, n_pix)).astype(np.uint16)
    if layout == "runs":  # 64-pixel stripes with 16-pixel gaps: a few runs per tile
        idx = np.flatnonzero((np.arange(n_pix) % 80) < 64)
    else:  # a random half: far more runs per tile than the run-copy limit
        idx = np.sort(rng.choice(n_pix, size=n_pix // 2, replace=False))
    bins = PixelBins(np.arange(idx.size) % 7, np.arange(7) % 3, 3)
    gathered = MultiTauCorrelator(n_pix, pixel_index=idx)
    gathered.feed(frames)
    direct = MultiTauCorrelator(idx.size)
    direct.feed(np.ascontiguousarray(frames[:, idx]))
    a, b = gathered.g2(bins), direct.g2(bins)
    np.testing.assert_array_equal(a.G2_static, b.G2_static)
    np.testing.assert_array_equal(a.g2, b.g2)
