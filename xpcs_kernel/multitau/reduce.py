"""From correlator sums to binned g2: the APS 8-ID (boost_corr / xpcs-eigen) rule.

For each delay, per pixel ``p`` over its ``M`` pairs:
``G2_p = <I(t) I(t+k)>``, ``IP_p = <I(t)>``, ``IF_p = <I(t+k)>``. Then per
static bin ``s``: ``g2_s = <G2>_s / (<IP>_s <IF>_s)`` (means over the bin's
pixels), and per dynamic bin ``d``: ``g2_d = mean of g2_s`` over the non-empty
static bins inside ``d``. The error of ``d`` is ``std_p(G2_p / (IP_p IF_p)) /
sqrt(n_d)`` over the ``n_d`` pixels of ``d`` with ``IP_p IF_p > 0`` (population
standard deviation, ``ddof = 0``).

The reduction is one numba pass over the correlator state
(:mod:`xpcs_kernel.multitau.bin`): per tile of pixels it derives each level's
carry and total in small buffers and adds every delay's per-pixel values to
per-bin sums; the variance is a shifted one-pass form merged chunk by chunk
(numerically sound, see that module). No array of the pixel count is
allocated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.multitau.bin import Partial, bin_partial, merge_partials
from xpcs_kernel.multitau.scheme import DelayScheme, delay_list
from xpcs_kernel.multitau.state import CorrelatorState

__all__ = [
    "G2Result",
    "PixelBins",
    "binned_result",
    "check_bins",
    "reduce_g2",
    "scheme_for",
]


def _index_array(value: object, name: str) -> NDArray[np.intp]:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise UsageError(f"must be one-dimensional, got shape {arr.shape}", argument=name)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise UsageError(f"must hold integers, got dtype {arr.dtype}", argument=name)
    return arr.astype(np.intp, copy=False)


@dataclass(frozen=True)
class PixelBins:
    """Static and dynamic q-bins of the correlated pixels (0-based).

    Attributes
    ----------
    static_index : ndarray of intp, shape (n_pixels,)
        Static bin of each correlated pixel, in ``[0, n_static)``.
    dynamic_of_static : ndarray of intp, shape (n_static,)
        Dynamic bin of each static bin, in ``[0, n_dynamic)``.
    n_dynamic : int
        Number of dynamic bins.
    """

    static_index: NDArray[np.intp]
    dynamic_of_static: NDArray[np.intp]
    n_dynamic: int

    def __post_init__(self) -> None:
        static = _index_array(self.static_index, "static_index")
        dyn = _index_array(self.dynamic_of_static, "dynamic_of_static")
        n_dyn = self.n_dynamic
        if isinstance(n_dyn, bool) or not isinstance(n_dyn, (int, np.integer)) or n_dyn < 1:
            raise UsageError(f"must be a positive integer, got {n_dyn!r}", argument="n_dynamic")
        if dyn.size == 0:
            raise UsageError("needs at least one static bin", argument="dynamic_of_static")
        if static.size == 0:
            raise UsageError("needs at least one pixel", argument="static_index")
        if static.min() < 0 or static.max() >= dyn.size:
            raise UsageError(
                f"values must lie in [0, {dyn.size}) (n_static), found "
                f"[{static.min()}, {static.max()}]",
                argument="static_index",
            )
        if dyn.min() < 0 or dyn.max() >= n_dyn:
            raise UsageError(
                f"values must lie in [0, {n_dyn}) (n_dynamic), found [{dyn.min()}, {dyn.max()}]",
                argument="dynamic_of_static",
            )
        object.__setattr__(self, "static_index", static)
        object.__setattr__(self, "dynamic_of_static", dyn)
        object.__setattr__(self, "n_dynamic", int(n_dyn))

    @property
    def n_static(self) -> int:
        """Number of static bins."""
        return int(self.dynamic_of_static.size)


@dataclass(frozen=True)
class G2Result:
    """Multi-tau correlation binned in q.

    Attributes
    ----------
    delays : ndarray of int64, shape (n_tau,)
        Delays in frames.
    pair_counts : ndarray of int64, shape (n_tau,)
        Frame pairs averaged for each delay.
    g2 : ndarray of float64, shape (n_tau, n_dynamic)
        Normalised correlation of each dynamic bin (NaN where it has no
        static bin with intensity).
    g2_err : ndarray of float64, shape (n_tau, n_dynamic)
        Its error (0 for a delay with a single pair: every pixel ratio is 1).
    G2_static, IP_static, IF_static : ndarray of float64, shape (n_tau, n_static)
        ``<G2>_s``, ``<IP>_s``, ``<IF>_s`` (NaN for an empty static bin).
    n_frames : int
        Frames correlated.
    """

    delays: NDArray[np.int64]
    pair_counts: NDArray[np.int64]
    g2: NDArray[np.float64]
    g2_err: NDArray[np.float64]
    G2_static: NDArray[np.float64]
    IP_static: NDArray[np.float64]
    IF_static: NDArray[np.float64]
    n_frames: int


def check_bins(bins: PixelBins, n_corr: int) -> None:
    """A :class:`UsageError` unless ``bins`` has one static bin per correlated pixel."""
    if bins.static_index.size != n_corr:
        raise UsageError(
            f"static_index has {bins.static_index.size} pixels, the correlator {n_corr}",
            argument="bins",
        )


def scheme_for(n_frames: int, delays_per_level: int) -> DelayScheme:
    """The delays of ``n_frames`` frames, or a :class:`CorrelationError` if there are none."""
    scheme = delay_list(n_frames, delays_per_level=delays_per_level)
    if scheme.delays.size == 0:
        raise CorrelationError(f"{n_frames} frame(s): need at least 2 for the first delay")
    return scheme


def binned_result(
    scheme: DelayScheme, bins: PixelBins, partials: list[Partial], n_frames: int
) -> G2Result:
    """The :class:`G2Result` of partial bin sums covering every pixel of ``bins``."""
    g2, g2_err, g2_static, ip_static, if_static = merge_partials(
        scheme, bins.static_index, bins.dynamic_of_static, partials
    )
    return G2Result(
        delays=scheme.delays,
        pair_counts=scheme.pair_counts,
        g2=g2,
        g2_err=g2_err,
        G2_static=g2_static,
        IP_static=ip_static,
        IF_static=if_static,
        n_frames=n_frames,
    )


def reduce_g2(state: CorrelatorState, bins: PixelBins) -> G2Result:
    """Binned g2 of the frames fed so far (the state is not modified).

    One numba pass over the state bins every delay
    (:func:`xpcs_kernel.multitau.bin.bin_partial`: shifted one-pass
    variance, chunks merged in a fixed order).
    """
    check_bins(bins, state.n_corr)
    scheme = scheme_for(state.n_frames, state.dpl)
    partial = bin_partial(state, scheme, bins.static_index, bins.dynamic_of_static, bins.n_dynamic)
    return binned_result(scheme, bins, [partial], state.n_frames)
