"""Scales and labels of the standard XPCS figures (pure numpy; no matplotlib here).

The Plots step (:func:`tools.plots.xpcs_plots`, which runs where only this
package is installed) draws what pyXpcsViewer users expect; the choices live
here so that they can be tested without drawing:

* :func:`twotime_limits`: colour limits of a two-time map from percentiles of
  its off-diagonal entries (the diagonal, ``<I^2>/<I>^2``, sits far above the
  data and would wash the map out).
* :func:`image_limits`: the same for any image (finite values only).
* :func:`log_spans`: whether values span enough decades for a log axis.
* :func:`q_text`, :func:`g2_title`, :func:`twotime_title`, :func:`fit_legend`:
  the texts, with q and its unit in every title.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = [
    "DEFAULT_Q_UNIT",
    "fit_legend",
    "g2_title",
    "image_limits",
    "log_spans",
    "q_text",
    "q_unit",
    "twotime_limits",
    "twotime_title",
]

#: The q unit when a result file does not record one.
DEFAULT_Q_UNIT = "Å⁻¹"


def _check_percentiles(low: float, high: float) -> None:
    if not 0.0 <= low < high <= 100.0:
        raise UsageError(f"need 0 <= low < high <= 100, not {low}, {high}", argument="low, high")


def image_limits(
    image: NDArray[Any], *, low: float = 1.0, high: float = 99.0
) -> tuple[float, float]:
    """Colour limits ``(vmin, vmax)``: the ``low`` and ``high`` percentiles of the finite values.

    Returns ``(0, 1)`` for an image without finite values, and widens an empty
    range (a constant image) by one unit so that a colour bar can be drawn.
    """
    _check_percentiles(low, high)
    values = np.asarray(image, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(v) for v in np.percentile(values, [low, high]))
    if vmax <= vmin:
        return vmin - 0.5, vmin + 0.5
    return vmin, vmax


def twotime_limits(
    c2: NDArray[Any], *, low: float = 1.0, high: float = 99.0, band: int = 1
) -> tuple[float, float]:
    """Colour limits of a two-time map C(t1, t2) from its off-diagonal entries.

    Parameters
    ----------
    c2 : ndarray, shape (N, N)
        The (symmetric) two-time map.
    low, high
        Percentiles of the entries with ``|t1 - t2| >= band`` frames.
    band
        Entries this close to the diagonal are left out (``band=1``: the
        diagonal only).

    Returns
    -------
    tuple of float
        ``(vmin, vmax)``; the whole map's limits when it has no off-diagonal entry.
    """
    c2 = np.asarray(c2)
    if c2.ndim != 2 or c2.shape[0] != c2.shape[1]:
        raise UsageError(f"must be a square 2-D map, not shape {c2.shape}", argument="c2")
    if band < 1:
        raise UsageError(f"must be >= 1, not {band}", argument="band")
    n = c2.shape[0]
    i, j = np.triu_indices(n, k=band)
    if i.size == 0:
        return image_limits(c2, low=low, high=high)
    return image_limits(c2[i, j], low=low, high=high)


def log_spans(values: NDArray[Any], *, decades: float = 1.0) -> bool:
    """Whether the positive ``values`` span at least ``decades`` decades (then a log axis helps).

    ``max / min >= 10 ** decades``; ``False`` when fewer than two values are positive.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2:
        return False
    return bool(v.max() / v.min() >= 10.0**decades)


def q_unit(map_units: Any) -> str:
    """The q unit in a result's ``map_units`` (first entry), else :data:`DEFAULT_Q_UNIT`."""
    if map_units is None:
        return DEFAULT_Q_UNIT
    try:
        first = np.asarray(map_units).ravel()[0]
    except (IndexError, TypeError, ValueError):
        return DEFAULT_Q_UNIT
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return text.strip() or DEFAULT_Q_UNIT


def q_text(q: float, unit: str = DEFAULT_Q_UNIT) -> str:
    """``"q = 0.00044 Å⁻¹"`` (three significant digits)."""
    return f"q = {float(q):.3g} {unit}"


def g2_title(q: float, unit: str = DEFAULT_Q_UNIT) -> str:
    """The title of one g2 panel (one dynamic q-bin)."""
    return q_text(q, unit)


def twotime_title(q: float, unit: str = DEFAULT_Q_UNIT) -> str:
    """The title of one two-time map."""
    return f"C(t1, t2), {q_text(q, unit)}"


def fit_legend(tau_c: float, beta: float, *, time_unit: str = "s") -> str:
    """The legend entry of a g2 fit: ``"fit: τc = 0.101 s, β = 0.199"``."""
    return f"fit: τc = {float(tau_c):.3g} {time_unit}, β = {float(beta):.3g}"
