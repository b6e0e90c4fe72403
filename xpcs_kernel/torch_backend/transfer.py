"""Host chunks to device tensors: pinned buffers, copies overlapped with compute.

On a GPU each host chunk is copied into one of two page-locked (pinned)
buffers and sent to the device with a non-blocking copy on a dedicated copy
stream; the compute stream waits for that copy's event only, so the copy of
chunk ``i + 1`` runs while chunk ``i`` is correlated (CUDA and ROCm streams,
or Intel XPU streams: torch gives both the same API). A pinned buffer is
reused only once its previous copy has finished. On CPU torch the arrays are
wrapped without a copy. Event lists (CSR) travel as events and are scattered
into dense frames on the device, so sparse data move a fraction of the bytes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.torch_backend.device import DeviceInfo, import_torch

__all__ = ["Stager", "torch_compatible"]

_N_BUFFERS = 2


def torch_compatible(array: NDArray[Any]) -> NDArray[Any]:
    """``array`` in a dtype torch computes with (bool to uint8, wide unsigned to int64)."""
    arr = np.ascontiguousarray(array)
    if arr.dtype == np.bool_:
        return arr.view(np.uint8)
    if arr.dtype in (np.uint32, np.uint64):
        return arr.astype(np.int64)
    return arr


class Stager:
    """Moves host arrays to the device of ``info``, counting bytes and seconds."""

    def __init__(self, info: DeviceInfo) -> None:
        self._torch = import_torch()
        self._info = info
        self._acc = info.accelerator
        self._copy_stream = self._acc.Stream(info.device) if self._acc is not None else None
        self._buffers: list[Any] = [None] * _N_BUFFERS
        self._events: list[Any] = [None] * _N_BUFFERS
        self._next = 0
        self.bytes_moved = 0
        self.host_seconds = 0.0

    def dense(self, array: NDArray[Any]) -> Any:
        """``array`` (any shape) as a tensor on the device.

        uint16 frames travel as uint16 and become int32 on the device: torch's
        uint16 has few kernels (sums, gathers) outside the CPU.
        """
        out = self._send(torch_compatible(array))
        return out.to(self._torch.int32) if out.dtype == self._torch.uint16 else out

    def sparse(
        self, n_frames: int, n_pixels: int, indptr: NDArray[Any], pixels: NDArray[Any], counts: Any
    ) -> Any:
        """Dense ``(n_frames, n_pixels)`` tensor of CSR frames (repeated pixels add up).

        Integer counts give int32 frames (exact), float counts float32.
        """
        torch = self._torch
        ptr = np.asarray(indptr, dtype=np.int64)
        rows = np.repeat(np.arange(n_frames, dtype=np.int64), np.diff(ptr - ptr[0]))
        flat = self._send(rows * n_pixels + np.asarray(pixels, dtype=np.int64))
        values = np.asarray(counts)
        wanted = np.float32 if values.dtype.kind == "f" else np.int32
        vals = self._send(values.astype(wanted, copy=False))
        out = torch.zeros(n_frames * n_pixels, dtype=vals.dtype, device=self._info.device)
        out.index_add_(0, flat, vals)
        return out.view(n_frames, n_pixels)

    def _send(self, array: NDArray[Any]) -> Any:
        torch = self._torch
        t0 = time.perf_counter()
        arr = np.ascontiguousarray(array)
        self.bytes_moved += arr.nbytes
        if self._acc is None:
            host = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
            self.host_seconds += time.perf_counter() - t0
            return host
        host = torch.from_numpy(np.empty(0, dtype=arr.dtype))  # the dtype, shape below
        slot = self._next
        self._next = (slot + 1) % _N_BUFFERS
        if self._events[slot] is not None:
            self._events[slot].synchronize()  # the buffer's previous copy is done
        buf = self._buffers[slot]
        if buf is None or buf.numel() < arr.size or buf.dtype != host.dtype:
            buf = torch.empty(arr.size, dtype=host.dtype, pin_memory=True)
            self._buffers[slot] = buf
        staged = buf[: arr.size].view(arr.shape)
        np.copyto(staged.numpy(), arr)  # one host copy into page-locked memory
        with self._acc.stream(self._copy_stream):
            dev = staged.to(self._info.device, non_blocking=True)
            event = self._acc.Event()
            event.record(self._copy_stream)
        self._events[slot] = event
        current = self._acc.current_stream(self._info.device)
        current.wait_event(event)
        dev.record_stream(current)
        self.host_seconds += time.perf_counter() - t0
        return dev
