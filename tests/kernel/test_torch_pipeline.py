"""``correlate`` on the torch backend (CPU torch): same result file as numba, options, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.kernel.torch_support import require_torch
from xpcs_kernel.cli import correlate_command
from xpcs_kernel.errors import UsageError
from xpcs_kernel.io import write_hdf5_frames, write_rigaku
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.result import read_result
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("torch_pipeline")
    spec = SyntheticSpec(
        n_frames=200,
        shape=(24, 32),
        beta=0.25,
        mean_count=0.8,
        n_dynamic_q=3,
        n_static_q=9,
        tau_c_range=(2.0, 20.0),
        frame_time=1e-3,
        seed=5,
        dtype="uint16",
    )
    truth, frames = synthesize(spec)
    write_qmap(tmp / "qmap.h5", truth.qmap)
    write_hdf5_frames(tmp / "raw.h5", frames, compression="lz4")
    write_rigaku(tmp / "raw.bin", frames)
    return {"qmap": tmp / "qmap.h5", "hdf5": tmp / "raw.h5", "rigaku": tmp / "raw.bin"}


def _both(data: dict[str, Path], raw: str, tmp: Path, **options: Any) -> tuple[Any, Any, Any]:
    kwargs: dict[str, Any] = {"frame_time": 1e-3, "mode": "both", "chunk_frames": 48}
    kwargs.update(options)
    correlate_file(data[raw], data["qmap"], tmp / "n.h5", options=CorrelationOptions(**kwargs))
    got = correlate_file(
        data[raw],
        data["qmap"],
        tmp / "t.h5",
        options=CorrelationOptions(backend="torch", device="cpu", **kwargs),
    )
    return got, read_result(tmp / "n.h5", load_c2=True), read_result(tmp / "t.h5", load_c2=True)


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        ("hdf5", {}),
        ("rigaku", {"path": "sparse"}),
        ("hdf5", {"normalize_frame": True, "fit": False, "stride": 2}),
    ],
)
def test_result_file_equals_numba(
    dataset: dict[str, Path], tmp_path: Path, raw: str, options: dict[str, Any]
) -> None:
    require_torch()
    summary, ref, got = _both(dataset, raw, tmp_path, **options)
    assert summary.path == ("sparse" if options.get("path") == "sparse" else "dense")
    np.testing.assert_array_equal(got.delay_list, ref.delay_list)
    np.testing.assert_allclose(got.g2, ref.g2, rtol=1e-4)
    np.testing.assert_allclose(got.g2_err, ref.g2_err, rtol=1e-4, atol=1e-12)
    np.testing.assert_array_equal(got.twotime_bins, ref.twotime_bins)
    np.testing.assert_allclose(got.twotime_g2, ref.twotime_g2, rtol=1e-4)
    for mine, theirs in zip(got.twotime_c2, ref.twotime_c2, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4)
    for name in ("saxs_2d", "saxs_1d", "saxs_1d_segments", "intensity_vs_time"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    assert got.metadata.parameters["backend"] == "torch"
    if options.get("fit", True):
        assert [r["success"] for r in summary.fit] == [True] * 3


def test_cli_runs_the_torch_backend(dataset: dict[str, Path], tmp_path: Path) -> None:
    require_torch()
    out = tmp_path / "cli.h5"
    args = [str(dataset["hdf5"]), "--qmap", str(dataset["qmap"]), "-o", str(out)]
    args += ["--frame-time", "1e-3", "--backend", "torch", "--device", "cpu", "--json", "--no-fit"]
    result = CliRunner().invoke(correlate_command, args)
    assert result.exit_code == 0, result.output
    assert read_result(out).metadata.parameters["device"] == "cpu"


def test_device_resolution_on_this_machine() -> None:
    torch = require_torch()
    from xpcs_kernel.torch_backend.device import resolve_device

    info = resolve_device("cpu")
    assert (info.kind, info.name, info.peak_bytes()) == ("cpu", "cpu", None)
    if not torch.cuda.is_available():
        assert resolve_device("auto").kind in ("cpu", "xpu")
        with pytest.raises(UsageError) as err:
            resolve_device("cuda:0")
        assert err.value.argument == "device"
        assert "cuda:0" in str(err.value)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"backend": "jax"}, "backend"),
        ({"backend": "torch", "device": "gpu"}, "device"),
        ({"backend": "torch", "device": "cuda:x"}, "device"),
        ({"backend": "torch", "device": "cpu:1"}, "device"),
        ({"device": "cuda:0"}, "device"),  # numba runs on the CPU
    ],
)
def test_options_name_the_bad_argument(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(UsageError) as err:
        CorrelationOptions(**options)
    assert err.value.argument == argument


def test_options_round_trip_backend_and_device() -> None:
    opts = CorrelationOptions(backend="torch", device="xpu:1")
    assert CorrelationOptions.from_dict(opts.to_dict()) == opts
    assert CorrelationOptions().backend == "numba"


def test_kernel_and_cli_start_without_importing_torch() -> None:
    code = (
        "import sys, xpcs_kernel, xpcs_kernel.cli, xpcs_kernel.pipeline, xpcs_kernel.options, "
        "xpcs_kernel.torch_backend, flows.cli\n"
        "from xpcs_kernel.options import CorrelationOptions\n"
        "CorrelationOptions(backend='torch', device='cuda:1')\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_state_beyond_the_device_budget_is_refused(
    dataset: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_torch()
    from xpcs_kernel.errors import CorrelationError
    from xpcs_kernel.torch_backend import device as device_module
    from xpcs_kernel.torch_backend.multitau import TorchMultiTau

    # 200 frames: 8 levels x 136 bytes per correlated pixel
    n_corr = 24 * 32  # at most every pixel of the detector
    assert TorchMultiTau.state_nbytes(n_corr, 200) == 8 * 136 * n_corr
    monkeypatch.setattr(device_module, "HOST_BUDGET", 1000)
    opts = CorrelationOptions(frame_time=1e-3, backend="torch", device="cpu", fit=False)
    with pytest.raises(CorrelationError, match="budget on cpu"):
        correlate_file(dataset["hdf5"], dataset["qmap"], tmp_path / "x.h5", options=opts)
    assert not (tmp_path / "x.h5").exists()


def test_auto_backend_runs_numba_where_torch_sees_no_gpu(
    dataset: dict[str, Path], tmp_path: Path
) -> None:
    torch = require_torch()
    if torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()):
        pytest.skip("this machine has a GPU: auto takes torch here")
    from xpcs_kernel.torch_backend.device import choose_backend

    assert (choose_backend("auto"), choose_backend("cpu")) == ("numba", "numba")
    base: dict[str, Any] = {"frame_time": 1e-3, "chunk_frames": 48}
    correlate_file(
        dataset["hdf5"], dataset["qmap"], tmp_path / "n.h5", options=CorrelationOptions(**base)
    )
    summary = correlate_file(
        dataset["hdf5"],
        dataset["qmap"],
        tmp_path / "a.h5",
        options=CorrelationOptions(backend="auto", **base),
    )
    auto, numba = read_result(tmp_path / "a.h5"), read_result(tmp_path / "n.h5")
    assert auto.metadata.parameters["backend"] == "numba"  # the backend that ran
    assert summary.timings["compile"] >= 0  # numba's own timing keys: the numba path ran
    np.testing.assert_array_equal(auto.g2, numba.g2)


def test_auto_backend_takes_torch_where_a_gpu_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = require_torch()
    from xpcs_kernel.torch_backend.device import choose_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert choose_backend("auto") == "torch"
    assert choose_backend("cuda:1") == "torch"
    assert choose_backend("cpu") == "numba"  # a CPU device asked for: numba does it


def test_auto_backend_without_torch_installed_is_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from xpcs_kernel.torch_backend.device import choose_backend

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert choose_backend("auto") == "numba"
