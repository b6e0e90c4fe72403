"""Tests of the APS result file writer, reader and verifier."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import ResultFileError, UsageError
from xpcs_kernel.result import writer as result_module
from xpcs_kernel.result.writer import (
    REQUIRED_COMMON_KEYS,
    REQUIRED_MULTITAU_KEYS,
    REQUIRED_TWOTIME_KEYS,
    ResultMetadata,
    read_result,
    verify_result,
    write_result,
)
from xpcs_kernel.twotime.correlator import TwoTimeResult, twotime

H, W = 6, 8
N_FRAMES = 12
N_TAU = 5
QMAP_HASH = "0123456789abcdef" * 4


@dataclass
class FakeQMap:
    """A 6 x 8 q-map: 4 static bins (column pairs), 2 dynamic bins (halves)."""

    shape: tuple[int, int] = (H, W)
    n_static: int = 4
    n_dynamic: int = 2

    def to_datasets(self) -> tuple[dict[str, NDArray[Any] | str | float], dict[str, str]]:
        cols = np.arange(W)
        static = np.tile(cols // 2 + 1, (H, 1)).astype(np.uint32)
        static[0, 0] = 0  # one masked pixel
        dynamic = np.where(static > 0, (static - 1) // 2 + 1, 0).astype(np.uint32)
        out: dict[str, NDArray[Any] | str | float] = {
            "dynamic_roi_map": dynamic,
            "static_roi_map": static,
            "mask": (static > 0).astype(np.uint8),
            "beam_center_x": 3.5,
            "beam_center_y": -10.0,
            "pixel_size": 7.5e-5,
            "detector_distance": 5.0,
            "energy": 10.0,
            "map_names": np.array([b"q", b"phi"]),
            "map_units": np.array([b"1/A", b"deg"]),
            "dynamic_num_pts": np.array([2, 1]),
            "dynamic_v_list_dim0": np.array([0.001, 0.002]),
            "dynamic_v_list_dim1": np.array([0.0]),
            "dynamic_index_mapping": np.array([0, 1]),
            "static_num_pts": np.array([4, 1]),
            "static_v_list_dim0": np.array([0.001, 0.0015, 0.002, 0.0025]),
            "static_v_list_dim1": np.array([0.0]),
            "static_index_mapping": np.array([0, 1, 2, 3]),
        }
        return out, {"hash": QMAP_HASH, "version": "test"}


@dataclass
class FakeSaxs:
    saxs_2d: NDArray[np.float64]
    saxs_1d: NDArray[np.float64]
    saxs_1d_segments: NDArray[np.float64]
    intensity_vs_time: NDArray[np.float64]


@dataclass
class FakeG2:
    delays: NDArray[np.int64]
    g2: NDArray[np.float64]
    g2_err: NDArray[np.float64]
    G2_static: NDArray[np.float64]
    IP_static: NDArray[np.float64]
    IF_static: NDArray[np.float64]
    pair_counts: NDArray[np.int64]
    n_frames: int = N_FRAMES


@dataclass
class Inputs:
    qmap: FakeQMap
    saxs: FakeSaxs
    g2: FakeG2
    two: TwoTimeResult
    meta: ResultMetadata
    fit: dict[str, NDArray[Any]] = field(default_factory=dict)


@pytest.fixture
def inputs() -> Inputs:
    rng = np.random.default_rng(0)
    frames = rng.poisson(3.0, size=(N_FRAMES, H, W)).astype(np.float64)
    frames[4, :, 4:] = 0  # an empty frame in dynamic bin 1: NaN row in its c2
    pix = np.arange(H * W)
    two = twotime(frames, pixel_index=pix, dynamic_index=(pix % W) // 4, n_dynamic=2, n_segments=3)
    saxs = FakeSaxs(
        saxs_2d=frames.mean(axis=0),
        saxs_1d=rng.random(4),
        saxs_1d_segments=rng.random((3, 4)),
        intensity_vs_time=np.stack([np.arange(N_FRAMES), frames.mean(axis=(1, 2))]),
    )
    g2 = FakeG2(
        delays=np.array([1, 2, 3, 4, 5], dtype=np.int64),
        g2=1 + rng.random((N_TAU, 2)),
        g2_err=rng.random((N_TAU, 2)) * 0.01,
        G2_static=rng.random((N_TAU, 4)),
        IP_static=rng.random((N_TAU, 4)),
        IF_static=rng.random((N_TAU, 4)),
        pair_counts=np.array([11, 10, 9, 8, 7], dtype=np.int64),
    )
    meta = ResultMetadata(
        frame_time=0.001,
        count_time=0.0009,
        incident_energy_kev=10.9,
        start_time="2026-01-02T03:04:05+00:00",
        begin=0,
        end=N_FRAMES,
        stride=1,
        avg=1,
        normalize_frame=True,
        input_files=(("/data/raw.h5", "ab" * 32, 12345), ("/data/qmap.h5", "cd" * 32, 99)),
        software_version="1.2.3",
        parameters={"mode": "both", "bins": [0, 1], "n_segments": np.int64(3)},
        timings={"read": 1.5, "correlate": 2.25},
    )
    fit = {"tau": np.array([0.1, 0.2]), "contrast": np.array([0.3, 0.25])}
    return Inputs(FakeQMap(), saxs, g2, two, meta, fit)


def _write(path: Path, inp: Inputs, **kw: Any) -> Path:
    args: dict[str, Any] = {"multitau": inp.g2, "twotime": inp.two, "fit": inp.fit}
    args.update(kw)
    return write_result(path, qmap=inp.qmap, saxs=inp.saxs, metadata=inp.meta, **args)


def test_written_file_has_every_key_shape_and_dtype(tmp_path: Path, inputs: Inputs) -> None:
    out = _write(tmp_path / "r.hdf", inputs)
    assert out == tmp_path / "r.hdf"
    keys = verify_result(out)
    for key in (*REQUIRED_COMMON_KEYS, *REQUIRED_MULTITAU_KEYS, *REQUIRED_TWOTIME_KEYS):
        assert key.startswith("/")
        assert key in keys or key == "/xpcs/twotime/correlation_map"
    with h5py.File(out, "r") as f:
        assert f["/xpcs/multitau/delay_list"].dtype == np.int64
        assert f["/xpcs/multitau/normalized_g2"].dtype == np.float32
        assert f["/xpcs/multitau/normalized_g2"].shape == (N_TAU, 2)
        assert f["/xpcs/multitau/normalized_g2_err"].shape == (N_TAU, 2)
        assert f["/xpcs/multitau/config/stride_frame"][()] == 1
        assert f["/xpcs/multitau/config/avg_frame"][()] == 1
        assert f["/xpcs/temporal_mean/scattering_2d"].shape == (1, H, W)
        assert f["/xpcs/temporal_mean/scattering_1d"].shape == (1, 4)
        assert f["/xpcs/temporal_mean/scattering_1d_segments"].shape == (3, 4)
        assert f["/xpcs/spatial_mean/intensity_vs_time"].shape == (2, N_FRAMES)
        assert f["/xpcs/qmap"].attrs["hash"] == QMAP_HASH
        assert [x.decode() for x in f["/xpcs/qmap/map_names"][()]] == ["q", "phi"]
        assert f["/entry/start_time"].asstr()[()] == "2026-01-02T03:04:05+00:00"
        assert f["/entry/instrument/detector_1/frame_time"][()] == 0.001
        assert f["/entry/instrument/detector_1/frame_time"].attrs["units"] == "s"
        assert f["/entry/instrument/incident_beam/incident_energy"][()] == 10.9
        # two-time: 1-based bins, c2 upper triangle, viewer axis conventions
        np.testing.assert_array_equal(f["/xpcs/twotime/processed_bins"][()], [1, 2])
        assert sorted(f["/xpcs/twotime/correlation_map"]) == ["c2_00001", "c2_00002"]
        g2 = f["/xpcs/twotime/normalized_g2"]
        assert (g2.shape, g2.dtype) == ((N_FRAMES, 2), np.float32)
        assert f["/xpcs/twotime/normalized_g2_segments"].shape == (4, 3, 2)
        np.testing.assert_array_equal(f["/xpcs/twotime/delay_list"][()], np.arange(N_FRAMES))
        for k, name in enumerate(("c2_00001", "c2_00002")):
            half = f["/xpcs/twotime/correlation_map"][name][()]
            assert (half.shape, half.dtype) == ((N_FRAMES, N_FRAMES), np.float32)
            assert not np.tril(half, -1).any()
            # the viewer's reconstruction gives back the full map
            full = half + half.T
            full[np.diag_indices(N_FRAMES)] /= 2
            np.testing.assert_array_equal(full, inputs.two.c2[k])
        # viewer: swapaxes(g2_segments, 0, 2) gives (bins, segments, delays)
        seg = np.swapaxes(f["/xpcs/twotime/normalized_g2_segments"][()], 0, 2)
        np.testing.assert_allclose(seg[1, 2], inputs.two.g2_segments[2, :, 1], rtol=1e-6)


def test_read_result_round_trips(tmp_path: Path, inputs: Inputs) -> None:
    res = read_result(_write(tmp_path / "r.hdf", inputs), load_c2=True)
    assert res.analysis == ("multitau", "twotime")
    assert res.metadata == inputs.meta
    np.testing.assert_allclose(res.saxs_2d, inputs.saxs.saxs_2d, rtol=1e-6)
    np.testing.assert_allclose(res.saxs_1d, inputs.saxs.saxs_1d, rtol=1e-6)
    np.testing.assert_allclose(res.saxs_1d_segments, inputs.saxs.saxs_1d_segments, rtol=1e-6)
    np.testing.assert_array_equal(res.intensity_vs_time, inputs.saxs.intensity_vs_time)
    np.testing.assert_array_equal(res.delay_list, inputs.g2.delays)
    assert res.g2 is not None
    assert res.g2_err is not None
    assert res.twotime_g2 is not None
    assert res.twotime_g2_segments is not None
    np.testing.assert_allclose(res.g2, inputs.g2.g2, rtol=1e-6)
    np.testing.assert_allclose(res.g2_err, inputs.g2.g2_err, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(res.G2_static), inputs.g2.G2_static)
    np.testing.assert_array_equal(np.asarray(res.pair_counts), inputs.g2.pair_counts)
    np.testing.assert_array_equal(np.asarray(res.twotime_bins), inputs.two.bins)
    np.testing.assert_allclose(res.twotime_g2, inputs.two.g2, rtol=1e-6)
    np.testing.assert_allclose(res.twotime_g2_segments, inputs.two.g2_segments, rtol=1e-6)
    assert res.twotime_c2 is not None
    for got, want in zip(res.twotime_c2, inputs.two.c2, strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.isnan(res.load_c2(1)[4]).all()
    np.testing.assert_array_equal(res.load_c2(0), inputs.two.c2[0])
    with pytest.raises(UsageError):
        res.load_c2(5)
    assert res.qmap_attrs["hash"] == QMAP_HASH
    np.testing.assert_array_equal(
        res.qmap["static_roi_map"], inputs.qmap.to_datasets()[0]["static_roi_map"]
    )
    assert set(res.fit) == {"tau", "contrast"}
    np.testing.assert_array_equal(res.fit["tau"], [0.1, 0.2])


@pytest.mark.parametrize("which", ["multitau", "twotime"])
def test_single_analysis_files(tmp_path: Path, inputs: Inputs, which: str) -> None:
    other = "twotime" if which == "multitau" else "multitau"
    out = _write(tmp_path / "r.hdf", inputs, **{other: None}, fit=None)
    res = read_result(out)
    assert res.analysis == (which,)
    if which == "multitau":
        assert res.twotime_bins is None
        assert res.g2 is not None
    else:
        assert res.g2 is None
        assert res.delay_list is None
        assert res.metadata == inputs.meta
    assert res.fit == {}


def test_provenance_is_stored(tmp_path: Path, inputs: Inputs) -> None:
    out = _write(tmp_path / "r.hdf", inputs)
    with h5py.File(out, "r") as f:
        prov = f["/xpcs/provenance"]
        assert prov["software_name"].asstr()[()] == "xpcs-flows"
        assert prov["software_version"].asstr()[()] == "1.2.3"
        params = json.loads(prov["parameters"].asstr()[()])
        assert params == {"mode": "both", "bins": [0, 1], "n_segments": 3}
        assert list(prov["input_files/path"].asstr()[()]) == ["/data/raw.h5", "/data/qmap.h5"]
        assert list(prov["input_files/sha256"].asstr()[()]) == ["ab" * 32, "cd" * 32]
        np.testing.assert_array_equal(prov["input_files/size"][()], [12345, 99])
        assert prov["timings/read"][()] == 1.5
        assert prov["timings/correlate"].attrs["units"] == "s"
        assert f["/xpcs/twotime/config/normalize_frame"][()]
        assert f["/xpcs/twotime/config/end_frame"][()] == N_FRAMES
        assert f["/xpcs/twotime/config/smoothing"].asstr()[()] == "pixel"
        assert f["/xpcs/twotime/config/n_segments"][()] == 3
        assert f["/xpcs/multitau/config/n_frames"][()] == N_FRAMES


def test_nothing_from_the_environment_is_stored(
    tmp_path: Path, inputs: Inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "tok" + secrets.token_hex(16)
    monkeypatch.setenv("GLOBUS_SDK_CLIENT_SECRET", token)
    monkeypatch.setenv("XPCS_TEST_SECRET", token)
    out = _write(tmp_path / "r.hdf", inputs)
    raw = out.read_bytes()
    assert token.encode() not in raw
    assert os.environ["HOME"].encode() not in raw
    texts: list[str] = []

    def collect(name: str, obj: Any) -> None:
        texts.extend(str(v) for v in obj.attrs.values())
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "OS":
            texts.append(str(obj[()]))

    with h5py.File(out, "r") as f:
        f.visititems(collect)
    assert texts
    assert not any(token in t for t in texts)


def test_crash_mid_write_leaves_nothing(
    tmp_path: Path, inputs: Inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = h5py.Group.create_dataset

    def failing(self: h5py.Group, name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("c2_00002"):
            raise OSError("disk full (simulated)")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="simulated"):
        _write(tmp_path / "r.hdf", inputs)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_replaced_atomically(
    tmp_path: Path, inputs: Inputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r.hdf"
    _write(target, inputs, twotime=None)
    old = target.read_bytes()
    seen: list[tuple[bytes, list[str]]] = []
    real = result_module._write_provenance

    def spy(f: h5py.File, meta: ResultMetadata) -> None:
        # mid-write: the old file is intact and the new one is a hidden temporary
        seen.append((target.read_bytes(), sorted(p.name for p in tmp_path.iterdir())))
        real(f, meta)

    monkeypatch.setattr(result_module, "_write_provenance", spy)
    _write(target, inputs, multitau=None)
    (during, names) = seen[0]
    assert during == old
    assert len(names) == 2
    assert names[0].startswith(".r.hdf.partial-")
    assert names[1] == "r.hdf"
    assert read_result(target).analysis == ("twotime",)
    assert [p.name for p in tmp_path.iterdir()] == ["r.hdf"]

    # a failed rewrite keeps the previous file untouched
    monkeypatch.setattr(result_module, "_write_provenance", _raise)
    current = target.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        _write(target, inputs)
    assert target.read_bytes() == current
    assert [p.name for p in tmp_path.iterdir()] == ["r.hdf"]


def _raise(*args: Any) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "key",
    [
        "/xpcs/multitau/normalized_g2_err",
        "/xpcs/multitau/config/avg_frame",
        "/xpcs/twotime/correlation_map/c2_00002",
        "/xpcs/twotime/normalized_g2_segments",
        "/xpcs/qmap/static_index_mapping",
        "/xpcs/temporal_mean/scattering_1d",
        "/entry/instrument/detector_1/frame_time",
        "/xpcs/provenance/parameters",
        "/xpcs/multitau/config/begin_frame",
        "/xpcs/provenance/timings",
    ],
)
def test_missing_key_is_named(tmp_path: Path, inputs: Inputs, key: str) -> None:
    out = _write(tmp_path / "r.hdf", inputs)
    with h5py.File(out, "a") as f:
        del f[key]
    with pytest.raises(ResultFileError) as info:
        read_result(out)
    assert info.value.key == key
    assert info.value.path == str(out)
    assert key in str(info.value)
    assert str(out) in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("/xpcs/multitau/normalized_g2", np.zeros((N_TAU, 3), np.float32), "(5, 2)"),
        ("/xpcs/multitau/delay_list", np.arange(N_TAU, dtype=np.float64), "integer"),
        ("/xpcs/temporal_mean/scattering_2d", np.zeros((1, H, W + 1), np.float32), "(1, 6, 8)"),
        ("/xpcs/temporal_mean/scattering_1d", np.zeros((1, 3), np.float32), "multiple of 4"),
        ("/xpcs/twotime/correlation_map/c2_00001", np.zeros((3, 3), np.float32), "(12, 12)"),
        ("/xpcs/twotime/processed_bins", np.array([1, 7]), "[1, 2]"),
        ("/entry/instrument/detector_1/count_time", np.float64(0.0), "> 0"),
        ("/xpcs/twotime/config/stride_frame", np.int64(0), "> 0"),
    ],
)
def test_bad_shape_or_dtype_is_named(
    tmp_path: Path, inputs: Inputs, key: str, value: Any, expected: str
) -> None:
    out = _write(tmp_path / "r.hdf", inputs)
    with h5py.File(out, "a") as f:
        del f[key]
        f[key] = value
    with pytest.raises(ResultFileError) as info:
        verify_result(out)
    assert info.value.key == key
    assert expected in str(info.value)


def test_invalid_stored_metadata_is_named(tmp_path: Path, inputs: Inputs) -> None:
    out = _write(tmp_path / "r.hdf", inputs)
    with h5py.File(out, "a") as f:
        del f["/entry/start_time"]
        f["/entry/start_time"] = "not a date"
    with pytest.raises(ResultFileError) as info:
        read_result(out)
    assert info.value.key == "/entry/start_time"
    with h5py.File(out, "a") as f:
        del f["/entry/start_time"]
        f["/entry/start_time"] = "2026-01-01T00:00:00"
        del f["/xpcs/provenance/parameters"]
        f["/xpcs/provenance/parameters"] = "{not json"
    with pytest.raises(ResultFileError) as info:
        read_result(out)
    assert info.value.key == "/xpcs/provenance/parameters"


def test_empty_provenance_round_trips(tmp_path: Path, inputs: Inputs) -> None:
    meta = replace(inputs.meta, input_files=(), parameters={}, timings={})
    out = write_result(
        tmp_path / "r.hdf", qmap=inputs.qmap, saxs=inputs.saxs, metadata=meta, twotime=inputs.two
    )
    assert read_result(out).metadata == meta


def test_strict_verification_needs_provenance(tmp_path: Path, inputs: Inputs) -> None:
    out = _write(tmp_path / "r.hdf", inputs)
    with h5py.File(out, "a") as f:
        del f["/xpcs/provenance"]
    keys = verify_result(out, strict=False)
    assert "/xpcs/multitau/normalized_g2" in keys
    with pytest.raises(ResultFileError, match="software_name"):
        verify_result(out)


def test_not_a_result_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hdf"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ResultFileError) as info:
        read_result(bad)
    assert info.value.path == str(bad)
    empty = tmp_path / "empty.hdf"
    with h5py.File(empty, "w") as f:
        f["/entry/start_time"] = "2026-01-01"
    with pytest.raises(ResultFileError, match="no correlation results"):
        verify_result(empty)


def test_write_usage_errors(tmp_path: Path, inputs: Inputs) -> None:
    with pytest.raises(UsageError) as info:
        _write(tmp_path / "r.hdf", inputs, multitau=None, twotime=None)
    assert info.value.argument == "multitau"
    with pytest.raises(UsageError) as info:
        _write(tmp_path / "missing" / "r.hdf", inputs)
    assert info.value.argument == "path"
    bad_saxs = replace(inputs.saxs, saxs_1d=np.zeros(3))
    with pytest.raises(UsageError) as info:
        write_result(
            tmp_path / "r.hdf",
            qmap=inputs.qmap,
            saxs=bad_saxs,
            metadata=inputs.meta,
            multitau=inputs.g2,
        )
    assert info.value.argument == "saxs.saxs_1d"
    bad_g2 = replace(inputs.g2, g2=np.ones((N_TAU, 3)))
    with pytest.raises(UsageError) as info:
        _write(tmp_path / "r.hdf", inputs, multitau=bad_g2)
    assert info.value.argument == "multitau.g2"
    with pytest.raises(UsageError) as info:
        _write(tmp_path / "r.hdf", inputs, fit={"a/b": np.zeros(2)})
    assert info.value.argument == "fit"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"start_time": "yesterday"}, "start_time"),
        ({"frame_time": 0.0}, "frame_time"),
        ({"incident_energy_kev": float("nan")}, "incident_energy_kev"),
        ({"end": 0}, "end"),
        ({"stride": 0}, "stride"),
        ({"input_files": (("/x", "nothex", 1),)}, "input_files"),
        ({"input_files": (("/x", "ab" * 32, -1),)}, "input_files"),
        ({"parameters": {"f": object()}}, "parameters"),
        ({"timings": {"a/b": 1.0}}, "timings"),
    ],
)
def test_metadata_validation(inputs: Inputs, change: dict[str, Any], argument: str) -> None:
    with pytest.raises(UsageError) as info:
        replace(inputs.meta, **change)
    assert info.value.argument == argument


# Paths pyXpcsViewer reads when it opens a multi-tau + two-time file (its
# "nexus" key map: QMap.load_dataset, XpcsFile.load_data, twotime_utils).
VIEWER_KEYS = (
    "/xpcs/qmap/mask",
    "/xpcs/qmap/dynamic_roi_map",
    "/xpcs/qmap/static_roi_map",
    "/xpcs/qmap/dynamic_v_list_dim0",
    "/xpcs/qmap/static_v_list_dim0",
    "/xpcs/qmap/dynamic_v_list_dim1",
    "/xpcs/qmap/static_v_list_dim1",
    "/xpcs/qmap/beam_center_y",
    "/xpcs/qmap/beam_center_x",
    "/xpcs/qmap/detector_distance",
    "/xpcs/qmap/pixel_size",
    "/xpcs/qmap/static_index_mapping",
    "/xpcs/qmap/dynamic_index_mapping",
    "/xpcs/qmap/static_num_pts",
    "/xpcs/qmap/dynamic_num_pts",
    "/xpcs/qmap/map_names",
    "/xpcs/qmap/map_units",
    "/entry/start_time",
    "/entry/instrument/detector_1/frame_time",
    "/entry/instrument/detector_1/count_time",
    "/entry/instrument/incident_beam/incident_energy",
    "/xpcs/spatial_mean/intensity_vs_time",
    "/xpcs/multitau/delay_list",
    "/xpcs/multitau/normalized_g2",
    "/xpcs/multitau/normalized_g2_err",
    "/xpcs/multitau/config/stride_frame",
    "/xpcs/multitau/config/avg_frame",
    "/xpcs/temporal_mean/scattering_2d",
    "/xpcs/temporal_mean/scattering_1d",
    "/xpcs/temporal_mean/scattering_1d_segments",
    "/xpcs/twotime/normalized_g2_segments",
    "/xpcs/twotime/normalized_g2",
    "/xpcs/twotime/processed_bins",
    "/xpcs/twotime/config/stride_frame",
    "/xpcs/twotime/config/avg_frame",
)


def test_viewer_can_load_the_file(tmp_path: Path, inputs: Inputs) -> None:
    required = {*REQUIRED_COMMON_KEYS, *REQUIRED_MULTITAU_KEYS, *REQUIRED_TWOTIME_KEYS}
    assert set(VIEWER_KEYS) <= required
    out = _write(tmp_path / "r.hdf", inputs)
    with h5py.File(out, "r") as f:
        for key in VIEWER_KEYS:
            assert key in f, key
        # what the viewer derives on opening
        assert "/xpcs/twotime/correlation_map" in f  # analysis type "Twotime"
        energy = f["/entry/instrument/incident_beam/incident_energy"][()]
        assert 2 * np.pi / (12.398 / energy) > 0
        saxs_1d = f["/xpcs/temporal_mean/scattering_1d"][()]
        assert saxs_1d.size % f["/xpcs/qmap/static_index_mapping"].size == 0
        qbin = int(f["/xpcs/twotime/processed_bins"][0])
        assert f["/xpcs/qmap/dynamic_index_mapping"][qbin - 1] >= 0
        t0 = f["/entry/instrument/detector_1/frame_time"][()]
        stride = f["/xpcs/multitau/config/stride_frame"][()]
        t_el = f["/xpcs/multitau/delay_list"][()] * t0 * stride
        assert t_el.shape == (N_TAU,)
        assert f["/xpcs/qmap"].attrs["hash"]
