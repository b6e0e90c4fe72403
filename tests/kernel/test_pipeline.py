"""The whole correlation run on files: formats agree, bad input is named,
results appear atomically, the CLI and ``python -m xpcs_kernel`` work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from flows.cli import main as cli_main
from xpcs_kernel.errors import CorrelationError, FrameFormatError, QMapError, UsageError
from xpcs_kernel.io import write_hdf5_frames, write_imm, write_rigaku
from xpcs_kernel.multitau import sink as multitau_sink
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.qmap import QMap, qmap_from_geometry, write_qmap
from xpcs_kernel.result import read_result
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small speckle dataset written in every raw format, and its q-map."""
    tmp = tmp_path_factory.mktemp("pipeline")
    spec = SyntheticSpec(
        n_frames=300,
        shape=(32, 40),
        beta=0.25,
        mean_count=0.8,
        n_dynamic_q=3,
        n_static_q=9,
        tau_c_range=(2.0, 20.0),
        frame_time=1e-3,
        seed=3,
        dtype="uint16",
    )
    truth, frames = synthesize(spec)
    qmap_path = tmp / "qmap.h5"
    write_qmap(qmap_path, truth.qmap)
    paths = {
        "hdf5": tmp / "raw.h5",
        "lz4": tmp / "raw_lz4.h5",
        "imm_dense": tmp / "raw_dense.imm",
        "imm_sparse": tmp / "raw_sparse.imm",
        "rigaku": tmp / "raw.bin",
    }
    write_hdf5_frames(paths["hdf5"], frames)
    write_hdf5_frames(paths["lz4"], frames, compression="lz4")
    write_imm(paths["imm_dense"], frames, sparse=False)
    write_imm(paths["imm_sparse"], frames, sparse=True)
    write_rigaku(paths["rigaku"], frames)
    return {
        "tmp": tmp,
        "frames": frames,
        "qmap": qmap_path,
        "truth": truth,
        "paths": paths,
        "spec": spec,
    }


def _run(dataset: dict[str, Any], raw: Path, out: Path, **options: Any) -> Any:
    kwargs: dict[str, Any] = {"frame_time": 1e-3, "fit": False}
    kwargs.update(options)
    return correlate_file(raw, dataset["qmap"], out, options=CorrelationOptions(**kwargs))


def test_every_raw_format_gives_identical_g2(dataset: dict[str, Any], tmp_path: Path) -> None:
    results = {}
    for name, raw in dataset["paths"].items():
        summary = _run(dataset, raw, tmp_path / f"{name}.h5", path="auto")
        results[name] = read_result(summary.output)
    reference = results["hdf5"]
    for name, result in results.items():
        np.testing.assert_allclose(
            result.g2, reference.g2, rtol=1e-6, err_msg=f"{name} differs from plain HDF5"
        )
        np.testing.assert_array_equal(result.delays, reference.delays)


def test_dense_and_sparse_paths_agree(dataset: dict[str, Any], tmp_path: Path) -> None:
    raw = dataset["paths"]["rigaku"]
    dense = read_result(_run(dataset, raw, tmp_path / "d.h5", path="dense").output)
    sparse = read_result(_run(dataset, raw, tmp_path / "s.h5", path="sparse").output)
    np.testing.assert_allclose(sparse.g2, dense.g2, rtol=1e-6)
    np.testing.assert_allclose(sparse.g2_err, dense.g2_err, rtol=1e-5, atol=1e-9)


def test_streamed_and_in_memory_multitau_agree(
    dataset: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack that fits is correlated in memory; a bigger one streams: same g2."""
    modes: list[bool] = []
    real_g2 = multitau_sink.MultiTauSink.g2

    def spy(self: multitau_sink.MultiTauSink, bins: Any) -> Any:
        if self._n_frames == len(dataset["frames"]):  # not the kernels' warm-up sink
            modes.append(self.in_memory)
        return real_g2(self, bins)

    monkeypatch.setattr(multitau_sink.MultiTauSink, "g2", spy)
    raw = dataset["paths"]["lz4"]
    gathered = read_result(_run(dataset, raw, tmp_path / "m.h5", chunk_frames=64).output)
    monkeypatch.setattr(multitau_sink, "IN_MEMORY_BYTES", 0)
    streamed = read_result(_run(dataset, raw, tmp_path / "s.h5", chunk_frames=64).output)
    assert modes == [True, False]
    np.testing.assert_allclose(gathered.g2, streamed.g2, rtol=1e-12)
    np.testing.assert_allclose(gathered.g2_err, streamed.g2_err, rtol=1e-9, atol=1e-15)


def test_auto_path_follows_event_occupancy(dataset: dict[str, Any], tmp_path: Path) -> None:
    """Event files stay events when sparse (below EVENTS_CROSSOVER), else are densified."""
    rng = np.random.default_rng(12)
    sparse_frames = rng.poisson(0.02, size=(120, 32, 40)).astype(np.uint16)
    raw = tmp_path / "sparse.bin"
    write_rigaku(raw, sparse_frames)
    assert _run(dataset, raw, tmp_path / "a.h5", path="auto").path == "sparse"
    assert (
        _run(dataset, dataset["paths"]["rigaku"], tmp_path / "b.h5", path="auto").path == "dense"
    )
    assert _run(dataset, dataset["paths"]["lz4"], tmp_path / "c.h5", path="auto").path == "dense"


def test_summary_reports_sizes_and_fits(dataset: dict[str, Any], tmp_path: Path) -> None:
    summary = _run(dataset, dataset["paths"]["lz4"], tmp_path / "r.h5", fit=True)
    qmap: QMap = dataset["truth"].qmap
    assert summary.n_frames == 300
    assert summary.n_dynamic == qmap.n_dynamic == 3
    assert summary.n_pixels == qmap.pixel_index.size
    assert len(summary.fit) == 3
    assert all(row["success"] for row in summary.fit)
    assert summary.correlation_rate > 0
    doc = summary.to_dict()
    assert json.loads(json.dumps(doc))["n_frames"] == 300
    assert len(json.dumps(doc)) < 20_000  # stays small for a flow's run state


def test_selection_changes_frame_count(dataset: dict[str, Any], tmp_path: Path) -> None:
    summary = _run(
        dataset, dataset["paths"]["hdf5"], tmp_path / "r.h5", begin=10, end=250, stride=2, avg=3
    )
    assert summary.n_frames == len(range(10, 250, 2)) // 3
    result = read_result(summary.output)
    assert result.n_frames == summary.n_frames


def test_both_modes_write_twotime(dataset: dict[str, Any], tmp_path: Path) -> None:
    summary = _run(
        dataset, dataset["paths"]["hdf5"], tmp_path / "r.h5", mode="both", twotime_bins=(0, 2)
    )
    with h5py.File(summary.output, "r") as handle:
        assert "xpcs/multitau/normalized_g2" in handle
        assert "xpcs/twotime" in handle


def test_wrong_qmap_shape_names_both_files(dataset: dict[str, Any], tmp_path: Path) -> None:
    other = qmap_from_geometry(
        (16, 16),
        beam_center=(8.0, 8.0),
        detector_distance=5.0,
        pixel_size=75e-6,
        energy=10.0,
        n_dynamic_q=2,
        n_static_q=4,
    )
    bad = tmp_path / "small_qmap.h5"
    write_qmap(bad, other)
    out = tmp_path / "r.h5"
    with pytest.raises(QMapError) as info:
        correlate_file(
            dataset["paths"]["hdf5"], bad, out, options=CorrelationOptions(frame_time=1e-3)
        )
    assert "small_qmap.h5" in str(info.value)
    assert "raw.h5" in str(info.value)
    assert not out.exists()


def test_too_few_frames_is_a_correlation_error(dataset: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    with pytest.raises(CorrelationError, match="at least 2"):
        _run(dataset, dataset["paths"]["hdf5"], out, begin=0, end=1)
    assert not out.exists()


def test_missing_frame_time_is_named(dataset: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(FrameFormatError, match="frame-time"):
        correlate_file(dataset["paths"]["imm_dense"], dataset["qmap"], tmp_path / "r.h5")


@pytest.mark.parametrize("bad", ["nan", "negative"])
def test_bad_values_name_file_and_frame(dataset: dict[str, Any], tmp_path: Path, bad: str) -> None:
    frames = dataset["frames"][:40].astype(np.float32)
    frames[17, 3, 4] = np.nan if bad == "nan" else -1.0
    raw = tmp_path / "bad.h5"
    write_hdf5_frames(raw, frames)
    out = tmp_path / "r.h5"
    with pytest.raises(FrameFormatError) as info:
        _run(dataset, raw, out)
    assert info.value.path is not None
    assert info.value.path.endswith("bad.h5")
    assert "17" in str(info.value)
    assert not out.exists()


def test_saturated_values_fail_unless_allowed(dataset: dict[str, Any], tmp_path: Path) -> None:
    frames = dataset["frames"][:40].copy()
    frames[5, 1, 1] = np.iinfo(frames.dtype).max
    raw = tmp_path / "sat.h5"
    write_hdf5_frames(raw, frames)
    with pytest.raises(FrameFormatError, match="saturat"):
        _run(dataset, raw, tmp_path / "r.h5")
    summary = _run(dataset, raw, tmp_path / "r2.h5", allow_saturated=True)
    assert Path(summary.output).exists()


def test_failed_run_leaves_nothing_under_final_name(
    dataset: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xpcs_kernel.pipeline.fit as pipeline_fit

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("fit crashed")

    monkeypatch.setattr(pipeline_fit, "fit_g2", explode)
    out = tmp_path / "r.h5"
    with pytest.raises(RuntimeError, match="fit crashed"):
        _run(dataset, dataset["paths"]["hdf5"], out, fit=True)
    assert list(tmp_path.iterdir()) == []


def test_options_are_validated_by_name() -> None:
    with pytest.raises(UsageError, match="stride"):
        CorrelationOptions(stride=0)
    with pytest.raises(UsageError, match="mode"):
        CorrelationOptions(mode="fast")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="nonsense"):
        CorrelationOptions.from_dict({"nonsense": 1})
    opts = CorrelationOptions(twotime_bins=(1, 2), mode="both")
    assert CorrelationOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts


def test_cli_correlate_json(
    dataset: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.h5"
    code = cli_main(
        [
            "correlate",
            str(dataset["paths"]["lz4"]),
            "--qmap",
            str(dataset["qmap"]),
            "-o",
            str(out),
            "--frame-time",
            "0.001",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["output"] == str(out)
    assert doc["n_frames"] == 300
    assert len(doc["fit"]) == 3


def test_cli_synth_then_correlate_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw, qmap, out = tmp_path / "s.h5", tmp_path / "q.h5", tmp_path / "r.h5"
    assert (
        cli_main(
            [
                "synth",
                str(raw),
                "--qmap",
                str(qmap),
                "--frames",
                "200",
                "--shape",
                "24",
                "24",
                "--dynamic-bins",
                "2",
                "--static-bins",
                "4",
            ]
        )
        == 0
    )
    assert cli_main(["correlate", str(raw), "--qmap", str(qmap), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frames      200 x 24x24" in text
    assert "pixel-frames/s" in text
    assert out.exists()


def test_cli_reports_bad_input_with_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "junk.h5"
    raw.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # HDF5 signature, then garbage
    qmap = tmp_path / "q.h5"
    write_qmap(
        qmap,
        qmap_from_geometry(
            (8, 8),
            beam_center=(4.0, 4.0),
            detector_distance=5.0,
            pixel_size=75e-6,
            energy=10.0,
            n_dynamic_q=1,
            n_static_q=2,
        ),
    )
    code = cli_main(
        [
            "correlate",
            str(raw),
            "--qmap",
            str(qmap),
            "-o",
            str(tmp_path / "o.h5"),
            "--frame-time",
            "1",
        ]
    )
    assert code == 1  # a bad input file is a failed run, not a usage error
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "junk.h5" in err


def test_python_dash_m_kernel(dataset: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "m.h5"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "xpcs_kernel",
            "correlate",
            str(dataset["paths"]["hdf5"]),
            "--qmap",
            str(dataset["qmap"]),
            "-o",
            str(out),
            "--frame-time",
            "0.001",
            "--json",
            "--no-fit",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == str(out)
    assert out.exists()
