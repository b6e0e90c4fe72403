"""GPU capabilities of the descriptors, pinned endpoint workers, GPU/CPU rates apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from deployments import FacilityChooser, JobRequest, LearnedRates, RunHistory, RunTimings
from deployments.gpu import GPU_RUNTIMES, run_kind
from deployments.registry import load_deployments
from deployments.templates import endpoint_template_text, render_endpoint_template
from tests.deployments.helpers import make_deployment, write_overrides
from xpcs_kernel.errors import ConfigurationError

GPUS = {
    "polaris": ("NVIDIA A100", "cuda", 4, "CUDA_VISIBLE_DEVICES"),
    "perlmutter": ("NVIDIA A100", "cuda", 4, "CUDA_VISIBLE_DEVICES"),
    "frontier": ("AMD MI250X (one GCD per device)", "rocm", 8, "ROCR_VISIBLE_DEVICES"),
    "aurora": ("Intel Data Center GPU Max 1550", "xpu", 6, "ZE_AFFINITY_MASK"),
}
GPU_KEYS = {"gpu_model": "NVIDIA H100", "gpu_runtime": "cuda", "gpus_per_node": 4}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = write_overrides(tmp_path_factory.mktemp("gpu") / "deployments", tuple(GPUS))
    found = load_deployments(folder)
    return {name: found.get(name) for name in [*GPUS, "local"]}


def test_packaged_descriptors_say_which_endpoints_have_gpus(packaged: dict[str, object]) -> None:
    for name, (model, runtime, count, env) in GPUS.items():
        gpus = packaged[name].capabilities.gpus  # type: ignore[attr-defined]
        assert (gpus.model, gpus.runtime, gpus.per_node) == (model, runtime, count), name
        assert gpus.visible_devices_env == env
        assert gpus.torch_device == ("xpu" if runtime == "xpu" else "cuda")
    local = packaged["local"].capabilities  # type: ignore[attr-defined]
    assert (local.gpu, local.gpus) == (False, None)


@pytest.mark.parametrize("name", sorted(GPUS))
def test_templates_run_one_pinned_worker_per_gpu(packaged: dict[str, object], name: str) -> None:
    engine = yaml.safe_load(render_endpoint_template(name, {"account": "XPCS"}))["engine"]
    per_node = packaged[name].capabilities.gpus.per_node  # type: ignore[attr-defined]
    assert engine["max_workers_per_node"] == per_node
    assert engine["available_accelerators"] == [str(i) for i in range(per_node)]
    # the variable the engine sets per worker for this runtime is the one documented
    assert GPUS[name][3] in endpoint_template_text(name)
    # a site that lists its own accelerators gets one worker for each
    engine = yaml.safe_load(
        render_endpoint_template(name, {"account": "XPCS", "accelerators": ["0.0", "0.1"]})
    )["engine"]
    assert (engine["max_workers_per_node"], engine["available_accelerators"]) == (
        2,
        ["0.0", "0.1"],
    )


@pytest.mark.parametrize(
    ("capabilities", "field"),
    [
        ({**GPU_KEYS, "gpu_runtime": "opencl"}, "capabilities.gpu_runtime"),
        ({**GPU_KEYS, "gpus_per_node": 0}, "capabilities.gpus_per_node"),
        ({"gpu_model": "NVIDIA A100"}, "capabilities.gpu_runtime"),
        ({"gpu": False, **GPU_KEYS}, "capabilities.gpu_model"),
    ],
)
def test_bad_gpu_capability_names_file_and_key(
    capabilities: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_deployment("site", capabilities=capabilities)
    assert info.value.source == "site.toml"
    assert info.value.field == field
    if field == "capabilities.gpu_runtime" and "gpu_runtime" in capabilities:
        assert info.value.expected == " or ".join(GPU_RUNTIMES)


def test_run_kind_needs_torch_and_described_gpus() -> None:
    gpus = make_deployment("g", capabilities=GPU_KEYS).capabilities.gpus
    assert run_kind("torch", gpus) == "gpu"
    assert run_kind("numba", gpus) == "cpu"
    assert run_kind("torch", None) == "cpu"
    # auto: torch where the endpoint's worker sees a GPU, numba elsewhere
    assert run_kind("auto", gpus) == "gpu"
    assert run_kind("auto", None) == "cpu"


def _site(name: str) -> object:
    return make_deployment(
        name,
        capabilities=GPU_KEYS,
        priors={"throughput_mpix_s": 1000, "gpu_throughput_mpix_s": 50000},
    )


def test_priors_distinguish_gpu_from_cpu_runs() -> None:
    site = _site("site")
    assert LearnedRates.from_priors(site, backend="torch").throughput_mpix_s == 50000  # type: ignore[arg-type]
    assert LearnedRates.from_priors(site).throughput_mpix_s == 1000  # type: ignore[arg-type]
    cpu_only = make_deployment("cpu", capabilities={"gpu": False})
    assert LearnedRates.from_priors(cpu_only, backend="torch").throughput_mpix_s == 1000


def _run(h: RunHistory, run_id: str, kind: str, compute_s: float) -> None:
    h.record_start(
        run_id, dataset="d", facility="site", started_at=1.0, frames=1000, pixels=10**6,
        run_kind=kind,
    )  # fmt: skip
    h.record_success(run_id, finished_at=2.0, timings=RunTimings(1.0, 1.0, compute_s, 1.0))


def test_history_learns_gpu_and_cpu_throughput_apart() -> None:
    site = _site("site")
    with RunHistory(":memory:") as h:
        _run(h, "c1", "cpu", 1.0)  # 1000 Mpix/s
        _run(h, "g1", "gpu", 0.01)  # 100000 Mpix/s
        gpu = h.learned_rates(site, backend="torch", prior_weight=1.0)  # type: ignore[arg-type]
        cpu = h.learned_rates(site, prior_weight=1.0)  # type: ignore[arg-type]
        # (prior + sample) / 2 of each kind, never mixed
        assert gpu.throughput_mpix_s == pytest.approx((50000 + 100000) / 2)
        assert cpu.throughput_mpix_s == pytest.approx((1000 + 1000) / 2)
        with pytest.raises(ValueError, match="run_kind"):
            h.record_start("x", dataset="d", facility="site", started_at=1.0, run_kind="tpu")


def test_history_written_before_run_kinds_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE run_history (run_id TEXT PRIMARY KEY, dataset TEXT NOT NULL,"
            " facility TEXT NOT NULL, attempt INTEGER NOT NULL, failover_from TEXT,"
            " started_at REAL NOT NULL, finished_at REAL, outcome TEXT NOT NULL DEFAULT"
            " 'running', failure_kind TEXT, failure_detail TEXT, bytes_in INTEGER,"
            " bytes_out INTEGER, frames INTEGER, pixels INTEGER, stage_in_s REAL,"
            " queue_s REAL, compute_s REAL, stage_out_s REAL, decision TEXT)"
        )
        db.execute(
            "INSERT INTO run_history (run_id, dataset, facility, attempt, started_at, outcome,"
            " frames, pixels, compute_s) VALUES ('old', 'd', 'site', 1, 1.0, 'succeeded',"
            " 1000, 1000000, 2.0)"
        )
    site = _site("site")
    with RunHistory(path) as h:  # an old run is a CPU run: 500 Mpix/s
        cpu = h.learned_rates(site, prior_weight=1.0)  # type: ignore[arg-type]
        assert cpu.throughput_mpix_s == pytest.approx((1000 + 500) / 2)
        assert h.learned_rates(site, backend="torch").throughput_mpix_s == 50000  # type: ignore[arg-type]


def test_chooser_estimates_torch_runs_with_gpu_rates() -> None:
    site = _site("site")
    chooser = FacilityChooser([site], probes={"site": []})  # type: ignore[list-item]
    request = JobRequest(dataset="d", bytes_in=10**9, frames=10_000, pixels=10**6, backend="torch")
    assert chooser.rates(backend=request.backend)["site"].throughput_mpix_s == 50000
    cpu = chooser.rank(JobRequest(dataset="d", bytes_in=10**9, frames=10_000, pixels=10**6))
    gpu = chooser.rank(request)
    assert cpu.candidates[0].estimate.compute_s == pytest.approx(10.0)
    assert gpu.candidates[0].estimate.compute_s == pytest.approx(0.2)
