"""The fit part of a correlation run: g2 fits per dynamic bin and the diffusion law."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpcs_kernel.fit import fit_diffusion, fit_g2
from xpcs_kernel.multitau import G2Result
from xpcs_kernel.qmap import QMap

__all__ = ["fit_summary"]


def fit_summary(
    g2: G2Result, qmap: QMap, delay_seconds: np.ndarray[Any, Any]
) -> tuple[list[dict[str, Any]], dict[str, float] | None, dict[str, np.ndarray[Any, Any]]]:
    """Fit every dynamic bin's g2 and the diffusion law.

    Returns the rows of the summary (one per dynamic bin), the diffusion fit
    (None with fewer than two good bins) and the arrays of the result file's
    fit group.
    """
    fit = fit_g2(delay_seconds, g2.g2, g2.g2_err)
    rows: list[dict[str, Any]] = []
    for d in range(qmap.n_dynamic):
        rows.append(
            {
                "bin": d,
                "q": float(qmap.dynamic_q[d]),
                "phi": float(qmap.dynamic_phi[d]),
                "beta": float(fit.beta[d]),
                "gamma": float(fit.gamma[d]),
                "gamma_err": float(fit.gamma_err[d]),
                "tau_c": float(1.0 / fit.gamma[d]) if fit.gamma[d] > 0 else float("inf"),
                "baseline": float(fit.baseline[d]),
                "success": bool(fit.success[d]),
            }
        )
    diffusion: dict[str, float] | None = None
    ok = fit.success & np.isfinite(fit.gamma) & (fit.gamma > 0)
    if np.count_nonzero(ok) >= 2:
        dfit = fit_diffusion(qmap.dynamic_q[ok], fit.gamma[ok], fit.gamma_err[ok])
        diffusion = {
            "D": float(dfit.D),
            "D_err": float(dfit.D_err),
            "intercept": float(dfit.intercept),
        }
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "baseline": fit.baseline,
        "beta": fit.beta,
        "gamma": fit.gamma,
        "alpha": fit.alpha,
        "baseline_err": fit.baseline_err,
        "beta_err": fit.beta_err,
        "gamma_err": fit.gamma_err,
        "alpha_err": fit.alpha_err,
        "success": fit.success.astype(np.uint8),
        "q": qmap.dynamic_q,
    }
    return rows, diffusion, arrays
