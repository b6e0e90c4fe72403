"""The batched g2 fit finds the least_squares minimum, falls back to it for
edge cases, and spares the scipy import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from xpcs_kernel import fit as fit_module
from xpcs_kernel.fit import BATCH_MESSAGE, fit_g2


def _curves(n_bins: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tau = np.logspace(-3, 1, 60)
    gamma = 10.0 ** rng.uniform(-0.5, 2.5, n_bins)
    beta = rng.uniform(0.1, 0.3, n_bins)
    sigma = np.full((tau.size, n_bins), 2e-3)
    g2 = 1.0 + beta * np.exp(-2.0 * gamma * tau[:, None]) + rng.normal(0, 2e-3, sigma.shape)
    return tau, g2, sigma


@pytest.mark.parametrize("with_errors", [True, False])
@pytest.mark.parametrize("n_bins", [24, 100])
def test_batched_fit_matches_least_squares(
    n_bins: int, with_errors: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    tau, g2, sigma = _curves(n_bins)
    err = sigma if with_errors else None
    fast = fit_g2(tau, g2, err)
    assert fast.success.all()
    assert set(fast.message) == {BATCH_MESSAGE}
    monkeypatch.setattr(fit_module, "_fit_batched", lambda *args: None)
    slow = fit_g2(tau, g2, err)
    assert slow.success.all()
    assert BATCH_MESSAGE not in slow.message
    for name in ("baseline", "beta", "gamma", "gamma_err", "beta_err", "baseline_err"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-5)
    np.testing.assert_array_equal(fast.alpha, 1.0)


def test_edge_bins_fall_back_to_least_squares() -> None:
    tau, g2, sigma = _curves(3, seed=1)
    g2[:, 1] = 1.0 + np.random.default_rng(2).normal(0, 2e-3, tau.size)  # no decay
    g2[:58, 2] = np.nan  # two points for three parameters
    fit = fit_g2(tau, g2, sigma)
    assert fit.message[0] == BATCH_MESSAGE
    assert fit.success[0]
    assert not fit.success[1]
    assert fit.message[1] != BATCH_MESSAGE
    assert "too few" in fit.message[2]


def test_a_run_of_good_fits_does_not_import_scipy() -> None:
    code = (
        "import sys, numpy as np\n"
        "from xpcs_kernel.fit import fit_g2\n"
        "tau = np.logspace(-3, 1, 40)\n"
        "g2 = 1 + 0.2 * np.exp(-2 * np.outer(tau, [3.0, 30.0, 300.0]))\n"
        "g2 += np.random.default_rng(0).normal(0, 1e-3, g2.shape)\n"
        "f = fit_g2(tau, g2, np.full(g2.shape, 1e-3))\n"
        "print(int(f.success.sum()), 'scipy.optimize' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["3", "False"]
