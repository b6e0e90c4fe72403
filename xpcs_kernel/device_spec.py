"""Device strings of the torch backend, checked without importing torch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from xpcs_kernel.errors import UsageError

__all__ = ["BACKENDS", "DEVICE_KINDS", "DeviceSpec", "parse_device"]

#: ``auto``: torch where torch sees a GPU, else numba (decided where the run runs)
BACKENDS: tuple[str, ...] = ("numba", "torch", "auto")
DEVICE_KINDS: tuple[str, ...] = ("auto", "cpu", "cuda", "xpu")

_PATTERN = re.compile(r"^(auto|cpu|cuda|xpu)(?::(\d+))?$")

Kind = Literal["auto", "cpu", "cuda", "xpu"]


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device string: ``kind`` and the optional device ``index``."""

    kind: Kind
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def parse_device(text: str, *, argument: str = "device") -> DeviceSpec:
    """Parse ``auto``, ``cpu``, ``cuda[:N]`` or ``xpu[:N]``.

    ROCm builds of torch drive AMD GPUs through the ``cuda`` device type, so
    ``cuda`` covers Polaris, Perlmutter and Frontier; ``xpu`` is Aurora.

    Raises
    ------
    UsageError
        Naming ``argument`` when the string is none of these.
    """
    match = _PATTERN.match(text) if isinstance(text, str) else None
    if match is None:
        raise UsageError(
            f"must be auto, cpu, cuda[:N] or xpu[:N], not {text!r}", argument=argument
        )
    kind = match.group(1)
    index = match.group(2)
    if index is not None and kind in ("auto", "cpu"):
        raise UsageError(f"{kind} takes no device index, got {text!r}", argument=argument)
    return DeviceSpec(kind=kind, index=int(index) if index is not None else None)  # type: ignore[arg-type]
