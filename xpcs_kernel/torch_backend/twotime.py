"""Two-time correlation in torch (same definitions as :mod:`xpcs_kernel.twotime`).

The float32 time series of the selected bins' pixels are kept on the device
when they fit its budget, else in host memory and moved block by block. Per
bin, with each pixel scaled by ``1 / M_p`` (its time mean, or its static
bin's, as the numba backend), ``G = J J^T`` is one float32 matrix product per
block of pixels (float64 accumulation over several blocks) and
``C(t1, t2) = |P| G(t1, t2) / (s(t1) s(t2))``; frames with ``s(t) <= 0`` get
NaN rows and columns. The diagonal sums (float64) are read through a strided
view of the zero-padded lower triangle, block of rows by block of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import CorrelationError, UsageError
from xpcs_kernel.torch_backend.device import import_torch, index_tensor
from xpcs_kernel.twotime import TwoTimeResult
from xpcs_kernel.twotime.gram import pair_counts

__all__ = ["TorchTwoTime", "diagonal_sums"]

_BLOCK_ELEMENTS = 1 << 26  # frames x pixels of one Gram block
_ROW_BLOCK = 1024


class TorchTwoTime:
    """Streaming two-time correlator on a torch device.

    Parameters
    ----------
    dynamic_index : ndarray of int, shape (n_corr,)
        0-based dynamic bin of each correlated pixel.
    n_dynamic : int
    device : torch.device
    budget : int
        Device bytes the stored series may take (beyond: host memory).
    bins : sequence of int, optional
        Dynamic bins to correlate (default: every bin with pixels).
    static_index : ndarray of int, shape (n_corr,), optional
        Smooth by the static bin's time mean (as :class:`xpcs_kernel.twotime.TwoTimeCorrelator`).
    n_frames : int
        Frames that will be fed (sizes the store).
    n_segments : int, optional
        Time segments of ``g2_segments`` (default 5).
    """

    def __init__(
        self,
        dynamic_index: NDArray[np.intp],
        *,
        n_dynamic: int,
        device: Any,
        budget: int,
        n_frames: int,
        bins: Sequence[int] | None = None,
        static_index: NDArray[np.intp] | None = None,
        n_segments: int = 5,
    ) -> None:
        torch = self._torch = import_torch()
        dyn = np.asarray(dynamic_index, dtype=np.intp)
        counts = np.bincount(dyn, minlength=n_dynamic)
        if bins is None:
            sel = np.flatnonzero(counts).astype(np.int64)
        else:
            sel = np.sort(np.asarray(list(bins), dtype=np.int64))
            bad = sel[(sel >= n_dynamic) | (counts[np.minimum(sel, n_dynamic - 1)] == 0)]
            if bad.size:
                raise UsageError(
                    f"bins {bad.tolist()} are not dynamic bins with pixels", argument="bins"
                )
        if sel.size == 0:
            raise UsageError("no pixel to correlate", argument="bins")
        keep = np.flatnonzero(np.isin(dyn, sel))
        keep = keep[np.argsort(dyn[keep], kind="stable")]
        self._bins = sel
        self._offsets = np.concatenate([[0], np.cumsum(counts[sel])]).astype(np.intp)
        self._columns = index_tensor(keep, device)
        self._static = (
            np.unique(np.asarray(static_index)[keep], return_inverse=True)[1].astype(np.intp)
            if static_index is not None
            else None
        )
        self._n_segments = int(n_segments)
        self._device = device
        store_device = device if n_frames * keep.size * 4 <= budget else torch.device("cpu")
        self._series = torch.empty(
            (int(n_frames), keep.size), dtype=torch.float32, device=store_device
        )
        self._fed = 0

    @property
    def on_device(self) -> bool:
        """Whether the series are kept on the device (else in host memory)."""
        return bool(self._series.device == self._torch.device(self._device))

    def feed(self, frames: Any) -> None:
        """The next frames: float32 ``(n, n_corr)`` on the device."""
        n = frames.shape[0]
        if self._fed + n > self._series.shape[0]:
            raise CorrelationError(
                f"fed {self._fed + n} frames to a two-time store of {self._series.shape[0]}"
            )
        block = frames.index_select(1, self._columns)
        self._series[self._fed : self._fed + n].copy_(block, non_blocking=True)
        self._fed += n

    def result(self) -> TwoTimeResult:
        """C per selected bin, its diagonal average and the segment averages."""
        torch = self._torch
        n = self._fed
        if n == 0:
            raise CorrelationError("no frames were fed to the two-time correlator")
        series = self._series[:n]
        mean = series.sum(dim=0, dtype=torch.float64).cpu().numpy() / n
        if self._static is not None:
            count = np.bincount(self._static)
            mean = (np.bincount(self._static, weights=mean) / count)[self._static]
        scale = np.zeros(mean.size, dtype=np.float32)
        positive = mean > 0
        scale[positive] = (1.0 / mean[positive]).astype(np.float32)
        seg_len = n // self._n_segments
        n_sel = self._bins.size
        g2 = np.empty((n, n_sel))
        g2_seg = np.empty((self._n_segments, seg_len, n_sel))
        c2: list[NDArray[np.float32]] = []
        for b in range(n_sel):
            lo, hi = int(self._offsets[b]), int(self._offsets[b + 1])
            cols = lo + np.flatnonzero(positive[lo:hi])
            c, g2[:, b], g2_seg[:, :, b] = self._bin(series, cols, scale)
            c2.append(c)
        self._series = self._series[:0]
        return TwoTimeResult(
            bins=self._bins.copy(),
            c2=tuple(c2),
            g2=g2,
            g2_segments=g2_seg,
            n_frames=n,
            smoothing="pixel" if self._static is None else "static",
        )

    def _bin(
        self, series: Any, cols: NDArray[np.intp], scale: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
        torch = self._torch
        dev = self._device
        n = series.shape[0]
        step = max(256, _BLOCK_ELEMENTS // max(n, 1))
        gram: Any = None
        frame_sum = torch.zeros(n, dtype=torch.float64, device=dev)
        for i in range(0, cols.size, step):
            idx = index_tensor(cols[i : i + step], series.device)
            factor = torch.as_tensor(scale[cols[i : i + step]], device=dev)
            x = series.index_select(1, idx).to(dev, non_blocking=True) * factor
            frame_sum += x.sum(dim=1, dtype=torch.float64)
            part = x @ x.T
            gram = part if gram is None else gram.to(torch.float64) + part
        if gram is None:
            gram = torch.zeros((n, n), dtype=torch.float32, device=dev)
        valid = frame_sum > 0
        weight = torch.where(valid, 1.0 / torch.where(valid, frame_sum, 1.0), 0.0)
        c = torch.empty((n, n), dtype=torch.float32, device=dev)
        for r0 in range(0, n, _ROW_BLOCK):  # C in float64 row blocks, rounded to float32
            rows = slice(r0, min(r0 + _ROW_BLOCK, n))
            block = gram[rows].to(torch.float64) * (weight[rows, None] * cols.size) * weight
            c[rows] = block.to(torch.float32)
        del gram
        diag = diagonal_sums(c)
        seg_len = n // self._n_segments
        seg = np.empty((self._n_segments, seg_len))
        valid_np = valid.cpu().numpy()
        for m in range(self._n_segments):
            part = slice(m * seg_len, (m + 1) * seg_len)
            seg[m] = _mean(diagonal_sums(c[part, part]), valid_np[part])
        nan_rows = ~valid
        c[nan_rows] = float("nan")
        c[:, nan_rows] = float("nan")
        return c.cpu().numpy(), _mean(diag, valid_np), seg


def diagonal_sums(c: Any) -> NDArray[np.float64]:
    """``out[tau] = sum_t c[t + tau, t]`` in float64, for a square tensor ``c``.

    A strided view of ``c`` padded with ``n`` zero rows puts the diagonal
    ``tau`` in column ``tau``: element ``(i, tau)`` is ``c[i + tau, i]``.
    """
    torch = import_torch()
    n = c.shape[0]
    if n == 0:
        return np.zeros(0)
    padded = torch.zeros((2 * n, n), dtype=c.dtype, device=c.device)
    padded[:n] = c
    view = padded.as_strided((n, n), (n + 1, n))
    out = torch.zeros(n, dtype=torch.float64, device=c.device)
    for r0 in range(0, n, _ROW_BLOCK):
        out += view[r0 : r0 + _ROW_BLOCK].to(torch.float64).sum(dim=0)
    return out.cpu().numpy()  # type: ignore[no-any-return]


def _mean(total: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    count = pair_counts(valid)
    out = np.full(total.size, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out
