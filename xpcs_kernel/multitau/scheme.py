"""Multi-tau delay scheme (APS 8-ID convention) and the accumulator row layout.

With ``D`` delays per level, level 0 correlates lags ``k = 1 .. 2D`` and every
level ``L >= 1`` lags ``k = D+1 .. 2D`` in units of its binned frames, i.e.
delays ``tau = k 2^L`` frames. Level ``L`` has ``N_L = N // 2^L`` frames (each
the average of two adjacent level ``L-1`` frames; a leftover frame is dropped)
and a delay exists while ``k < N_L``.

The streaming correlator keeps one float64 accumulator row per (level, lag)
pair; :func:`lag_row` gives the row of a pair in that compact layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError

__all__ = [
    "DelayScheme",
    "active_levels",
    "delay_list",
    "lag_range",
    "lag_row",
    "n_rows",
]


@dataclass(frozen=True)
class DelayScheme:
    """The multi-tau delays available for a number of frames.

    Attributes
    ----------
    delays : ndarray of int64, shape (n_tau,)
        Delays in frames, ``tau = k 2^L``, increasing.
    levels : ndarray of int64, shape (n_tau,)
        Level ``L`` of each delay.
    lags : ndarray of int64, shape (n_tau,)
        Lag ``k`` in units of the level's binned frames.
    pair_counts : ndarray of int64, shape (n_tau,)
        Number of frame pairs averaged, ``M = N_L - k``.
    """

    delays: NDArray[np.int64]
    levels: NDArray[np.int64]
    lags: NDArray[np.int64]
    pair_counts: NDArray[np.int64]


def lag_range(level: int, delays_per_level: int) -> tuple[int, int]:
    """First and one-past-last lag ``k`` correlated at ``level``."""
    if level == 0:
        return 1, 2 * delays_per_level + 1
    return delays_per_level + 1, 2 * delays_per_level + 1


def lag_row(level: int, lag: int, delays_per_level: int) -> int:
    """Row of the (level, lag) accumulator in the compact layout."""
    if level == 0:
        return lag - 1
    return 2 * delays_per_level + (level - 1) * delays_per_level + (lag - delays_per_level - 1)


def n_rows(n_active: int, delays_per_level: int) -> int:
    """Number of accumulator rows for levels ``0 .. n_active - 1``."""
    if n_active <= 0:
        return 0
    return 2 * delays_per_level + (n_active - 1) * delays_per_level


def active_levels(n_frames: int, delays_per_level: int) -> int:
    """Number of levels that have (or had) at least one pair to correlate.

    Level 0 is always active; level ``L >= 1`` becomes active once it holds
    ``D + 2`` frames, the fewest that give a pair at lag ``D + 1``.
    """
    n_act = 1
    while (n_frames >> n_act) >= delays_per_level + 2:
        n_act += 1
    return n_act


def delay_list(n_frames: int, *, delays_per_level: int = 4) -> DelayScheme:
    """Multi-tau delays for ``n_frames`` frames.

    Parameters
    ----------
    n_frames : int
        Number of frames ``N`` (>= 0).
    delays_per_level : int, optional
        ``D``, delays per level beyond level 0 (default 4, the APS convention).

    Returns
    -------
    DelayScheme
        Delays ``tau = k 2^L`` for level 0 lags ``k = 1..2D`` and level ``L >= 1``
        lags ``k = D+1..2D``, kept while ``k < N_L = N // 2^L``; pair counts
        ``M = N_L - k``. For ``N = 2000`` and ``D = 4``: 38 delays, the last 1536.

    Raises
    ------
    UsageError
        If ``n_frames < 0`` or ``delays_per_level < 1``.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise UsageError(f"must be a non-negative integer, got {n_frames!r}", argument="n_frames")
    _check_dpl(delays_per_level)
    delays: list[int] = []
    levels: list[int] = []
    lags: list[int] = []
    counts: list[int] = []
    level = 0
    while True:
        n_level = int(n_frames) >> level
        lo, hi = lag_range(level, delays_per_level)
        if n_level <= lo:
            break
        for k in range(lo, min(hi, n_level)):
            delays.append(k << level)
            levels.append(level)
            lags.append(k)
            counts.append(n_level - k)
        level += 1
    return DelayScheme(
        delays=np.asarray(delays, dtype=np.int64),
        levels=np.asarray(levels, dtype=np.int64),
        lags=np.asarray(lags, dtype=np.int64),
        pair_counts=np.asarray(counts, dtype=np.int64),
    )


def _check_dpl(delays_per_level: object) -> None:
    if (
        isinstance(delays_per_level, bool)
        or not isinstance(delays_per_level, (int, np.integer))
        or delays_per_level < 1
    ):
        raise UsageError(
            f"must be a positive integer, got {delays_per_level!r}", argument="delays_per_level"
        )
