"""Resolving a device string to a torch device; its memory budget and peak memory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.device_spec import parse_device
from xpcs_kernel.errors import UsageError

__all__ = [
    "HOST_BUDGET",
    "DeviceInfo",
    "choose_backend",
    "import_torch",
    "index_tensor",
    "resolve_device",
]

HOST_BUDGET = 1 << 30
"""Working memory (bytes) of the backend when it runs on CPU torch."""

_DEVICE_FRACTION = 0.6  # of the free device memory at start-up
_THREADS_ENV = "XPCS_TORCH_THREADS"


def import_torch() -> ModuleType:
    """``torch``, or a :class:`UsageError` naming ``backend`` when it is not installed."""
    try:
        import torch
    except ImportError as exc:
        raise UsageError(
            "the torch backend needs torch: pip install 'xpcs-flows[gpu]'", argument="backend"
        ) from exc
    threads = os.environ.get(_THREADS_ENV)
    if threads:
        torch.set_num_threads(max(1, int(threads)))
    return torch


@dataclass(frozen=True)
class DeviceInfo:
    """The device a run uses.

    Attributes
    ----------
    device : torch.device
    name : str
        Human-readable name (``"NVIDIA A100-SXM4-40GB"``, ``"cpu"``).
    budget : int
        Bytes the run may hold on the device (state, frames in flight, two-time series).
    """

    device: Any
    name: str
    budget: int

    @property
    def kind(self) -> str:
        """``"cpu"``, ``"cuda"`` or ``"xpu"``."""
        return str(self.device.type)

    @property
    def accelerator(self) -> ModuleType | None:
        """``torch.cuda`` or ``torch.xpu`` for a GPU, ``None`` on CPU."""
        if self.kind == "cpu":
            return None
        torch = import_torch()
        return getattr(torch, self.kind)  # type: ignore[no-any-return]

    def synchronize(self) -> None:
        """Wait for the device's queued work."""
        acc = self.accelerator
        if acc is not None:
            acc.synchronize(self.device)

    def reset_peak(self) -> None:
        """Start counting the peak device memory from now."""
        acc = self.accelerator
        if acc is not None:
            acc.reset_peak_memory_stats(self.device)

    def peak_bytes(self) -> int | None:
        """Peak bytes allocated on the device since :meth:`reset_peak` (``None`` on CPU)."""
        acc = self.accelerator
        return None if acc is None else int(acc.max_memory_allocated(self.device))


def _available(torch: ModuleType, kind: str) -> int:
    module = getattr(torch, kind, None)
    if module is None or not module.is_available():
        return 0
    return int(module.device_count())


def choose_backend(device: str = "auto") -> str:
    """The backend a ``backend="auto"`` run takes here: ``"torch"`` or ``"numba"``.

    ``"torch"`` when torch is installed and ``device`` is a GPU it sees (for
    ``"auto"``: any CUDA/ROCm or Intel GPU), else ``"numba"``. Imports torch
    only when it is installed.
    """
    import importlib.util

    spec = parse_device(device)
    if spec.kind == "cpu" or importlib.util.find_spec("torch") is None:
        return "numba"
    torch = import_torch()
    kinds = ("cuda", "xpu") if spec.kind == "auto" else (spec.kind,)
    return "torch" if any(_available(torch, k) for k in kinds) else "numba"


def resolve_device(text: str, *, budget: int | None = None) -> DeviceInfo:
    """The :class:`DeviceInfo` for ``auto``, ``cpu``, ``cuda[:N]`` or ``xpu[:N]``.

    ``auto`` takes the first CUDA/ROCm GPU, else the first Intel GPU, else the
    CPU. The budget is ``budget`` if given, else 60 % of the device's free
    memory (:data:`HOST_BUDGET` on CPU).

    Raises
    ------
    UsageError
        Naming ``device`` when the string is invalid or names a device torch
        does not see.
    """
    spec = parse_device(text)
    torch = import_torch()
    kind = spec.kind
    if kind == "auto":
        kind = next((k for k in ("cuda", "xpu") if _available(torch, k)), "cpu")
    if kind == "cpu":
        return DeviceInfo(torch.device("cpu"), "cpu", budget or HOST_BUDGET)
    count = _available(torch, kind)
    index = spec.index or 0
    if index >= count:
        raise UsageError(
            f"{kind}:{index} requested but torch sees {count} {kind} device(s)",
            argument="device",
        )
    device = torch.device(kind, index)
    module = getattr(torch, kind)
    name = str(module.get_device_name(index))
    if budget is None:
        free = _free_bytes(module, device)
        budget = int(free * _DEVICE_FRACTION)
    return DeviceInfo(device, name, budget)


def _free_bytes(module: ModuleType, device: Any) -> int:
    getter = getattr(module, "mem_get_info", None)
    if getter is not None:
        free, _total = getter(device)
        return int(free)
    props = module.get_device_properties(device)
    return int(props.total_memory)


def index_tensor(values: NDArray[Any], device: Any) -> Any:
    """An int64 tensor of ``values`` on ``device`` (a copy: q-map arrays may be read-only)."""
    torch = import_torch()
    return torch.tensor(np.asarray(values, dtype=np.int64), device=device)
