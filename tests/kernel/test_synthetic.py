"""Synthetic speckle data: statistics, g2 against the known answer, determinism, files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from xpcs_kernel.errors import UsageError
from xpcs_kernel.qmap.geometry import pixel_q_phi
from xpcs_kernel.qmap.model import QMap, read_qmap
from xpcs_kernel.synthetic.frames import (
    SyntheticSpec,
    generate_frames,
    synthesize,
    synthesize_dataset,
    synthesize_qmap,
    write_synthetic,
)


def _lag_g2(frames: np.ndarray, qmap: QMap, lag: int) -> np.ndarray:
    """g2 per dynamic bin at one lag: per static bin <G2>/(<IP><IF>), mean over static bins."""
    flat = frames.reshape(frames.shape[0], -1)[:, qmap.pixel_index].astype(np.float64)
    past, future = flat[:-lag], flat[lag:]
    s, n_s = qmap.static_index, qmap.n_static
    count = np.bincount(s, minlength=n_s)

    def per_static(values: np.ndarray) -> np.ndarray:
        return np.bincount(s, weights=values, minlength=n_s) / count

    g2_s = per_static((past * future).mean(0)) / (
        per_static(past.mean(0)) * per_static(future.mean(0))
    )
    d = qmap.dynamic_of_static
    return np.bincount(d, weights=g2_s) / np.bincount(d)


def test_spec_validation_names_the_field() -> None:
    cases = {
        "beta": {"beta": 1.5},
        "n_static_q": {"n_static_q": 25},
        "n_frames": {"n_frames": 0},
        "tau_c_range": {"tau_c_range": (5.0, 1.0)},
        "dtype": {"dtype": "float32"},
        "shape": {"shape": (4, 4)},
        "mean_count": {"mean_count": -1.0},
        "beam_center": {"beam_center": (1.0, float("nan"))},
        "q_range": {"q_range": (0.002, 0.001)},
    }
    for field, kwargs in cases.items():
        with pytest.raises(UsageError) as info:
            SyntheticSpec(**kwargs)  # type: ignore[arg-type]
        assert info.value.argument == field
    with pytest.raises(UsageError, match="saturate") as info:
        SyntheticSpec(dtype="uint8", mean_count=50.0)
    assert info.value.argument == "dtype"


def test_dtype_auto_picks_the_smallest_safe_type() -> None:
    assert SyntheticSpec(dtype="auto", mean_count=1.0).frame_dtype() == np.uint8
    assert SyntheticSpec(dtype="auto", mean_count=100.0).frame_dtype() == np.uint16
    assert SyntheticSpec(mean_count=100.0).frame_dtype() == np.uint16


def test_tau_c_follows_the_diffusion_law() -> None:
    spec = SyntheticSpec(tau_c_range=(3.0, 80.0))
    data = synthesize_dataset(spec)
    q = data.qmap.dynamic_q
    assert data.tau_c[np.argmin(q)] == pytest.approx(80.0)
    assert data.tau_c[np.argmax(q)] == pytest.approx(3.0)
    np.testing.assert_allclose(1.0 / data.tau_c, data.diffusion * q**2 + data.gamma_offset)
    assert np.all(np.diff(data.tau_c[np.argsort(q)]) < 0)
    np.testing.assert_allclose(data.tau_c_seconds, data.tau_c * spec.frame_time)
    # per pixel: each pixel of a dynamic bin has the bin's tau_c
    per_pixel = data.tau_c_per_pixel()
    dyn = data.qmap.dynamic_roi_map
    np.testing.assert_array_equal(per_pixel[dyn == 2], data.tau_c[1])
    assert np.all(per_pixel[dyn == 0] == 80.0)


def test_expected_g2_is_the_model() -> None:
    data = synthesize_dataset(SyntheticSpec(beta=0.25))
    delays = np.array([1, 2, 10])
    expected = 1.0 + 0.25 * np.exp(-2.0 * delays[:, None] / data.tau_c[None, :])
    np.testing.assert_allclose(data.expected_g2(delays), expected)
    assert data.expected_g2(delays).shape == (3, data.qmap.n_dynamic)
    with pytest.raises(UsageError):
        data.expected_g2(np.array([0, 1]))


def test_frame_statistics_match_poisson_plus_speckle() -> None:
    spec = SyntheticSpec(
        n_frames=300, shape=(64, 64), mean_count=3.0, beta=0.3, tau_c_range=(1.0, 3.0)
    )
    data, frames = synthesize(spec)
    assert frames.shape == (300, 64, 64)
    assert frames.dtype == np.uint16
    counts = frames.astype(np.float64)
    assert counts.mean() == pytest.approx(3.0, rel=0.01)
    # Var = m (Poisson) + beta m^2 (speckle)
    assert counts.var() == pytest.approx(3.0 + 0.3 * 9.0, rel=0.03)
    # at lag 0 the normalized second moment includes the shot noise: 1 + beta + 1/m
    g2_0 = (counts**2).mean() / counts.mean() ** 2
    assert g2_0 == pytest.approx(1.0 + 0.3 + 1.0 / 3.0, rel=0.02)
    assert data.beta == 0.3


def test_empirical_g2_matches_expected() -> None:
    spec = SyntheticSpec(n_frames=1000, seed=3)
    data, frames = synthesize(spec)
    for lag in range(1, 6):
        measured = _lag_g2(frames, data.qmap, lag)
        expected = data.expected_g2(np.array([lag]))[0]
        np.testing.assert_allclose(measured, expected, atol=0.01)
    # the decay is actually resolved: fast bins decay, slow ones barely
    assert _lag_g2(frames, data.qmap, 5)[np.argmax(data.tau_c)] > 1.15
    assert _lag_g2(frames, data.qmap, 5)[np.argmin(data.tau_c)] < 1.01


def test_power_law_intensity() -> None:
    spec = SyntheticSpec(n_frames=200, shape=(64, 64), mean_count=8.0, intensity_exponent=2.0)
    data, frames = synthesize(spec)
    m = data.mean_count_per_pixel()
    qm = data.qmap
    assert m.max() == pytest.approx(8.0)
    # I(q) = 8 (q / q_min)^-2 at every pixel, q_min the smallest binned q
    q, _ = pixel_q_phi(
        qm.shape,
        beam_center=(qm.beam_center_x, qm.beam_center_y),
        detector_distance=qm.detector_distance,
        pixel_size=qm.pixel_size,
        energy=qm.energy,
    )
    binned = qm.static_roi_map > 0
    np.testing.assert_allclose(m[binned], 8.0 * (q[binned] / q[binned].min()) ** -2.0)
    # and the frames have those means, per static bin
    count = np.bincount(qm.static_index)
    measured = np.bincount(qm.static_index, frames.reshape(200, -1)[:, qm.pixel_index].mean(0))
    expected = np.bincount(qm.static_index, m.reshape(-1)[qm.pixel_index])
    np.testing.assert_allclose(measured / count, expected / count, rtol=0.05)
    # contrast is unchanged by the intensity: lag-1 g2 still matches the model
    np.testing.assert_allclose(
        _lag_g2(frames, qm, 1), data.expected_g2(np.array([1]))[0], atol=0.02
    )
    with pytest.raises(UsageError) as info:
        generate_frames(spec, qm, data.tau_c_per_pixel(), mean_count_per_pixel=m * 2)
    assert info.value.argument == "mean_count_per_pixel"


def test_frames_do_not_depend_on_chunk_size() -> None:
    spec = SyntheticSpec(n_frames=50, shape=(24, 32), seed=11)
    data = synthesize_dataset(spec)
    tau = data.tau_c_per_pixel()
    one = np.concatenate(list(generate_frames(spec, data.qmap, tau, chunk_frames=50)))
    chunks = list(generate_frames(spec, data.qmap, tau, chunk_frames=7))
    assert [c.shape[0] for c in chunks] == [7] * 7 + [1]
    np.testing.assert_array_equal(np.concatenate(chunks), one)
    _, again = synthesize(spec)
    np.testing.assert_array_equal(again, one)
    other = np.concatenate(
        list(generate_frames(SyntheticSpec(n_frames=50, shape=(24, 32), seed=12), data.qmap, tau))
    )
    assert not np.array_equal(other, one)


def test_generate_frames_rejects_bad_arguments() -> None:
    spec = SyntheticSpec(n_frames=10, shape=(24, 32))
    data = synthesize_dataset(spec)
    with pytest.raises(UsageError) as info:
        next(generate_frames(spec, data.qmap, data.tau_c_per_pixel(), chunk_frames=0))
    assert info.value.argument == "chunk_frames"
    with pytest.raises(UsageError) as info:
        generate_frames(spec, data.qmap, np.zeros((24, 32)))
    assert info.value.argument == "tau_c_per_pixel"


def test_qmap_of_the_spec_has_full_rings() -> None:
    spec = SyntheticSpec(shape=(64, 80), n_dynamic_q=4, n_static_q=12)
    qm = synthesize_qmap(spec)
    assert qm.n_dynamic == 4
    assert qm.n_static == 12
    rows, cols = np.indices(qm.shape)
    r = np.hypot(rows - 31.5, cols - 39.5)
    binned = qm.static_roi_map > 0
    assert r[binned].min() >= 4.0
    assert r[binned].max() <= 31.5 + 1e-9
    assert np.all(np.diff(qm.dynamic_q) > 0)


def test_write_synthetic_stores_frames_qmap_and_truth(tmp_path: Path) -> None:
    spec = SyntheticSpec(n_frames=40, shape=(32, 32), n_dynamic_q=2, n_static_q=4, seed=5)
    raw, qpath = tmp_path / "raw.h5", tmp_path / "qmap.h5"
    data = write_synthetic(raw, qpath, spec, compression="gzip")
    _, frames = synthesize(spec)
    with h5py.File(raw, "r") as f:
        np.testing.assert_array_equal(f["/entry/data/data"][()], frames)
        g = f["/entry/synthetic"]
        np.testing.assert_allclose(g["tau_c"][()], data.tau_c)
        np.testing.assert_allclose(g["tau_c_seconds"][()], data.tau_c * 1e-3)
        assert g.attrs["beta"] == pytest.approx(0.2)
        assert json.loads(g.attrs["spec"])["seed"] == 5
        assert f["/entry/instrument/detector_1/frame_time"][()] == pytest.approx(1e-3)
    assert read_qmap(qpath).hash == data.qmap.hash
    with pytest.raises(UsageError) as info:
        write_synthetic(raw, qpath, spec, compression="zip")
    assert info.value.argument == "compression"
