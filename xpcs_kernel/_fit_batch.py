"""All dynamic bins' g2 fits at once: a batched Levenberg-Marquardt in numpy.

:func:`xpcs_kernel.fit.fit_g2` fitted bin by bin with
:func:`scipy.optimize.least_squares`: 5-9 ms per bin plus 0.2-1.3 s to import
``scipy.optimize`` (2-core VM), so 100 q-bins took about a second. The model
with ``alpha = 1`` has three parameters ``x = (baseline, beta, log gamma)``::

    g2(tau) = baseline + beta exp(-2 exp(x_2) tau)

and every bin's 3x3 normal equations are solved together (``np.linalg.solve``
on a stack), so one iteration costs a few array operations whatever the
number of bins. The minimum is the same weighted least-squares minimum as
``least_squares`` finds; a bin whose minimum is not strictly inside the
bounds, does not converge, or has a singular Jacobian is reported as not
done here, and :func:`~xpcs_kernel.fit.fit_g2` fits it with ``least_squares``
as before (same messages).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["BatchFit", "fit_batch"]

_F64 = NDArray[np.float64]
_MAX_ITER = 200
_BOUND_TOL = 1e-6


@dataclass(frozen=True, eq=False)
class BatchFit:
    """Per bin (arrays of length ``n_bins``): ``params``/``errors`` ``(n_bins, 3)`` in
    ``(baseline, beta, log gamma)``; ``done`` False where the bin needs the slow path."""

    params: _F64
    errors: _F64
    done: NDArray[np.bool_]


def _model_jac(x: _F64, tau: _F64, w: _F64) -> tuple[_F64, _F64]:
    """Weighted model ``(n_bins, n_tau)`` and Jacobian ``(n_bins, n_tau, 3)``."""
    gamma = np.exp(x[:, 2])[:, None]
    e = np.exp(-2.0 * gamma * tau)
    model = (x[:, 0:1] + x[:, 1:2] * e) * w
    jac = np.empty((*model.shape, 3))
    jac[..., 0] = w
    jac[..., 1] = e * w
    jac[..., 2] = x[:, 1:2] * e * (-2.0 * gamma * tau) * w
    return model, jac


def _solve(a: _F64, b: _F64) -> _F64:
    """Solve each ``a[k] x = b[k]``; NaN rows where ``a[k]`` is singular."""
    try:
        out: _F64 = np.asarray(np.linalg.solve(a, b[..., None])[..., 0], dtype=np.float64)
        return out
    except np.linalg.LinAlgError:
        out = np.full(b.shape, np.nan)
        for k in range(a.shape[0]):
            with contextlib.suppress(np.linalg.LinAlgError):  # singular: stays NaN
                out[k] = np.linalg.solve(a[k], b[k])
        return out


def fit_batch(
    tau: _F64,
    y: _F64,
    weight: _F64,
    x0: _F64,
    lower: _F64,
    upper: _F64,
    *,
    absolute_sigma: bool,
) -> BatchFit:
    """Minimise ``sum_t (weight (model - y))^2`` per bin from ``x0``.

    Parameters
    ----------
    tau : (n_tau,)
        Delays (positive).
    y, weight : (n_bins, n_tau)
        Data and ``1 / sigma`` (0 drops a point).
    x0 : (n_bins, 3)
        Starting ``(baseline, beta, log gamma)``.
    lower, upper : (3,)
        Bounds; a minimum within ``1e-6`` of a finite one is left to the slow path.
    absolute_sigma : bool
        Errors from ``(J^T J)^-1`` as they are (True) or scaled by the reduced chi-square.
    """
    yw = y * weight
    x = np.clip(x0.astype(np.float64), lower, upper)
    n_bins = x.shape[0]
    model, jac = _model_jac(x, tau, weight)
    cost = np.sum((model - yw) ** 2, axis=1)
    lam = np.full(n_bins, 1e-3)
    converged = np.zeros(n_bins, dtype=bool)
    failed = np.zeros(n_bins, dtype=bool)
    eye = np.eye(3)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for _ in range(_MAX_ITER):
            active = ~converged
            if not active.any():
                break
            r = model - yw
            jtj = np.einsum("bti,btj->bij", jac, jac)
            jtr = np.einsum("bti,bt->bi", jac, r)
            diag = np.einsum("bii->bi", jtj)
            a = jtj + lam[:, None, None] * diag[:, :, None] * eye
            step = _solve(a, -jtr)
            failed |= active & ~np.all(np.isfinite(step), axis=1)
            converged |= failed  # stops iterating; not done (below)
            step = np.where(failed[:, None], 0.0, step)
            x_new = np.clip(x + step, lower, upper)
            m_new, j_new = _model_jac(x_new, tau, weight)
            c_new = np.sum((m_new - yw) ** 2, axis=1)
            better = active & np.isfinite(c_new) & (c_new <= cost)
            small = np.all(np.abs(x_new - x) <= 1e-12 * (np.abs(x) + 1e-12), axis=1)
            rel = (cost - c_new) <= 1e-15 * np.maximum(cost, 1e-300)
            converged |= active & better & (small | rel)
            x = np.where(better[:, None], x_new, x)
            model = np.where(better[:, None], m_new, model)
            jac = np.where(better[:, None, None], j_new, jac)
            cost = np.where(better, c_new, cost)
            lam = np.where(better, lam * 0.1, lam * 10.0)
            converged |= active & (lam > 1e12)  # no step lowers the cost: a minimum
        n_used = np.count_nonzero(weight > 0, axis=1)
        dof = np.maximum(n_used - 3, 1)
        _, s, vt = np.linalg.svd(jac, full_matrices=False)
        singular = ~(s[:, -1] > s[:, 0] * 1e-10)
        s_safe = np.where(singular[:, None], 1.0, s)
        inv = np.einsum("bki,bk,bkj->bij", vt, 1.0 / s_safe**2, vt)
        scale = np.ones(n_bins) if absolute_sigma else cost / dof
        var = np.einsum("bii->bi", inv) * scale[:, None]
        errors = np.sqrt(np.clip(var, 0.0, None))
    finite_lim = np.isfinite(lower) | np.isfinite(upper)
    near = np.zeros_like(x, dtype=bool)
    for limit in (lower, upper):
        fin = np.isfinite(limit)
        ref = np.where(fin, limit, 0.0)
        near |= fin & (np.abs(x - ref) <= _BOUND_TOL * np.maximum(1.0, np.abs(ref)))
    done = (
        converged
        & ~failed
        & ~singular
        & ~np.any(near & finite_lim, axis=1)
        & np.all(np.isfinite(x), axis=1)
        & np.all(np.isfinite(errors), axis=1)
    )
    return BatchFit(params=x, errors=errors, done=done)
