"""The torch backend's correlators equal the numba backend's on CPU torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.kernel.torch_support import require_torch
from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.multitau import PixelBins, multitau
from xpcs_kernel.qmap import qmap_from_geometry
from xpcs_kernel.saxs import saxs
from xpcs_kernel.twotime import twotime

torch = require_torch()

from xpcs_kernel.torch_backend.device import resolve_device  # noqa: E402
from xpcs_kernel.torch_backend.multitau import TorchMultiTau  # noqa: E402
from xpcs_kernel.torch_backend.saxs import TorchSaxs  # noqa: E402
from xpcs_kernel.torch_backend.transfer import Stager  # noqa: E402
from xpcs_kernel.torch_backend.twotime import TorchTwoTime, diagonal_sums  # noqa: E402

CPU = torch.device("cpu")


def _bins(n_pixels: int, seed: int) -> PixelBins:
    rng = np.random.default_rng(seed)
    return PixelBins(rng.integers(0, 6, n_pixels), np.array([0, 0, 1, 1, 2, 2]), 3)


def _feed(corr: Any, frames: np.ndarray[Any, Any], chunk: int) -> None:
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    for f0 in range(0, frames.shape[0], chunk):
        corr.feed(x[f0 : f0 + chunk])


@pytest.mark.parametrize(("n_frames", "chunk"), [(2, 1), (13, 5), (700, 61), (1000, 1000)])
def test_multitau_equals_numba(n_frames: int, chunk: int) -> None:
    rng = np.random.default_rng(n_frames)
    frames = rng.poisson(1.5, (n_frames, 240)).astype(np.uint16)
    bins = _bins(240, 1)
    ref = multitau(frames, bins)
    corr = TorchMultiTau(240, device=CPU)
    _feed(corr, frames, chunk)
    got = corr.g2(bins)
    np.testing.assert_array_equal(got.delays, ref.delays)
    np.testing.assert_array_equal(got.pair_counts, ref.pair_counts)
    np.testing.assert_allclose(got.g2, ref.g2, rtol=1e-4)
    np.testing.assert_allclose(got.g2_err, ref.g2_err, rtol=1e-4, atol=1e-12)
    # integer frames: the intensity sums are exact, as in the numba backend
    np.testing.assert_array_equal(got.IP_static, ref.IP_static)
    np.testing.assert_array_equal(got.IF_static, ref.IF_static)


def test_multitau_float_frames_and_analytic_value() -> None:
    """A constant frame series gives g2 = 1 at every delay with zero error."""
    corr = TorchMultiTau(50, device=CPU)
    _feed(corr, np.full((100, 50), 3.25), 17)
    got = corr.g2(_bins(50, 2))
    np.testing.assert_allclose(got.g2, 1.0, rtol=1e-6)
    np.testing.assert_allclose(got.g2_err, 0.0, atol=1e-6)
    rng = np.random.default_rng(4)
    frames = rng.gamma(2.0, 1.5, (400, 120))
    ref = multitau(frames, _bins(120, 3))
    corr = TorchMultiTau(120, device=CPU)
    _feed(corr, frames, 33)
    np.testing.assert_allclose(corr.g2(_bins(120, 3)).g2, ref.g2, rtol=1e-4)


def test_multitau_rejects_too_few_frames_and_wrong_shapes() -> None:
    corr = TorchMultiTau(10, device=CPU)
    _feed(corr, np.ones((1, 10)), 1)
    with pytest.raises(CorrelationError):
        corr.g2(_bins(10, 0))
    with pytest.raises(UsageError) as err:
        corr.feed(torch.zeros((2, 9)))
    assert err.value.argument == "frames"


def test_sparse_events_scatter_to_the_dense_frames() -> None:
    """Event lists travel as events and give the numba g2 of the dense frames."""
    rng = np.random.default_rng(7)
    frames = rng.poisson(0.05, (300, 200)).astype(np.uint16)
    stager = Stager(resolve_device("cpu"))
    nz_frame, nz_pixel = np.nonzero(frames)
    indptr = np.zeros(301, dtype=np.int64)
    np.cumsum(np.bincount(nz_frame, minlength=300), out=indptr[1:])
    dense = stager.sparse(300, 200, indptr, nz_pixel, frames[nz_frame, nz_pixel].astype(np.uint32))
    assert dense.dtype == torch.int32
    np.testing.assert_array_equal(dense.numpy(), frames)
    corr = TorchMultiTau(200, device=CPU)
    corr.feed(dense.to(torch.float32))
    ref = multitau(frames, _bins(200, 5), path="sparse")
    np.testing.assert_allclose(corr.g2(_bins(200, 5)).g2, ref.g2, rtol=1e-4)
    assert stager.bytes_moved == nz_pixel.size * (8 + 4)


@pytest.mark.parametrize("static", [False, True])
def test_twotime_equals_numba(static: bool) -> None:
    rng = np.random.default_rng(11)
    frames = rng.poisson(2.0, (160, 300)).astype(np.uint16)
    frames[17] = 0  # a frame with no intensity: NaN row and column, left out of g2
    dyn = rng.integers(0, 3, 300)
    sta = dyn * 2 + rng.integers(0, 2, 300) if static else None
    ref = twotime(
        frames, pixel_index=np.arange(300), dynamic_index=dyn, n_dynamic=3, static_index=sta
    )
    corr = TorchTwoTime(
        dyn, n_dynamic=3, device=CPU, budget=1 << 30, n_frames=160, static_index=sta
    )
    _feed(corr, frames, 48)
    got = corr.result()
    np.testing.assert_array_equal(got.bins, ref.bins)
    assert got.smoothing == ref.smoothing
    for mine, theirs in zip(got.c2, ref.c2, strict=True):
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
        np.testing.assert_allclose(mine, theirs, rtol=1e-4)
    np.testing.assert_allclose(got.g2, ref.g2, rtol=1e-4)
    np.testing.assert_allclose(got.g2_segments, ref.g2_segments, rtol=1e-4)


def test_twotime_selected_bins_and_host_store() -> None:
    """A budget too small for the series keeps them in host memory: same result."""
    rng = np.random.default_rng(12)
    frames = rng.poisson(3.0, (64, 90)).astype(np.float32)
    dyn = rng.integers(0, 4, 90)
    ref = twotime(frames, pixel_index=np.arange(90), dynamic_index=dyn, n_dynamic=4, bins=[2, 0])
    corr = TorchTwoTime(dyn, n_dynamic=4, device=CPU, budget=0, n_frames=64, bins=[2, 0])
    _feed(corr, frames, 64)
    got = corr.result()
    assert got.bins.tolist() == [0, 2]
    np.testing.assert_allclose(got.g2, ref.g2, rtol=1e-4)
    with pytest.raises(UsageError) as err:
        TorchTwoTime(dyn, n_dynamic=4, device=CPU, budget=0, n_frames=4, bins=[7])
    assert err.value.argument == "bins"


def test_diagonal_sums_of_a_known_matrix() -> None:
    c = torch.arange(16, dtype=torch.float32).reshape(4, 4)
    # diag tau: sum_t c[t + tau, t] -> 0+5+10+15, 4+9+14, 8+13, 12
    np.testing.assert_array_equal(diagonal_sums(c), [30.0, 27.0, 21.0, 12.0])


def test_saxs_equals_numba_exactly() -> None:
    qm = qmap_from_geometry(
        (24, 30),
        beam_center=(12.0, 15.0),
        detector_distance=5.0,
        pixel_size=75e-6,
        energy=10.0,
        n_dynamic_q=3,
        n_static_q=9,
    )
    rng = np.random.default_rng(5)
    frames = rng.poisson(4.0, (37, 24, 30)).astype(np.uint16)
    ref = saxs(frames, qm)
    acc = TorchSaxs(qm, n_frames=37, device=CPU)
    flat = torch.from_numpy(frames.reshape(37, -1))
    acc.feed(flat[:20])
    acc.feed(flat[20:])
    got = acc.result()
    for name in ("saxs_2d", "saxs_1d", "saxs_1d_segments", "intensity_vs_time"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    with pytest.raises(CorrelationError):
        acc.feed(flat[:1])


def test_dense_transfer_keeps_values_and_widens_uint16() -> None:
    stager = Stager(resolve_device("cpu"))
    frames = np.array([[0, 65535], [7, 1]], dtype=np.uint16)
    frames.setflags(write=False)  # readers may hand out read-only arrays
    sent = stager.dense(frames)
    assert sent.dtype == torch.int32
    np.testing.assert_array_equal(sent.numpy(), frames)
    assert stager.dense(np.ones((2, 2), dtype=np.uint32)).dtype == torch.int64
    assert stager.bytes_moved == frames.nbytes + 2 * 2 * 8
