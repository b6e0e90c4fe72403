"""The torch backend of the kernel: multi-tau, two-time and SAXS on a GPU (or CPU torch).

Chosen with ``CorrelationOptions(backend="torch", device=...)`` or
``correlate --backend torch --device auto|cpu|cuda[:N]|xpu[:N]``. One code path
serves NVIDIA (CUDA), AMD (ROCm builds of torch expose the same ``cuda``
device type) and Intel GPUs (``xpu``). torch is an optional extra
(``pip install 'xpcs-flows[gpu]'``) and is imported only by the modules that
compute: importing this package, :mod:`.device_spec` or
:mod:`xpcs_kernel.options` does not import torch.

Modules: :mod:`.device_spec` (parsing a device string, no torch),
:mod:`.device` (resolving it, memory budget, peak memory),
:mod:`.multitau` (streaming multi-tau, dense and event input),
:mod:`.twotime`, :mod:`.saxs` (SAXS 1D/2D and intensity vs time),
:mod:`.transfer` (pinned host buffers, copies overlapped with compute) and
:mod:`.driver` (the whole ``correlate`` run).
"""

from __future__ import annotations

from xpcs_kernel.device_spec import BACKENDS, parse_device

__all__ = ["BACKENDS", "parse_device"]
