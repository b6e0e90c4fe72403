"""Multi-tau reduction kernel: the former numpy reduction, NaN rules, threads, numerics."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.multitau.correlator import MultiTauCorrelator, PixelBins, multitau

from .test_multitau import random_bins, reference


def numpy_reduction(corr: MultiTauCorrelator, bins: PixelBins) -> dict[str, NDArray[np.float64]]:
    """The former per-delay numpy reduction (bincount, two-pass variance), from the accessors."""
    state = corr._state
    scheme = corr.delay_scheme()
    static, dyn = bins.static_index, bins.dynamic_of_static
    n_s, n_d = bins.n_static, bins.n_dynamic
    dyn_p = dyn[static]
    pix = np.bincount(static, minlength=n_s).astype(np.float64)
    out: dict[str, list[NDArray[np.float64]]] = {k: [] for k in ("g2", "err", "G2", "IP", "IF")}
    with np.errstate(divide="ignore", invalid="ignore"):
        for lev, k, m in zip(scheme.levels, scheme.lags, scheme.pair_counts, strict=True):
            total = state.level_total(int(lev))
            g2_p = state.pair_sum(int(lev), int(k)) / m
            ip_p = (total - state.last_sum(int(lev), int(k))) / m
            if_p = (total - state.head_sum(int(lev), int(k))) / m
            means = [np.bincount(static, v, n_s) / pix for v in (g2_p, ip_p, if_p)]
            for name, value in zip(("G2", "IP", "IF"), means, strict=True):
                out[name].append(value)
            g_s = means[0] / (means[1] * means[2])
            ok = np.isfinite(g_s)
            out["g2"].append(np.bincount(dyn[ok], g_s[ok], n_d) / np.bincount(dyn[ok], None, n_d))
            norm = ip_p * if_p
            v = norm > 0
            n = np.bincount(dyn_p[v], None, n_d).astype(np.float64)
            ratio = g2_p[v] / norm[v]
            mean = np.bincount(dyn_p[v], ratio, n_d) / n
            var = np.bincount(dyn_p[v], (ratio - mean[dyn_p[v]]) ** 2, n_d) / n
            err = np.sqrt(var) / np.sqrt(n)
            out["err"].append(np.where(n > 0, 0.0, np.nan) if m == 1 else err)
    state.release()
    return {key: np.array(value) for key, value in out.items()}


def test_reduction_kernel_matches_numpy_reduction_and_nan_rules() -> None:
    # 3000 pixels in 12 tiles (several chunks), ring-like runs of static bins, an
    # empty static bin, dark pixels (IP IF = 0) and a dynamic bin of dark pixels only.
    rng = np.random.default_rng(23)
    n_pix = 3000
    frames = rng.poisson(rng.gamma(2.0, 1.0, n_pix), size=(2000, n_pix)).astype(np.uint16)
    static = np.repeat(np.arange(7), -(-n_pix // 7))[:n_pix]
    static[::97] = 6
    frames[:, static == 6] = 0  # dynamic bin 3 holds static bin 6 only: all dark
    frames[:, ::13] = 0
    static[static == 2] = 1  # static bin 2 is empty
    bins = PixelBins(static, np.array([0, 0, 1, 1, 2, 2, 3]), 4)
    corr = MultiTauCorrelator(n_pix)
    corr.feed(frames[:777])
    corr.feed(frames[777:])
    result = corr.g2(bins)
    expected = numpy_reduction(corr, bins)
    for name, got in (("g2", result.g2), ("err", result.g2_err), ("G2", result.G2_static)):
        np.testing.assert_allclose(got, expected[name], rtol=1e-12, atol=0, equal_nan=True)
    np.testing.assert_allclose(result.IP_static, expected["IP"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(result.IF_static, expected["IF"], rtol=1e-12, equal_nan=True)
    assert np.isnan(result.G2_static[:, 2]).all()
    assert np.isnan(result.g2[:, 3]).all()
    assert np.isnan(result.g2_err[:, 3]).all()
    assert np.isfinite(result.g2_err[:, :3]).all()
    assert (result.g2_err[-1, :3] == 0.0).all()
    assert result.pair_counts[-1] == 1


def test_reduction_does_not_depend_on_threads() -> None:
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(29)
    frames = rng.poisson(2.0, size=(400, 5000)).astype(np.uint8)
    bins = random_bins(rng, 5000)
    corr = MultiTauCorrelator(5000)
    corr.feed(frames)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = corr.g2(bins)
    finally:
        numba.set_num_threads(before)
    many = corr.g2(bins)
    for name in ("g2", "g2_err", "G2_static", "IP_static", "IF_static"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name))


def test_error_is_sound_for_ratios_far_from_zero() -> None:
    # bright pixels, 200 + Poisson(1): ratios 1 + O(1e-5), where a naive one-pass
    # sum r^2 - (sum r)^2 / n would lose most digits of the variance. Levels 0 and 1
    # (12 delays) have exact float32 sums; higher levels are limited by the feed.
    rng = np.random.default_rng(31)
    frames = (200 + rng.poisson(1.0, size=(256, 600))).astype(np.uint16)
    bins = random_bins(rng, 600)
    ref = reference(frames, bins.static_index, bins.dynamic_of_static, bins.n_dynamic)
    result = multitau(frames, bins)
    assert ref["err"][:12].min() > 1e-8
    assert ref["err"][:12].max() < 1e-4
    np.testing.assert_allclose(result.g2_err[:12], ref["err"][:12], rtol=1e-7, atol=0)
