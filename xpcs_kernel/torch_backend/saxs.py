"""SAXS 1D/2D and intensity vs time in torch (same definitions as :mod:`xpcs_kernel.saxs`).

Integer frames are summed in int64 on the device, so every per-pixel and
per-frame sum is exact (the numba backend's float64 sums of integers are
exact too); float frames are summed in float64. Per-pixel sums of the open
time segment are binned into the static bins when the segment closes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xpcs_kernel.errors import CorrelationError
from xpcs_kernel.qmap import QMap
from xpcs_kernel.saxs import SaxsResult
from xpcs_kernel.torch_backend.device import import_torch, index_tensor

__all__ = ["TorchSaxs"]


class TorchSaxs:
    """Streaming SAXS reductions of ``n_frames`` frames fed in order on a torch device.

    Parameters
    ----------
    qmap : QMap
    n_frames : int
    device : torch.device
    n_segments : int, optional
        Time segments of ``saxs_1d_segments`` (default 10, at most ``n_frames``).
    """

    def __init__(self, qmap: QMap, *, n_frames: int, device: Any, n_segments: int = 10) -> None:
        torch = self._torch = import_torch()
        self._qmap = qmap
        self._n_frames = int(n_frames)
        n_seg = min(int(n_segments), self._n_frames)
        self._bounds = np.arange(n_seg + 1, dtype=np.int64) * self._n_frames // n_seg
        n_pixels = qmap.shape[0] * qmap.shape[1]
        self._device = device
        self._pixel_index = index_tensor(qmap.pixel_index, device)
        self._static = index_tensor(qmap.static_index, device)
        mask = np.flatnonzero(qmap.mask.reshape(-1))
        self._mask = index_tensor(mask, device)
        self._n_valid = int(mask.size)
        self._pixel_sum = torch.zeros(n_pixels, dtype=torch.float64, device=device)
        self._segment_static = torch.zeros(
            (n_seg, qmap.n_static), dtype=torch.float64, device=device
        )
        self._intensity = torch.zeros(self._n_frames, dtype=torch.float64, device=device)
        self._fed = 0

    def feed(self, frames: Any) -> None:
        """The next frames: ``(n, H * W)`` integer or float tensor on the device."""
        torch = self._torch
        n = frames.shape[0]
        start = self._fed
        if start + n > self._n_frames:
            raise CorrelationError(f"SAXS fed {start + n} frames, expected {self._n_frames}")
        exact = not frames.dtype.is_floating_point
        acc = torch.int64 if exact else torch.float64
        totals = frames.index_select(1, self._mask).sum(dim=1, dtype=acc)
        self._intensity[start : start + n] = totals.to(torch.float64) / self._n_valid
        for k in range(self._bounds.size - 1):
            lo = max(int(self._bounds[k]), start) - start
            hi = min(int(self._bounds[k + 1]), start + n) - start
            if hi <= lo:
                continue
            sums = frames[lo:hi].sum(dim=0, dtype=acc).to(torch.float64)
            self._pixel_sum += sums
            self._segment_static[k].index_add_(0, self._static, sums[self._pixel_index])
        self._fed += n

    def result(self) -> SaxsResult:
        """The reductions; every one of the ``n_frames`` frames must have been fed."""
        if self._fed != self._n_frames:
            raise CorrelationError(
                f"SAXS reduction got {self._fed} frames, expected n_frames={self._n_frames}"
            )
        qm = self._qmap
        lengths = np.diff(self._bounds).astype(np.float64)
        counts = np.bincount(qm.static_index, minlength=qm.n_static).astype(np.float64)
        saxs_2d = self._pixel_sum.cpu().numpy() / self._n_frames
        saxs_1d = np.bincount(
            qm.static_index, weights=saxs_2d[qm.pixel_index], minlength=qm.n_static
        )
        segments = self._segment_static.cpu().numpy()
        return SaxsResult(
            saxs_2d=saxs_2d.reshape(qm.shape),
            saxs_1d=saxs_1d / counts,
            saxs_1d_segments=segments / (lengths[:, None] * counts[None, :]),
            intensity_vs_time=np.stack(
                [np.arange(self._n_frames, dtype=np.float64), self._intensity.cpu().numpy()]
            ),
        )
