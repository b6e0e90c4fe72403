"""Streaming multi-tau correlation in torch (same definitions as :mod:`xpcs_kernel.multitau`).

Level ``L`` frames are the float32 means of adjacent pairs of level ``L - 1``
frames (a leftover frame waits for its partner). Per level the correlator
keeps, for the correlated pixels: the last ``W = 2D`` frames (the carry, zeros
before the first frame), the first ``W`` frames, the float64 total, and for
each lag ``k`` (``1..2D`` at level 0, ``D+1..2D`` above) the float64 sum of
``A_p = sum_t I_p(t) I_p(t + k)``, each chunk's products summed in float32.
For a delay with ``M`` pairs the binning uses ``P_p = T_p - (last k frames)``
and ``F_p = T_p - (first k frames)`` and reduces on the device to the
per-bin sums of :func:`xpcs_kernel.multitau.bin.merge_partials` (one chunk,
shift = the bin mean), so the g2 formula and its error are the numba
backend's, to float32 rounding.
"""

from __future__ import annotations

from typing import Any

from xpcs_kernel.multitau.reduce import G2Result, PixelBins, binned_result, check_bins, scheme_for
from xpcs_kernel.torch_backend.device import import_torch, index_tensor

__all__ = ["TorchMultiTau"]

_MAX_SUM_FRAMES = 256  # products summed in float32 over at most this many frames


class _Level:
    """State of one level (tensors on the device)."""

    def __init__(self, torch: Any, width: int, n_corr: int, device: Any) -> None:
        self.carry = torch.zeros((width, n_corr), dtype=torch.float32, device=device)
        self.head = torch.zeros((width, n_corr), dtype=torch.float32, device=device)
        self.total = torch.zeros(n_corr, dtype=torch.float64, device=device)
        self.pairs = torch.zeros((width, n_corr), dtype=torch.float64, device=device)
        self.n_frames = 0
        self.leftover: Any = None  # a level frame waiting for its partner


class TorchMultiTau:
    """Multi-tau of frames fed in time order, on a torch device.

    Parameters
    ----------
    n_corr : int
        Correlated pixels (columns of the tensors fed).
    device : torch.device
    delays_per_level : int, optional
        ``D`` (default 4, the APS convention).
    """

    def __init__(self, n_corr: int, *, device: Any, delays_per_level: int = 4) -> None:
        self._torch = import_torch()
        self._n_corr = int(n_corr)
        self._device = device
        self._d = int(delays_per_level)
        self._levels: list[_Level] = []

    @property
    def n_frames(self) -> int:
        """Frames fed so far."""
        return self._levels[0].n_frames if self._levels else 0

    @staticmethod
    def state_nbytes(n_corr: int, n_frames: int, *, delays_per_level: int = 4) -> int:
        """Device bytes of the state for ``n_frames`` frames of ``n_corr`` pixels.

        Per level (``floor(log2 N) + 1`` of them) and pixel: carry and first
        frames (float32) and pair sums (float64) of ``2D`` rows, and the
        float64 total: ``(4 + 4 + 8) 2D + 8`` bytes, 136 for ``D = 4``.
        """
        per_pixel = (4 + 4 + 8) * 2 * int(delays_per_level) + 8
        return int(n_frames).bit_length() * per_pixel * int(n_corr)

    def feed(self, frames: Any) -> None:
        """The next frames: a float32 tensor ``(n, n_corr)`` on the device."""
        if frames.ndim != 2 or frames.shape[1] != self._n_corr:
            from xpcs_kernel.errors import UsageError

            raise UsageError(
                f"must have shape (n, {self._n_corr}), got {tuple(frames.shape)}",
                argument="frames",
            )
        for f0 in range(0, frames.shape[0], _MAX_SUM_FRAMES):
            self._feed_level(0, frames[f0 : f0 + _MAX_SUM_FRAMES])

    def _feed_level(self, index: int, x: Any) -> None:
        torch = self._torch
        n = x.shape[0]
        if n == 0:
            return
        w = 2 * self._d
        if index == len(self._levels):
            self._levels.append(_Level(torch, w, self._n_corr, self._device))
        lev = self._levels[index]
        if lev.n_frames < w:
            take = min(w - lev.n_frames, n)
            lev.head[lev.n_frames : lev.n_frames + take] = x[:take]
        lev.total += x.sum(dim=0, dtype=torch.float64)
        ext = torch.cat((lev.carry, x))
        lo = 1 if index == 0 else self._d + 1
        for k in range(lo, w + 1):
            lev.pairs[k - 1] += (ext[w - k : w - k + n] * x).sum(dim=0)
        lev.carry = ext[-w:].clone()
        lev.n_frames += n
        src = x if lev.leftover is None else torch.cat((lev.leftover[None], x))
        m = src.shape[0] // 2
        lev.leftover = src[2 * m].clone() if src.shape[0] % 2 else None
        if m:
            upper = (src[0 : 2 * m : 2] + src[1 : 2 * m : 2]) * 0.5
            self._feed_level(index + 1, upper)

    def g2(self, bins: PixelBins) -> G2Result:
        """Binned g2 of everything fed (the same definitions as the numba backend).

        Raises
        ------
        CorrelationError
            If fewer than 2 frames were fed.
        UsageError
            If ``bins`` does not describe the correlated pixels.
        """
        torch = self._torch
        check_bins(bins, self._n_corr)
        scheme = scheme_for(self.n_frames, self._d)
        dev = self._device
        static = index_tensor(bins.static_index, dev)
        dyn_np = bins.dynamic_of_static[bins.static_index]
        dyn = index_tensor(dyn_np, dev)
        n_static, n_dyn = bins.n_static, bins.n_dynamic
        n_tau = int(scheme.delays.size)
        ssum = torch.zeros((n_tau, n_static, 3), dtype=torch.float64, device=dev)
        dsum = torch.zeros((n_tau, n_dyn, 4), dtype=torch.float64, device=dev)
        w = 2 * self._d
        for i in range(n_tau):
            lev = self._levels[int(scheme.levels[i])]
            k = int(scheme.lags[i])
            m = float(scheme.pair_counts[i])
            a = lev.pairs[k - 1]
            p = lev.total - lev.carry[w - k :].sum(dim=0, dtype=torch.float64)
            f = lev.total - lev.head[:k].sum(dim=0, dtype=torch.float64)
            for j, values in enumerate((a, p, f)):
                ssum[i, :, j].index_add_(0, static, values)
            _ratio_moments(torch, m * a, p * f, dyn, n_dyn, dsum[i])
        partial = (ssum.cpu().numpy()[None], dsum.cpu().numpy()[None])
        return binned_result(scheme, bins, [partial], self.n_frames)


def _ratio_moments(torch: Any, num: Any, den: Any, dyn: Any, n_dyn: int, out: Any) -> None:
    """``out[d] = (n, K, sum (r - K), sum (r - K)^2)`` of ``r = num / den`` where ``den > 0``.

    The shift ``K`` is the bin mean (two passes on the device).
    """
    ok = den > 0
    r = torch.where(ok, num / torch.where(ok, den, 1.0), 0.0)
    okf = ok.to(torch.float64)
    count = torch.zeros(n_dyn, dtype=torch.float64, device=r.device).index_add_(0, dyn, okf)
    total = torch.zeros_like(count).index_add_(0, dyn, r)
    mean = torch.where(count > 0, total / count.clamp(min=1.0), 0.0)
    dev = (r - mean[dyn]) * okf
    out[:, 0] = count
    out[:, 1] = mean
    out[:, 2] = torch.zeros_like(count).index_add_(0, dyn, dev)
    out[:, 3] = torch.zeros_like(count).index_add_(0, dyn, dev * dev)
