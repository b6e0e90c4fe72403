"""Tests of the two-time correlator (xpcs_kernel.twotime.correlator)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.twotime import correlator as tt_module
from xpcs_kernel.twotime.correlator import TwoTimeCorrelator, TwoTimeResult, twotime
from xpcs_kernel.twotime.diag import finish_gram
from xpcs_kernel.twotime.store import gather_columns


def _reference_c2(
    frames: NDArray[np.float64],
    pixels: NDArray[np.intp],
    static: NDArray[np.intp] | None = None,
) -> NDArray[np.float64]:
    """C(t1, t2) by explicit loops, straight from the definition."""
    n = frames.shape[0]
    series = frames.reshape(n, -1)[:, pixels].astype(np.float64)
    means = series.mean(axis=0)
    if static is not None:  # smoothing by the static bin's mean time average
        means = np.array([means[static == static[p]].mean() for p in range(len(pixels))])
    kept = [p for p in range(series.shape[1]) if means[p] > 0]
    j = np.zeros((n, len(kept)))
    for col, p in enumerate(kept):
        for t in range(n):
            j[t, col] = series[t, p] / means[p]
    c = np.zeros((n, n))
    for t1 in range(n):
        for t2 in range(n):
            num = sum(j[t1, q] * j[t2, q] for q in range(len(kept))) / len(kept)
            den = (sum(j[t1]) / len(kept)) * (sum(j[t2]) / len(kept))
            c[t1, t2] = num / den
    return c


def _reference_diag(c: NDArray[np.float64]) -> NDArray[np.float64]:
    n = c.shape[0]
    return np.array([np.mean([c[t, t + tau] for t in range(n - tau)]) for tau in range(n)])


def _layout(shape: tuple[int, int], n_bins: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """All pixels, bins as vertical stripes (bin of column x = x * n_bins // W)."""
    h, w = shape
    pix = np.arange(h * w, dtype=np.intp)
    dyn = (pix % w) * n_bins // w
    return pix, dyn.astype(np.intp)


def _speckle(
    rng: np.random.Generator,
    n: int,
    n_pix: int,
    tau_c: float,
    m: float | NDArray[np.float64],
    c: float,
) -> NDArray[np.int64]:
    """Poisson counts of a complex AR(1) speckle field (REFERENCE section 6)."""
    a = np.exp(-1.0 / tau_c)
    e = (rng.standard_normal(n_pix) + 1j * rng.standard_normal(n_pix)) / np.sqrt(2)
    out = np.empty((n, n_pix), dtype=np.int64)
    for t in range(n):
        noise = (rng.standard_normal(n_pix) + 1j * rng.standard_normal(n_pix)) / np.sqrt(2)
        e = a * e + np.sqrt(1 - a * a) * noise
        out[t] = rng.poisson(m * ((1 - c) * np.abs(e) ** 2 + c))
    return out


def _assert_same(a: TwoTimeResult, b: TwoTimeResult, rtol: float = 1e-6) -> None:
    np.testing.assert_array_equal(a.bins, b.bins)
    assert a.n_frames == b.n_frames
    for x, y in zip(a.c2, b.c2, strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol)
    np.testing.assert_allclose(a.g2, b.g2, rtol=rtol)
    np.testing.assert_allclose(a.g2_segments, b.g2_segments, rtol=rtol)


def test_constant_intensity_gives_one() -> None:
    frames = np.full((20, 6, 8), 7, dtype=np.uint16)
    pix, dyn = _layout((6, 8), 2)
    res = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=2)
    assert res.n_frames == 20
    np.testing.assert_array_equal(res.bins, [0, 1])
    assert len(res.c2) == 2
    for c in res.c2:
        assert c.dtype == np.float32
        assert c.shape == (20, 20)
        np.testing.assert_allclose(c, 1.0, rtol=1e-6)
    assert res.g2.shape == (20, 2)
    np.testing.assert_allclose(res.g2, 1.0, rtol=1e-6)
    assert res.g2_segments.shape == (5, 4, 2)
    np.testing.assert_allclose(res.g2_segments, 1.0, rtol=1e-6)


def test_matches_explicit_loops() -> None:
    rng = np.random.default_rng(1)
    frames = rng.poisson(2.0, size=(9, 4, 5)).astype(np.float64)
    frames[:, 0, 0] = 0  # a pixel with zero time mean: excluded
    pix, dyn = _layout((4, 5), 2)
    res = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=2, n_segments=3)
    for k in range(2):
        ref = _reference_c2(frames, pix[dyn == k])
        np.testing.assert_allclose(res.c2[k], ref, rtol=2e-6)
        np.testing.assert_allclose(res.g2[:, k], _reference_diag(ref), rtol=1e-6)
        for m in range(3):
            block = ref[3 * m : 3 * m + 3, 3 * m : 3 * m + 3]
            np.testing.assert_allclose(res.g2_segments[m, :, k], _reference_diag(block), rtol=1e-6)
        np.testing.assert_array_equal(res.c2[k], res.c2[k].T)


def test_static_bin_smoothing_matches_explicit_loops() -> None:
    rng = np.random.default_rng(11)
    frames = rng.poisson(2.0, size=(8, 4, 6)).astype(np.float64)
    frames *= np.linspace(0.5, 3, 6)  # intensity gradient along x
    frames[:, :, 5] = 0  # a dark static bin: excluded
    pix, dyn = _layout((4, 6), 2)
    static = pix % 6  # one static bin per column (4 pixels each)
    res = twotime(
        frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=2, static_index=static, n_segments=2
    )
    for k in range(2):
        sel = dyn == k
        ref = _reference_c2(frames, pix[sel], static[sel])
        np.testing.assert_allclose(res.c2[k], ref, rtol=2e-6)
        np.testing.assert_allclose(res.g2[:, k], _reference_diag(ref), rtol=1e-6)
    # smoothing by the static mean differs from per-pixel smoothing
    own = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=2)
    assert np.max(np.abs(own.c2[0] - res.c2[0])) > 1e-3
    assert (res.smoothing, own.smoothing) == ("static", "pixel")


def test_static_smoothing_is_less_biased_than_per_pixel() -> None:
    rng = np.random.default_rng(12)
    n, n_pix, tau_c, c = 500, 2000, 20.0, 0.5
    mu = np.linspace(0.5, 4.0, n_pix)  # 8-fold gradient across the bin
    scaled = _speckle(rng, n, n_pix, tau_c, mu, c)
    pix = np.arange(n_pix)
    dyn = np.zeros(n_pix, np.intp)
    taus = np.arange(1, 9)
    theory = 1 + (1 - c) ** 2 * np.exp(-2 * taus / tau_c)
    static = twotime(
        scaled, pixel_index=pix, dynamic_index=dyn, n_dynamic=1, static_index=pix // 20
    )
    own = twotime(scaled, pixel_index=pix, dynamic_index=dyn, n_dynamic=1)
    bias_static = float(np.mean(static.g2[taus, 0] - theory))
    bias_own = float(np.mean(own.g2[taus, 0] - theory))
    assert abs(bias_static) < 0.006
    assert bias_own < -0.01  # about -tau_c / N, as documented


def test_hand_computed_two_pixels() -> None:
    # one bin, two pixels, two frames: I = [[1, 3], [3, 1]]; means = 2, 2
    # J = [[.5, 1.5], [1.5, .5]]; <J(t)> = 1; C(0,0) = (.25 + 2.25)/2 = 1.25,
    # C(0,1) = (.75 + .75)/2 = .75
    frames = np.array([[1, 3], [3, 1]], dtype=np.int32)
    res = twotime(
        frames,
        pixel_index=np.array([0, 1]),
        dynamic_index=np.array([0, 0]),
        n_dynamic=1,
        n_segments=1,
    )
    np.testing.assert_allclose(res.c2[0], [[1.25, 0.75], [0.75, 1.25]], rtol=1e-7)
    np.testing.assert_allclose(res.g2[:, 0], [1.25, 0.75], rtol=1e-7)
    np.testing.assert_allclose(res.g2_segments[0, :, 0], [1.25, 0.75], rtol=1e-7)


def test_chunked_feed_equals_eager() -> None:
    rng = np.random.default_rng(2)
    frames = rng.poisson(1.5, size=(30, 8, 8)).astype(np.uint16)
    pix, dyn = _layout((8, 8), 4)
    eager = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=4)
    with TwoTimeCorrelator(64, pixel_index=pix, dynamic_index=dyn, n_dynamic=4) as corr:
        for start in (0, 1, 7, 19):
            stop = {0: 1, 1: 7, 7: 19, 19: 30}[start]
            corr.feed(frames[start:stop].reshape(stop - start, -1))
        assert corr.n_frames == 30
        chunked = corr.result()
    _assert_same(eager, chunked)


def test_sparse_feed_equals_dense() -> None:
    rng = np.random.default_rng(3)
    frames = rng.poisson(0.3, size=(25, 6, 6)).astype(np.int64)
    pix, dyn = _layout((6, 6), 3)
    dense = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=3)
    with TwoTimeCorrelator(36, pixel_index=pix, dynamic_index=dyn, n_dynamic=3) as corr:
        for start in range(0, 25, 10):
            part = frames[start : start + 10].reshape(-1, 36)
            rows, cols = np.nonzero(part)
            indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(part)))])
            # split each event in two halves to check that repeated pixels add up
            counts = part[rows, cols]
            half = counts // 2
            pixels = np.repeat(cols, 2)
            both = np.stack([half, counts - half], axis=1).ravel()
            corr.feed_sparse(len(part), indptr * 2, pixels, both.astype(np.uint32))
        sparse = corr.result()
    _assert_same(dense, sparse)


def test_spill_to_disk_equals_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    frames = rng.poisson(2.0, size=(40, 10, 10)).astype(np.uint8)
    pix, dyn = _layout((10, 10), 5)
    memory = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=5)
    corr = TwoTimeCorrelator(
        100,
        pixel_index=pix,
        dynamic_index=dyn,
        n_dynamic=5,
        memory_budget=1000,
        spill_dir=tmp_path,
    )
    with corr:
        for start in range(0, 40, 3):
            corr.feed(frames[start : start + 3])
        assert corr.spilled
        spill_files = list(tmp_path.iterdir())
        assert len(spill_files) == 1
        assert spill_files[0].stat().st_size == 40 * 100 * 4
        spilled = corr.result()
    assert list(tmp_path.iterdir()) == []
    _assert_same(memory, spilled, rtol=0)


def test_spill_file_removed_on_close_without_result(tmp_path: Path) -> None:
    pix, dyn = _layout((4, 4), 1)
    corr = TwoTimeCorrelator(
        16, pixel_index=pix, dynamic_index=dyn, n_dynamic=1, memory_budget=0, spill_dir=tmp_path
    )
    corr.feed(np.ones((3, 16)))
    assert len(os.listdir(tmp_path)) == 1
    corr.close()
    assert os.listdir(tmp_path) == []


def test_multi_block_gram_equals_single_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    frames = rng.poisson(1.0, size=(16, 30, 30)).astype(np.float32)
    pix, dyn = _layout((30, 30), 2)
    single = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=2)
    monkeypatch.setattr(tt_module, "_BLOCK_BYTES", 16 * 4 * 50)
    monkeypatch.setattr(tt_module, "_MIN_BLOCK_PIXELS", 1)
    blocked = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=2)
    _assert_same(single, blocked, rtol=1e-6)


def test_bin_selection_and_pixel_order() -> None:
    rng = np.random.default_rng(6)
    frames = rng.poisson(3.0, size=(12, 5, 6))
    pix, dyn = _layout((5, 6), 3)
    everything = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=3)
    perm = rng.permutation(pix.size)
    some = twotime(
        frames, pixel_index=pix[perm], dynamic_index=dyn[perm], n_dynamic=3, bins=[2, 0]
    )
    np.testing.assert_array_equal(some.bins, [0, 2])
    assert some.bins.dtype == np.int64
    np.testing.assert_allclose(some.c2[0], everything.c2[0], rtol=1e-6)
    np.testing.assert_allclose(some.c2[1], everything.c2[2], rtol=1e-6)
    np.testing.assert_allclose(some.g2, everything.g2[:, [0, 2]], rtol=1e-6)


def test_default_bins_skip_empty_bins() -> None:
    frames = np.ones((4, 10))
    res = twotime(
        frames, pixel_index=np.arange(4), dynamic_index=np.array([1, 1, 3, 3]), n_dynamic=5
    )
    np.testing.assert_array_equal(res.bins, [1, 3])


def test_empty_frame_in_bin_is_nan_and_excluded_from_g2() -> None:
    rng = np.random.default_rng(7)
    frames = rng.poisson(4.0, size=(10, 4)).astype(np.float64) + 1
    frames[3] = 0  # frame 3 has no photon in the bin
    res = twotime(
        frames,
        pixel_index=np.arange(4),
        dynamic_index=np.zeros(4, np.intp),
        n_dynamic=1,
        n_segments=2,
    )
    c = res.c2[0]
    assert np.isnan(c[3]).all()
    assert np.isnan(c[:, 3]).all()
    assert np.isfinite(np.delete(np.delete(c, 3, 0), 3, 1)).all()
    c64 = c.astype(np.float64)
    for tau in (0, 1, 3, 9):
        vals = [c64[t, t + tau] for t in range(10 - tau) if 3 not in (t, t + tau)]
        expected = np.mean(vals) if vals else np.nan
        np.testing.assert_allclose(res.g2[tau, 0], expected, rtol=1e-6)
    assert np.isfinite(res.g2).all()


def test_ar1_speckle_recovers_contrast_and_tau() -> None:
    rng = np.random.default_rng(8)
    n, n_pix, tau_c, m, c = 600, 1500, 6.0, 4.0, 0.3
    beta = (1 - c) ** 2
    frames = _speckle(rng, n, n_pix, tau_c, m, c)
    res = twotime(
        frames, pixel_index=np.arange(n_pix), dynamic_index=np.zeros(n_pix, np.intp), n_dynamic=1
    )
    taus = np.arange(1, 13)
    expected = 1 + beta * np.exp(-2 * taus / tau_c)
    np.testing.assert_allclose(res.g2[taus, 0], expected, atol=0.02)
    # far delays decorrelate
    assert abs(np.mean(res.g2[60:200, 0]) - 1.0) < 0.01
    # the C map itself follows the model on average along a diagonal
    c2 = res.c2[0].astype(np.float64)
    np.testing.assert_allclose(np.mean(np.diagonal(c2, 3)), expected[2], atol=0.02)
    # segments see the same dynamics
    np.testing.assert_allclose(res.g2_segments[:, 2, 0], expected[1], atol=0.05)


def test_dark_bin_is_all_nan_and_short_series_has_empty_segments() -> None:
    frames = np.ones((3, 4))
    frames[:, 2:] = 0  # bin 1 never sees a photon
    res = twotime(
        frames, pixel_index=np.arange(4), dynamic_index=np.array([0, 0, 1, 1]), n_dynamic=2
    )
    np.testing.assert_allclose(res.c2[0], 1.0, rtol=1e-6)
    assert np.isnan(res.c2[1]).all()
    assert np.isnan(res.g2[:, 1]).all()
    np.testing.assert_allclose(res.g2[:, 0], 1.0, rtol=1e-6)
    assert res.g2_segments.shape == (5, 0, 2)  # 3 frames cannot fill 5 segments
    assert res.smoothing == "pixel"


def test_feed_after_result_and_no_frames_raise() -> None:
    pix, dyn = _layout((2, 2), 1)
    corr = TwoTimeCorrelator(4, pixel_index=pix, dynamic_index=dyn, n_dynamic=1)
    with pytest.raises(CorrelationError, match="no frames"):
        corr.result()
    corr.feed(np.ones((2, 4)))
    res = corr.result()
    assert corr.result() is res
    with pytest.raises(CorrelationError, match="already"):
        corr.feed(np.ones((2, 4)))
    closed = TwoTimeCorrelator(4, pixel_index=pix, dynamic_index=dyn, n_dynamic=1)
    closed.feed(np.ones((2, 4)))
    closed.close()
    with pytest.raises(CorrelationError, match="closed"):
        closed.result()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"pixel_index": np.array([0, 9])}, "pixel_index"),
        ({"pixel_index": np.array([0, 0])}, "pixel_index"),
        ({"pixel_index": np.array([0.0, 1.0])}, "pixel_index"),
        ({"dynamic_index": np.array([0])}, "dynamic_index"),
        ({"dynamic_index": np.array([0, 2])}, "dynamic_index"),
        ({"n_dynamic": 0}, "n_dynamic"),
        ({"bins": [1]}, "bins"),
        ({"bins": []}, "bins"),
        ({"bins": [0, 0]}, "bins"),
        ({"bins": [5]}, "bins"),
        ({"n_segments": 0}, "n_segments"),
        ({"memory_budget": -1}, "memory_budget"),
        ({"static_index": np.array([0])}, "static_index"),
        ({"static_index": np.array([-1, 0])}, "static_index"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], argument: str) -> None:
    args: dict[str, object] = {
        "pixel_index": np.array([0, 1]),
        "dynamic_index": np.array([0, 0]),
        "n_dynamic": 2,
    }
    args.update(kwargs)
    with pytest.raises(UsageError) as info:
        TwoTimeCorrelator(4, **args)  # type: ignore[arg-type]
    assert info.value.argument == argument
    assert argument in str(info.value)


def test_bad_feed_arguments() -> None:
    corr = TwoTimeCorrelator(
        4, pixel_index=np.array([0, 1]), dynamic_index=np.array([0, 0]), n_dynamic=1
    )
    with pytest.raises(UsageError) as info:
        corr.feed(np.ones((2, 5)))
    assert info.value.argument == "frames"
    with pytest.raises(UsageError) as info:
        corr.feed(np.ones(4))
    assert info.value.argument == "frames"
    good_ptr = np.array([0, 1, 2])
    with pytest.raises(UsageError) as info:
        corr.feed_sparse(2, np.array([0, 2, 1]), np.array([0, 1]), np.array([1, 1]))
    assert info.value.argument == "indptr"
    with pytest.raises(UsageError) as info:
        corr.feed_sparse(3, good_ptr, np.array([0, 1]), np.array([1, 1]))
    assert info.value.argument == "indptr"
    with pytest.raises(UsageError) as info:
        corr.feed_sparse(2, good_ptr, np.array([0, 4]), np.array([1, 1]))
    assert info.value.argument == "pixels"
    with pytest.raises(UsageError) as info:
        corr.feed_sparse(2, good_ptr, np.array([0, 1]), np.array([1]))
    assert info.value.argument == "counts"
    assert corr.n_frames == 0
    corr.close()


def _diag_sums_reference(
    c: NDArray[np.float64], n_segments: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sums of the finite values of each diagonal, and inside each segment block."""
    n = c.shape[0]
    seg_len = n // n_segments
    full = np.array([np.nansum(np.diagonal(c, -tau)) for tau in range(n)])
    seg = np.array(
        [
            [
                np.nansum(
                    np.diagonal(
                        c[m * seg_len : (m + 1) * seg_len][:, m * seg_len : (m + 1) * seg_len],
                        -tau,
                    )
                )
                for tau in range(seg_len)
            ]
            for m in range(n_segments)
        ]
    ).reshape(n_segments, seg_len)
    return full, seg


@pytest.mark.parametrize("n", [1, 5, 64, 65, 150, 200])
@pytest.mark.parametrize("in_place", [True, False])
def test_finish_gram_matches_numpy(n: int, in_place: bool) -> None:
    rng = np.random.default_rng(n)
    g = rng.random((n, n)).astype(np.float32)
    weight = rng.random(n) + 0.5
    weight[rng.random(n) < 0.1] = 0.0  # frames left out
    expected = g.astype(np.float64) * weight[:, None] * weight[None, :] * 7
    expected = np.tril(expected) + np.tril(expected, -1).T  # only the lower triangle is read
    expected[weight == 0, :] = np.nan
    expected[:, weight == 0] = np.nan
    out = g if in_place else np.full((n, n), -1.0, dtype=np.float32)
    diag, seg = finish_gram(g, weight, 7, 3, out)
    np.testing.assert_allclose(out, expected, rtol=2e-7)
    np.testing.assert_array_equal(out, out.T)
    ref_diag, ref_seg = _diag_sums_reference(out.astype(np.float64), 3)
    np.testing.assert_allclose(diag, ref_diag, rtol=1e-12)
    assert seg.shape == (3, n // 3)
    np.testing.assert_allclose(seg, ref_seg, rtol=1e-12)


def test_finish_gram_reads_float64_lower_triangle_only() -> None:
    rng = np.random.default_rng(21)
    n = 130
    low = np.tril(rng.random((n, n))) + np.triu(np.full((n, n), np.inf), 1)
    weight = np.full(n, 0.5)
    out = np.empty((n, n), dtype=np.float32)
    diag, _ = finish_gram(low, weight, 4, 1, out)
    sym = np.tril(low) + np.tril(low, -1).T
    np.testing.assert_allclose(out, sym, rtol=2e-7)
    assert np.isfinite(diag).all()


def test_c2_is_contiguous_float32_and_spill_gathers_by_index(tmp_path: Path) -> None:
    rng = np.random.default_rng(22)
    frames = rng.poisson(2.0, size=(70, 9, 9)).astype(np.uint16)
    frames[:, 0, 3] = 0  # zero-mean pixels: the bin's columns are not contiguous
    frames[:, 4, 3] = 0
    pix, dyn = _layout((9, 9), 3)
    memory = twotime(frames, pixel_index=pix, dynamic_index=dyn, n_dynamic=3, n_segments=4)
    for c in memory.c2:
        assert c.dtype == np.float32
        assert c.flags.c_contiguous
    ref = _reference_c2(frames.astype(np.float64), pix[dyn == 1])
    np.testing.assert_allclose(memory.c2[1], ref, rtol=2e-6)
    spill = TwoTimeCorrelator(
        81,
        pixel_index=pix,
        dynamic_index=dyn,
        n_dynamic=3,
        n_segments=4,
        memory_budget=5000,
        spill_dir=tmp_path,
    )
    with spill:
        for start in range(0, 70, 11):
            spill.feed(frames[start : start + 11])
        assert spill.spilled
        spilled = spill.result()
    _assert_same(memory, spilled, rtol=0)
    with TwoTimeCorrelator(
        81, pixel_index=pix, dynamic_index=dyn, n_dynamic=3, n_segments=4
    ) as chunked:
        for start in range(0, 70, 11):
            chunked.feed(frames[start : start + 11])
        _assert_same(memory, chunked.result(), rtol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64, np.float16, np.float64])
def test_gather_columns_matches_numpy(dtype: type) -> None:
    rng = np.random.default_rng(23)
    full = (rng.random((9, 3000)) * 200).astype(dtype)
    flat = full[:, ::2]  # not contiguous
    columns = rng.permutation(1500)[:1300].astype(np.intp)
    block, sums = gather_columns(flat, columns)
    expected = flat[:, columns].astype(np.float32)
    assert block.dtype == np.float32
    assert block.flags.c_contiguous
    np.testing.assert_array_equal(block, expected)
    np.testing.assert_allclose(sums, expected.sum(axis=0, dtype=np.float64), rtol=1e-13)
