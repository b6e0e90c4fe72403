"""Model fits of correlation functions: g2 decays and the diffusion law.

* :func:`fit_g2`: per dynamic bin, ``g2(tau) = baseline + beta exp(-2 (gamma tau)^alpha)``
  (``alpha = 1`` unless ``fit_alpha``), by bounded non-linear least squares
  (with ``log gamma`` as the internal parameter so that rates over many
  decades are equally well conditioned). With ``alpha = 1`` all bins are
  fitted at once (:mod:`xpcs_kernel._fit_batch`, 20-70 ms for 24-100 bins,
  no scipy import); a bin whose minimum lies on a bound, that does not
  converge or is not determined is fitted by
  :func:`scipy.optimize.least_squares`, as are all bins with ``fit_alpha``.
* :func:`fit_diffusion`: ``Gamma = D q^2 + intercept`` by weighted linear least
  squares.

Uncertainties are 1-sigma from the covariance ``(J^T J)^-1`` at the optimum.
When errors of the data are given they are taken as absolute; when they are not,
the covariance is scaled by the reduced chi-square (as
:func:`scipy.optimize.curve_fit` does by default). Data errors that are not
positive and finite, or below ``1e-6`` (multi-tau's last delay has exactly 0),
are replaced by the largest valid error of the same series: a point of unknown
precision gets the least weight, never an infinite one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel._fit_batch import BatchFit, fit_batch
from xpcs_kernel.errors import FitError, UsageError

__all__ = ["DEFAULT_G2_BOUNDS", "DiffusionFit", "G2Fit", "fit_diffusion", "fit_g2"]

#: (lower, upper) bounds of (baseline, beta, gamma [1/s], alpha)
DEFAULT_G2_BOUNDS: tuple[tuple[float, ...], tuple[float, ...]] = (
    (0.0, 0.0, 0.0, 0.1),
    (np.inf, np.inf, np.inf, 3.0),
)
#: errors below this are treated as missing (see the module docstring)
ERROR_FLOOR = 1e-6
_F64 = NDArray[np.float64]
_NAMES = np.array(["baseline", "beta", "gamma", "alpha"])


@dataclass(frozen=True, eq=False)
class G2Fit:
    """Per-dynamic-bin results of :func:`fit_g2` (arrays of shape ``(n_dynamic,)``).

    ``gamma`` is in the inverse unit of the delays (1/s for delays in s).
    ``success[k]`` is False when the fit of bin ``k`` failed, did not converge,
    left a parameter undetermined (singular Jacobian, e.g. no decay in the
    window) or stopped at a bound; ``message[k]`` says why (or how it
    converged). The parameters of a failed fit are kept where they exist.
    """

    baseline: _F64
    beta: _F64
    gamma: _F64
    alpha: _F64
    baseline_err: _F64
    beta_err: _F64
    gamma_err: _F64
    alpha_err: _F64
    success: NDArray[np.bool_]
    message: tuple[str, ...]
    fit_range: tuple[float, float]

    @property
    def tau_c(self) -> _F64:
        """``1 / gamma`` (inf where gamma is 0)."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.gamma

    @property
    def tau_c_err(self) -> _F64:
        """``gamma_err / gamma^2``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.gamma_err / self.gamma**2


@dataclass(frozen=True, eq=False)
class DiffusionFit:
    """Result of :func:`fit_diffusion`: ``Gamma = D q^2 + intercept``; the points used."""

    D: float
    D_err: float
    intercept: float
    intercept_err: float
    q: _F64
    gamma: _F64


def _guard_errors(err: _F64) -> _F64 | None:
    """Replace missing/tiny errors by the largest valid one; None if none is valid."""
    good = np.isfinite(err) & (err >= ERROR_FLOOR)
    if not good.any():
        return None
    return np.where(good, err, err[good].max())


def _covariance(jac: _F64, scale: float) -> _F64 | None:
    _, s, vt = np.linalg.svd(jac, full_matrices=False)
    if s.size == 0 or s[-1] <= s[0] * 1e-10:
        return None
    inv: _F64 = (vt.T / s**2) @ vt
    return inv * scale


def _model(p: _F64, tau: _F64) -> _F64:
    baseline, beta, log_gamma, alpha = p
    value: _F64 = baseline + beta * np.exp(-2.0 * (np.exp(log_gamma) * tau) ** alpha)
    return value


def _initial(tau: _F64, y: _F64) -> list[float]:
    # normalized g2 decays to ~1; otherwise start from the last point
    baseline = 1.0 if 0.5 < y[-1] < 1.5 else float(y[-1])
    beta = max(float(y[0]) - baseline, 1e-3)
    below = np.flatnonzero(y - baseline < beta * np.exp(-1.0))
    tau_e = float(tau[below[0]]) if below.size else 2.0 * float(tau[-1])
    return [baseline, beta, float(np.log(0.5 / tau_e)), 1.0]


def _fit_one(
    tau: _F64,
    y: _F64,
    err: _F64 | None,
    fit_alpha: bool,
    lower: _F64,
    upper: _F64,
) -> tuple[_F64, _F64, str, bool]:
    """Fit one bin; returns (params, errors, message, success) in (b, beta, gamma, alpha)."""
    nan4 = np.full(4, np.nan)
    ok = np.isfinite(y) & np.isfinite(tau)
    order = np.argsort(tau[ok], kind="stable")
    tau, y = tau[ok][order], y[ok][order]
    sigma = None if err is None else _guard_errors(err[ok][order])
    free = np.array([True, True, True, fit_alpha])
    n_free = int(free.sum())
    if y.size <= n_free:
        return nan4, nan4, f"too few finite points ({y.size}) for {n_free} parameters", False
    p0 = np.clip(_initial(tau, y), lower + 1e-12, upper - 1e-12)
    if not fit_alpha:
        p0[3] = 1.0

    def residuals(x: _F64) -> _F64:
        p = p0.copy()
        p[free] = x
        r = _model(p, tau) - y
        return r if sigma is None else r / sigma

    from scipy.optimize import least_squares  # imported on use: runs without fits skip scipy

    with np.errstate(over="ignore", under="ignore"):
        try:
            res = least_squares(
                residuals,
                p0[free],
                bounds=(lower[free], upper[free]),
                x_scale="jac",
                ftol=1e-12,
                xtol=1e-12,
                gtol=1e-12,
                max_nfev=2000,
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            return nan4, nan4, f"fit failed: {exc}", False
    params = p0.copy()
    params[free] = res.x
    dof = y.size - n_free
    scale = 1.0 if sigma is not None else float(2.0 * res.cost / dof)
    cov = _covariance(np.asarray(res.jac, dtype=np.float64), scale)
    errors = np.zeros(4)
    if cov is not None:
        errors[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    params[2] = np.exp(params[2])
    errors[2] *= params[2]  # d gamma = gamma d(log gamma)
    if not res.success:
        return params, errors, f"did not converge: {res.message}", False
    if cov is None:
        return params, np.where(free, np.nan, 0.0), "parameters not determined", False
    at_bound = res.active_mask != 0
    for limit in (lower[free], upper[free]):
        finite = np.isfinite(limit)
        near = np.abs(res.x - np.where(finite, limit, 0.0)) <= 1e-6 * np.maximum(1.0, abs(limit))
        at_bound |= finite & near
    pinned = list(_NAMES[free][at_bound])
    if pinned:
        return params, errors, f"stopped at the bound of {', '.join(pinned)}", False
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(errors))):
        return params, errors, "non-finite parameters", False
    return params, errors, str(res.message), True


BATCH_MESSAGE = "converged (batched Levenberg-Marquardt)"


def _fit_batched(
    tau: _F64, y: _F64, err: _F64 | None, lower: _F64, upper: _F64
) -> BatchFit | None:
    """Every bin with ``alpha = 1`` at once (:mod:`xpcs_kernel._fit_batch`); None: no bin."""
    n_bins = y.shape[1]
    if tau.size <= 3 or n_bins == 0:
        return None
    order = np.argsort(tau, kind="stable")
    tau_s = tau[order]
    ys = np.zeros((n_bins, tau.size))
    ws = np.zeros((n_bins, tau.size))
    x0 = np.zeros((n_bins, 3))
    for k in range(n_bins):
        yk = y[order, k]
        ok = np.isfinite(yk)
        if np.count_nonzero(ok) <= 3:
            continue  # the slow path says why
        if err is None:
            w = np.ones(tau.size)
        else:
            guarded = _guard_errors(err[order, k][ok])
            if guarded is None:
                continue
            w = np.zeros(tau.size)
            w[ok] = 1.0 / guarded
        ws[k] = np.where(ok, w, 0.0)
        ys[k] = np.where(ok, yk, 0.0)
        start = np.clip(_initial(tau_s[ok], yk[ok]), lower + 1e-12, upper - 1e-12)
        x0[k] = start[:3]
    use = np.flatnonzero(np.any(ws > 0, axis=1))
    params = np.full((n_bins, 3), np.nan)
    errors = np.full((n_bins, 3), np.nan)
    done = np.zeros(n_bins, dtype=bool)
    if use.size:
        fit = fit_batch(
            tau_s, ys[use], ws[use], x0[use], lower[:3], upper[:3], absolute_sigma=err is not None
        )
        params[use], errors[use], done[use] = fit.params, fit.errors, fit.done
    return BatchFit(params=params, errors=errors, done=done)


def fit_g2(
    delays: _F64,
    g2: _F64,
    g2_err: _F64 | None = None,
    *,
    fit_alpha: bool = False,
    fit_range: tuple[float, float] | None = None,
    bounds: tuple[Sequence[float], Sequence[float]] | None = None,
) -> G2Fit:
    """Fit ``g2 = baseline + beta exp(-2 (gamma tau)^alpha)`` to every dynamic bin.

    Parameters
    ----------
    delays : ndarray of float, shape (n_tau,)
        Delays ``tau`` (seconds, or any unit: ``gamma`` comes out in its inverse).
    g2 : ndarray of float, shape (n_tau, n_dynamic) or (n_tau,)
        Normalized correlation; non-finite points are ignored.
    g2_err : ndarray of float, same shape, optional
        1-sigma errors (absolute); missing/zero ones are guarded (module docstring).
    fit_alpha : bool
        Fit the stretching exponent ``alpha``; otherwise ``alpha = 1``.
    fit_range : (float, float), optional
        Only delays with ``low <= tau <= high`` are used; default all.
    bounds : ((4 floats), (4 floats)), optional
        Lower and upper bounds of (baseline, beta, gamma, alpha); default
        :data:`DEFAULT_G2_BOUNDS`.

    Returns
    -------
    G2Fit
        A bin whose fit fails has ``success`` False and a message; it never
        stops the other bins.
    """
    tau = np.asarray(delays, dtype=np.float64).reshape(-1)
    y = np.asarray(g2, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim != 2 or y.shape[0] != tau.size:
        raise UsageError(f"must be (n_tau={tau.size}, n_dynamic), got {y.shape}", argument="g2")
    if not np.all(np.isfinite(tau)) or np.any(tau <= 0):
        raise UsageError("must be finite and positive", argument="delays")
    err = None
    if g2_err is not None:
        err = np.asarray(g2_err, dtype=np.float64)
        if err.size != y.size:
            raise UsageError(f"must have the shape of g2 {y.shape}", argument="g2_err")
        err = err.reshape(y.shape)
    lo_b, hi_b = DEFAULT_G2_BOUNDS if bounds is None else bounds
    lower = np.asarray(lo_b, dtype=np.float64).copy()
    upper = np.asarray(hi_b, dtype=np.float64).copy()
    if lower.shape != (4,) or upper.shape != (4,) or np.any(lower >= upper):
        raise UsageError("must be two sequences of 4 with lower < upper", argument="bounds")
    with np.errstate(divide="ignore"):
        lower[2], upper[2] = np.log(max(lower[2], 0.0)), np.log(upper[2])
    if fit_range is None:
        fit_range = (float(tau.min()), float(tau.max()))
    lo, hi = float(fit_range[0]), float(fit_range[1])
    if not lo <= hi:
        raise UsageError(
            f"must be (low, high) with low <= high, got {fit_range}", argument="fit_range"
        )
    sel = (tau >= lo * (1 - 1e-12)) & (tau <= hi * (1 + 1e-12))
    out = np.full((8, y.shape[1]), np.nan)
    success = np.zeros(y.shape[1], dtype=bool)
    messages: list[str] = []
    batch = (
        None
        if fit_alpha
        else _fit_batched(tau[sel], y[sel], None if err is None else err[sel], lower, upper)
    )
    for k in range(y.shape[1]):
        if batch is not None and batch.done[k]:
            out[:3, k], out[3, k] = batch.params[k], 1.0
            out[4:7, k], out[7, k] = batch.errors[k], 0.0
            out[2, k] = np.exp(out[2, k])
            out[6, k] *= out[2, k]  # d gamma = gamma d(log gamma)
            success[k] = True
            messages.append(BATCH_MESSAGE)
            continue
        e = None if err is None else err[sel, k]
        params, errors, message, ok = _fit_one(tau[sel], y[sel, k], e, fit_alpha, lower, upper)
        out[:4, k], out[4:, k], success[k] = params, errors, ok
        messages.append(message)
    return G2Fit(
        baseline=out[0],
        beta=out[1],
        gamma=out[2],
        alpha=out[3],
        baseline_err=out[4],
        beta_err=out[5],
        gamma_err=out[6],
        alpha_err=out[7],
        success=success,
        message=tuple(messages),
        fit_range=(lo, hi),
    )


def fit_diffusion(
    q: _F64,
    gamma: _F64,
    gamma_err: _F64 | None = None,
    *,
    fit_intercept: bool = True,
) -> DiffusionFit:
    """Fit ``Gamma = D q^2 + intercept`` by weighted linear least squares.

    Minimizes ``sum_k ((D q_k^2 + c - Gamma_k) / sigma_k)^2``. Points with a
    non-finite ``q`` or ``gamma`` are left out (e.g. failed g2 fits).

    Parameters
    ----------
    q : ndarray of float, shape (n,)
    gamma : ndarray of float, shape (n,)
        Relaxation rates (1/s for ``D`` in q-unit^-2 / s).
    gamma_err : ndarray of float, shape (n,), optional
        1-sigma errors (absolute); missing/zero ones are guarded.
    fit_intercept : bool
        Fit the intercept ``c``; otherwise ``c = 0`` (pure diffusion).

    Raises
    ------
    FitError
        Fewer usable points than parameters, or all q equal.
    """
    qv = np.asarray(q, dtype=np.float64).reshape(-1)
    gv = np.asarray(gamma, dtype=np.float64).reshape(-1)
    if qv.size != gv.size:
        raise UsageError(f"has {gv.size} values for {qv.size} q values", argument="gamma")
    ev = None if gamma_err is None else np.asarray(gamma_err, dtype=np.float64).reshape(-1)
    if ev is not None and ev.size != qv.size:
        raise UsageError(f"has {ev.size} values for {qv.size} q values", argument="gamma_err")
    ok = np.isfinite(qv) & np.isfinite(gv)
    qv, gv = qv[ok], gv[ok]
    n_par = 2 if fit_intercept else 1
    if qv.size < n_par:
        raise FitError(f"{qv.size} usable points for {n_par} parameters")
    sigma = None if ev is None else _guard_errors(ev[ok])
    x = np.stack([qv**2, np.ones_like(qv)], axis=1)[:, :n_par]
    w = np.ones_like(qv) if sigma is None else 1.0 / sigma
    a, b = x * w[:, None], gv * w
    if np.linalg.matrix_rank(a) < n_par:
        raise FitError("q values do not determine the fit (all equal?)")
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    dof = qv.size - n_par
    if sigma is not None:
        scale = 1.0
    elif dof > 0:
        scale = float(np.sum((a @ coef - b) ** 2) / dof)
    else:
        scale = np.nan
    cov = np.linalg.inv(a.T @ a) * scale
    errs = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    c, c_err = (float(coef[1]), float(errs[1])) if fit_intercept else (0.0, 0.0)
    return DiffusionFit(float(coef[0]), float(errs[0]), c, c_err, qv, gv)
