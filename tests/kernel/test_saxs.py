"""SAXS reductions: exact values on known frames, chunking, sparse input, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from xpcs_kernel.errors import CorrelationError, FrameFormatError, UsageError
from xpcs_kernel.qmap.model import QMap
from xpcs_kernel.saxs.profile import SaxsAccumulator, saxs


def _qmap() -> QMap:
    """3x4 detector; static bins 1,2 in dynamic 1, static 3 in dynamic 2; pixel (2,3) masked."""
    return QMap(
        dynamic_roi_map=np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 1, 2, 2]], dtype=np.uint32),
        static_roi_map=np.array([[1, 2, 3, 3], [1, 2, 3, 3], [0, 2, 3, 3]], dtype=np.uint32),
        mask=np.array([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=bool),
        dynamic_q=np.array([0.01, 0.02]),
        dynamic_phi=np.zeros(2),
        static_q=np.array([0.005, 0.015, 0.02]),
        static_phi=np.zeros(3),
        beam_center_x=0.0,
        beam_center_y=0.0,
        pixel_size=75e-6,
        energy=10.0,
        detector_distance=5.0,
    )


def _frames(n: int = 25, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 50, size=(n, 3, 4)).astype(np.uint16)


def _to_csr(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat = frames.reshape(frames.shape[0], -1)
    f, p = np.nonzero(flat)
    indptr = np.zeros(frames.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(f, minlength=frames.shape[0]), out=indptr[1:])
    return indptr, p.astype(np.int64), flat[f, p]


def test_values_on_known_frames() -> None:
    qm, frames = _qmap(), _frames()
    res = saxs(frames, qm, n_segments=4)
    mean = frames.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(res.saxs_2d, mean)
    # static bins over correlated pixels (mask and static > 0): pixel (2,3) is masked
    np.testing.assert_allclose(
        res.saxs_1d,
        [
            mean[[0, 1], 0].mean(),
            mean[[0, 1, 2], 1].mean(),
            np.concatenate([mean[:, 2], mean[:2, 3]]).mean(),
        ],
    )
    bounds = [0, 6, 12, 18, 25]  # k * 25 // 4
    assert res.saxs_1d_segments.shape == (4, 3)
    for k in range(4):
        seg = saxs(frames[bounds[k] : bounds[k + 1]], qm, n_segments=1)
        np.testing.assert_allclose(res.saxs_1d_segments[k], seg.saxs_1d)
    valid = qm.mask
    np.testing.assert_array_equal(res.intensity_vs_time[0], np.arange(25))
    np.testing.assert_allclose(res.intensity_vs_time[1], frames[:, valid].mean(axis=1))


def test_chunked_and_sparse_feeding_match_eager() -> None:
    qm, frames = _qmap(), _frames(37, seed=1)
    eager = saxs(frames, qm, n_segments=5)
    dense = SaxsAccumulator(qm, n_frames=37, n_segments=5)
    sparse = SaxsAccumulator(qm, n_frames=37, n_segments=5)
    for start, stop in ((0, 3), (3, 11), (11, 12), (12, 30), (30, 37)):
        dense.feed(frames[start:stop])
        indptr, pixels, counts = _to_csr(frames[start:stop])
        sparse.feed_sparse(stop - start, indptr, pixels, counts)
    assert dense.frames_fed == 37
    for acc in (dense, sparse):
        res = acc.result()
        for key in ("saxs_2d", "saxs_1d", "saxs_1d_segments", "intensity_vs_time"):
            np.testing.assert_allclose(getattr(res, key), getattr(eager, key), rtol=1e-12)


def test_segments_are_capped_by_the_frame_count() -> None:
    res = saxs(_frames(3), _qmap(), n_segments=10)
    assert res.saxs_1d_segments.shape == (3, 3)
    np.testing.assert_allclose(res.saxs_1d_segments.mean(axis=0), res.saxs_1d)


def test_float_frames_accumulate_in_float64() -> None:
    frames = np.full((4, 3, 4), 0.1, dtype=np.float32)
    res = saxs(frames, _qmap(), n_segments=2)
    assert res.saxs_2d.dtype == np.float64
    np.testing.assert_allclose(res.saxs_1d, np.float32(0.1), rtol=1e-7)


def test_bad_input() -> None:
    qm = _qmap()
    acc = SaxsAccumulator(qm, n_frames=4)
    with pytest.raises(FrameFormatError, match="does not fit"):
        acc.feed(np.zeros((2, 4, 3)))
    acc.feed(np.zeros((3, 3, 4)))
    with pytest.raises(CorrelationError, match="got 3 frames"):
        acc.result()
    with pytest.raises(UsageError) as info:
        acc.feed(np.zeros((2, 3, 4)))
    assert info.value.argument == "frames"
    with pytest.raises(FrameFormatError) as ferr:
        acc.feed_sparse(1, np.array([0, 2]), np.array([0, 99]), np.array([1, 1]))
    assert ferr.value.key == "pixels"
    assert "99" in str(ferr.value)
    with pytest.raises(FrameFormatError) as ferr:
        acc.feed_sparse(1, np.array([0, 2]), np.array([-1, 0]), np.array([1, 1]))
    assert ferr.value.key == "pixels"
    assert acc.frames_fed == 3  # a rejected chunk changes nothing
    with pytest.raises(FrameFormatError) as ferr:
        acc.feed_sparse(1, np.array([0, 3]), np.array([0, 1]), np.array([1, 1]))
    assert ferr.value.key == "indptr"
    with pytest.raises(UsageError) as info:
        SaxsAccumulator(qm, n_frames=10, n_segments=17)
    assert info.value.argument == "n_segments"
    with pytest.raises(UsageError) as info:
        SaxsAccumulator(qm, n_frames=0)
    assert info.value.argument == "n_frames"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("n_frames", [1, 3, 4, 7, 8, 130])
def test_chunk_kernel_sums_every_frame_and_pixel_exactly(dtype: type, n_frames: int) -> None:
    # four frames per sweep plus a remainder; 3 pixel blocks of 4096, the last partial;
    # 130 frames x 9000 pixels is above the size that splits blocks across threads
    from xpcs_kernel.saxs.kernels import accumulate_chunk

    rng = np.random.default_rng(n_frames)
    flat = rng.poisson(3.0, size=(n_frames, 9000)).astype(dtype)
    valid = (rng.random(9000) > 0.3).astype(np.float64)
    pixel_sums = np.full(9000, 5.0)  # adds to what is there
    totals = accumulate_chunk(flat, valid, pixel_sums)
    exact = flat.astype(np.float64)
    np.testing.assert_array_equal(pixel_sums, 5.0 + exact.sum(axis=0))
    np.testing.assert_array_equal(totals, (exact * valid).sum(axis=1))
