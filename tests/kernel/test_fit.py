"""g2 and diffusion fits: exact recovery, calibrated errors, failures, and the physics
acceptance test on synthetic data with known correlation times."""

from __future__ import annotations

import numpy as np
import pytest

from xpcs_kernel.errors import FitError, UsageError
from xpcs_kernel.fit import fit_diffusion, fit_g2
from xpcs_kernel.qmap.model import QMap
from xpcs_kernel.synthetic.frames import SyntheticSpec, synthesize

# the APS multi-tau delays for 1000 frames, in frames
# (level 0: 1..8; level L: (5..8) * 2^L, up to 768 = 6 * 2^7)
DELAYS = np.array(
    [*range(1, 9), *(k * 2**lvl for lvl in range(1, 8) for k in range(5, 9) if k * 2**lvl <= 768)],
    dtype=np.float64,
)
TAU = DELAYS * 1e-3  # seconds


def _model(
    tau: np.ndarray, baseline: float, beta: float, gamma: np.ndarray, alpha: float = 1.0
) -> np.ndarray:
    return baseline + beta * np.exp(-2.0 * (gamma[None, :] * tau[:, None]) ** alpha)


def test_noiseless_data_recovers_parameters() -> None:
    gamma = np.array([3.0, 40.0, 250.0, 900.0])
    fit = fit_g2(TAU, _model(TAU, 1.02, 0.23, gamma))
    assert fit.success.all()
    np.testing.assert_allclose(fit.gamma, gamma, rtol=1e-6)
    np.testing.assert_allclose(fit.beta, 0.23, rtol=1e-6)
    np.testing.assert_allclose(fit.baseline, 1.02, rtol=1e-6)
    np.testing.assert_array_equal(fit.alpha, 1.0)
    np.testing.assert_array_equal(fit.alpha_err, 0.0)
    np.testing.assert_allclose(fit.tau_c, 1.0 / gamma, rtol=1e-6)
    assert fit.fit_range == (TAU[0], TAU[-1])


def test_noiseless_stretched_exponential() -> None:
    gamma = np.array([20.0, 150.0])
    fit = fit_g2(TAU, _model(TAU, 1.0, 0.3, gamma, alpha=0.7), fit_alpha=True)
    assert fit.success.all()
    np.testing.assert_allclose(fit.alpha, 0.7, rtol=1e-6)
    np.testing.assert_allclose(fit.gamma, gamma, rtol=1e-6)


def test_single_series_is_one_bin() -> None:
    fit = fit_g2(TAU, _model(TAU, 1.0, 0.2, np.array([50.0]))[:, 0])
    assert fit.gamma.shape == (1,)
    assert fit.gamma[0] == pytest.approx(50.0, rel=1e-6)


def test_noisy_data_lies_within_the_errors() -> None:
    rng = np.random.default_rng(42)
    gamma = np.full(40, 60.0)
    sigma = 0.004
    y = _model(TAU, 1.0, 0.2, gamma) + rng.normal(0.0, sigma, (TAU.size, 40))
    err = np.full_like(y, sigma)
    fit = fit_g2(TAU, y, err)
    assert fit.success.all()
    pulls = (fit.gamma - 60.0) / fit.gamma_err
    assert np.abs(pulls).max() < 4.0
    assert 0.6 < pulls.std() < 1.5  # the 1-sigma errors are calibrated
    assert abs(pulls.mean()) < 0.5
    beta_pulls = (fit.beta - 0.2) / fit.beta_err
    assert 0.6 < beta_pulls.std() < 1.5


def test_zero_error_of_the_last_delay_is_guarded() -> None:
    rng = np.random.default_rng(7)
    y = _model(TAU, 1.0, 0.2, np.array([80.0])) + rng.normal(0.0, 0.003, (TAU.size, 1))
    err = np.full_like(y, 0.003)
    err[-1] = 0.0  # multi-tau's last delay: exactly 0
    fit = fit_g2(TAU, y, err)
    assert fit.success[0]
    assert fit.gamma[0] == pytest.approx(80.0, rel=0.1)
    # same as giving that point the largest error of the series
    err2 = err.copy()
    err2[-1] = 0.003
    np.testing.assert_allclose(fit_g2(TAU, y, err2).gamma, fit.gamma, rtol=1e-9)


def test_a_failed_bin_does_not_stop_the_others() -> None:
    y = _model(TAU, 1.0, 0.2, np.array([30.0, 30.0, 30.0]))
    y[:, 1] = np.nan  # no data at all
    y[:, 2] = 1.0  # no decay: beta = 0, gamma undetermined
    fit = fit_g2(TAU, y)
    np.testing.assert_array_equal(fit.success, [True, False, False])
    assert "too few" in fit.message[1]
    assert fit.message[2]
    assert fit.gamma[0] == pytest.approx(30.0, rel=1e-6)
    assert np.isnan(fit.gamma[1])


def test_fit_range_selects_delays() -> None:
    y = _model(TAU, 1.0, 0.2, np.array([100.0]))
    y[TAU > 0.1] = 5.0  # garbage outside the range
    fit = fit_g2(TAU, y, fit_range=(0.0, 0.1))
    assert fit.success[0]
    assert fit.gamma[0] == pytest.approx(100.0, rel=1e-6)
    assert fit.fit_range == (0.0, 0.1)


def test_bounds_and_bad_arguments() -> None:
    y = _model(TAU, 1.0, 0.2, np.array([100.0]))
    fit = fit_g2(TAU, y, bounds=((0.5, 0.0, 0.0, 0.1), (1.5, 1.0, 50.0, 3.0)))
    assert not fit.success[0]  # the true rate is outside the bounds
    assert "bound" in fit.message[0]
    assert fit.gamma[0] == pytest.approx(50.0, rel=1e-3)
    with pytest.raises(UsageError) as info:
        fit_g2(TAU, y[:-1])
    assert info.value.argument == "g2"
    with pytest.raises(UsageError) as info:
        fit_g2(-TAU, y)
    assert info.value.argument == "delays"
    with pytest.raises(UsageError) as info:
        fit_g2(TAU, y, bounds=((0, 0, 0), (1, 1, 1)))
    assert info.value.argument == "bounds"
    with pytest.raises(UsageError) as info:
        fit_g2(TAU, y, np.ones(3))
    assert info.value.argument == "g2_err"


def test_delay_order_does_not_matter() -> None:
    y = _model(TAU, 1.0, 0.2, np.array([70.0, 300.0]))
    order = np.random.default_rng(0).permutation(TAU.size)
    fit = fit_g2(TAU[order], y[order])
    assert fit.success.all()
    np.testing.assert_allclose(fit.gamma, [70.0, 300.0], rtol=1e-6)


def test_diffusion_fit_exact_and_weighted() -> None:
    q = np.array([0.001, 0.002, 0.003, 0.004, 0.005])
    gamma = 2.5e6 * q**2 + 0.7
    fit = fit_diffusion(q, gamma)
    d_coef = fit.D
    assert d_coef == pytest.approx(2.5e6, rel=1e-9)
    assert fit.intercept == pytest.approx(0.7, rel=1e-6)
    pure = fit_diffusion(q, 2.5e6 * q**2, fit_intercept=False)
    d_coef = pure.D
    assert d_coef == pytest.approx(2.5e6, rel=1e-12)
    assert pure.intercept == 0.0
    # weights: a wild point with a huge error does not move the fit
    wild = gamma.copy()
    wild[2] *= 3.0
    err = np.array([0.1, 0.1, 1e6, 0.1, 0.0])  # a zero error is guarded too
    weighted = fit_diffusion(q, wild, err)
    d_coef = weighted.D
    assert d_coef == pytest.approx(2.5e6, rel=1e-4)
    assert weighted.D_err > 0
    # failed bins (NaN) are left out
    fit_nan = fit_diffusion(np.append(q, 0.006), np.append(gamma, np.nan))
    assert fit_nan.q.size == 5
    with pytest.raises(FitError):
        fit_diffusion(q[:1], gamma[:1])
    with pytest.raises(FitError):
        fit_diffusion(np.full(3, 0.002), np.ones(3))


def test_diffusion_errors_are_calibrated() -> None:
    rng = np.random.default_rng(3)
    q = np.linspace(0.001, 0.006, 8)
    pulls = []
    for _ in range(200):
        sigma = 0.05 * (2e6 * q**2)
        g = 2e6 * q**2 + rng.normal(0, sigma)
        fit = fit_diffusion(q, g, sigma, fit_intercept=False)
        pulls.append((fit.D - 2e6) / fit.D_err)
    assert 0.8 < np.std(pulls) < 1.2


def _lag_g2(frames: np.ndarray, qmap: QMap, delays: np.ndarray) -> np.ndarray:
    """Plain-numpy multi-tau equivalent: exact lag averages, pooled per static bin."""
    flat = frames.reshape(frames.shape[0], -1)[:, qmap.pixel_index].astype(np.float32)
    s, n_s, d = qmap.static_index, qmap.n_static, qmap.dynamic_of_static
    count = np.bincount(s, minlength=n_s)
    out = np.empty((delays.size, qmap.n_dynamic))
    for i, lag in enumerate(delays.astype(int)):
        past, future = flat[:-lag], flat[lag:]
        g2p = np.einsum("ij,ij->j", past, future, dtype=np.float64) / past.shape[0]
        sums = [
            np.bincount(s, weights=v, minlength=n_s) / count
            for v in (g2p, past.mean(0, dtype=np.float64), future.mean(0, dtype=np.float64))
        ]
        g2_s = sums[0] / (sums[1] * sums[2])
        out[i] = np.bincount(d, weights=g2_s) / np.bincount(d)
    return out


@pytest.mark.slow
def test_physics_acceptance_on_synthetic_data() -> None:
    """Fitted tau_c within 10 % and contrast within 0.02 of the truth, for every bin
    whose series spans at least 20 tau_c."""
    spec = SyntheticSpec(n_frames=1000, shape=(128, 128), beta=0.2, seed=1)
    data, frames = synthesize(spec)
    delays = DELAYS[: np.searchsorted(DELAYS, spec.n_frames)]
    g2 = _lag_g2(frames, data.qmap, delays)
    seconds = delays * spec.frame_time
    fit = fit_g2(seconds, g2)
    tau_fit = fit.tau_c / spec.frame_time
    checked = data.tau_c * 20 <= spec.n_frames
    assert checked.sum() >= 4
    assert fit.success[checked].all()
    np.testing.assert_allclose(tau_fit[checked], data.tau_c[checked], rtol=0.10)
    np.testing.assert_allclose(fit.beta[checked], data.beta, atol=0.02)


@pytest.mark.slow
def test_physics_acceptance_with_the_multitau_correlator() -> None:
    multitau = pytest.importorskip("xpcs_kernel.multitau.correlator")
    spec = SyntheticSpec(n_frames=1000, shape=(128, 128), beta=0.2, seed=2)
    data, frames = synthesize(spec)
    qm = data.qmap
    bins = multitau.PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic)
    result = multitau.multitau(frames, bins, pixel_index=qm.pixel_index)
    fit = fit_g2(result.delays * spec.frame_time, result.g2, result.g2_err)
    checked = data.tau_c * 20 <= spec.n_frames
    assert fit.success[checked].all()
    np.testing.assert_allclose(
        fit.tau_c[checked] / spec.frame_time, data.tau_c[checked], rtol=0.10
    )
    np.testing.assert_allclose(fit.beta[checked], data.beta, atol=0.02)
    # and the diffusion law comes back: Gamma = D q^2 + Gamma_0 (1/s)
    ok = checked & fit.success
    dfit = fit_diffusion(qm.dynamic_q[ok], fit.gamma[ok], fit.gamma_err[ok])
    d_coef = dfit.D
    assert d_coef == pytest.approx(data.diffusion / spec.frame_time, rel=0.15)
