"""The GPUs of a facility descriptor (``[capabilities]`` keys) and what they imply.

A descriptor with ``gpu = true`` names its GPUs (all three keys or none)::

    [capabilities]
    gpu = true
    gpu_model = "NVIDIA A100"
    gpu_runtime = "cuda"     # cuda (NVIDIA), rocm (AMD) or xpu (Intel)
    gpus_per_node = 4        # devices per node: one endpoint worker each

and may give ``gpu_throughput_mpix_s`` in ``[priors]`` (the torch backend's
rate there; default: the CPU ``throughput_mpix_s``). The runtime decides the
torch device type (ROCm builds of torch drive AMD GPUs as ``cuda``) and the
variable that pins one device per worker; the endpoint templates list one
accelerator per worker (``available_accelerators``), for which Globus
Compute's engine exports that variable to each worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployments._fields import Fields

__all__ = ["GPU_RUNTIMES", "GpuSpec", "parse_gpu", "run_kind"]

#: runtime -> (torch device type, variable that pins a worker's device)
GPU_RUNTIMES: dict[str, tuple[str, str]] = {
    "cuda": ("cuda", "CUDA_VISIBLE_DEVICES"),
    "rocm": ("cuda", "ROCR_VISIBLE_DEVICES"),
    "xpu": ("xpu", "ZE_AFFINITY_MASK"),
}
_KEYS = ("gpu_model", "gpu_runtime", "gpus_per_node")


@dataclass(frozen=True)
class GpuSpec:
    """The GPUs of one node of a facility."""

    model: str
    runtime: str
    per_node: int

    @property
    def torch_device(self) -> str:
        """The torch device type of these GPUs (``"cuda"`` or ``"xpu"``)."""
        return GPU_RUNTIMES[self.runtime][0]

    @property
    def visible_devices_env(self) -> str:
        """The variable that pins one device to a worker."""
        return GPU_RUNTIMES[self.runtime][1]


def parse_gpu(cap: Fields, *, gpu: bool) -> GpuSpec | None:
    """The :class:`GpuSpec` of a ``[capabilities]`` table whose ``gpu`` flag is ``gpu``.

    Raises
    ------
    ConfigurationError
        Naming the file and ``capabilities.<key>``: a runtime outside
        :data:`GPU_RUNTIMES`, one GPU key without the others, a GPU key when
        ``gpu = false``. ``gpu = true`` without GPU keys gives ``None`` (GPUs
        not described: the torch backend is not counted as a GPU run there).
    """
    given = [key for key in _KEYS if key in cap.data]
    if not gpu and given:
        raise cap.error(given[0], "describes GPUs but gpu = false", expected="gpu = true")
    if not given:  # no GPUs, or GPUs not described: torch runs there count as CPU runs
        return None
    model = cap.string("gpu_model")
    runtime = cap.string("gpu_runtime")
    if runtime not in GPU_RUNTIMES:
        raise cap.error(
            "gpu_runtime", "unknown GPU runtime", expected=" or ".join(GPU_RUNTIMES), found=runtime
        )
    return GpuSpec(model=model, runtime=runtime, per_node=cap.integer("gpus_per_node", minimum=1))


def run_kind(backend: str, gpu: GpuSpec | None) -> str:
    """``"gpu"`` for a torch or ``auto`` run where GPUs are described (``device=auto`` takes one).

    Every other run is ``"cpu"`` (an ``auto`` run takes numba where there is no GPU).
    """
    return "gpu" if backend in ("torch", "auto") and gpu is not None else "cpu"
