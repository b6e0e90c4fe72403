"""q-maps: geometry, nesting, file layouts (pySimpleMask and legacy), bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from xpcs_kernel.errors import QMapError, UsageError
from xpcs_kernel.qmap.build import qmap_from_geometry
from xpcs_kernel.qmap.geometry import pixel_q_phi, wavelength
from xpcs_kernel.qmap.model import QMap, read_qmap, write_qmap

GEOMETRY: dict[str, Any] = {
    "beam_center": (30.0, 20.0),
    "detector_distance": 5.0,
    "pixel_size": 75e-6,
    "energy": 10.0,
}


def _qmap(**kw: Any) -> QMap:
    opts: dict[str, Any] = {
        "n_dynamic_q": 4,
        "n_static_q": 12,
        "n_dynamic_phi": 2,
        "n_static_phi": 4,
        **GEOMETRY,
    }
    opts.update(kw)
    return qmap_from_geometry((48, 64), **opts)


def _small(**kw: Any) -> QMap:
    """A hand-made 2x4 q-map: dynamic bins {1, 2}, static bins {1, 2} in 1 and {3} in 2."""
    fields: dict[str, Any] = {
        "dynamic_roi_map": np.array([[1, 1, 2, 2], [1, 1, 2, 0]], dtype=np.uint32),
        "static_roi_map": np.array([[1, 2, 3, 3], [1, 2, 3, 0]], dtype=np.uint32),
        "mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=bool),
        "dynamic_q": [0.01, 0.02],
        "dynamic_phi": [0.0, 0.0],
        "static_q": [0.005, 0.015, 0.02],
        "static_phi": [0.0, 0.0, 0.0],
        "beam_center_x": 0.0,
        "beam_center_y": 0.0,
        "pixel_size": 75e-6,
        "energy": 10.0,
        "detector_distance": 5.0,
    }
    fields.update(kw)
    return QMap(**fields)


def test_wavelength_and_pixel_q_match_the_formula() -> None:
    assert wavelength(12.398419843320026) == pytest.approx(1.0)
    q, phi = pixel_q_phi((48, 64), **GEOMETRY)
    lam = 12.398419843320026 / 10.0
    # pixel 10 columns right of the beam, same row
    two_theta = np.arctan(10 * 75e-6 / 5.0)
    assert q[20, 40] == pytest.approx(4 * np.pi * np.sin(two_theta / 2) / lam, rel=1e-12)
    assert q[20, 30] == 0.0
    assert phi[20, 40] == pytest.approx(0.0)
    assert phi[10, 30] == pytest.approx(90.0)  # rows grow downwards: above the beam is +90
    assert phi[20, 20] == pytest.approx(180.0)
    assert phi[30, 30] == pytest.approx(-90.0)


def test_geometry_bins_are_nested_and_cover_their_q_interval() -> None:
    qm = _qmap()
    assert qm.dynamic_num_pts == (4, 2)
    assert qm.static_num_pts == (12, 4)
    assert qm.n_dynamic == 8
    # the largest q (the far corner, below the beam) has no pixel with phi > 0: the two
    # upper cells of the last q ring are empty and compacted away
    assert qm.n_static == 46
    assert qm.static_index_mapping is not None
    assert set(range(48)) - set(qm.static_index_mapping.tolist()) == {46, 47}
    assert np.bincount(qm.static_index).min() >= 1
    q, _ = pixel_q_phi((48, 64), **GEOMETRY)
    width = (q.max() - q.min()) / 12
    sel = qm.pixel_index
    assert np.all(np.abs(q.reshape(-1)[sel] - qm.static_q[qm.static_index]) <= width / 2 + 1e-12)
    # every static bin lies inside the dynamic bin dynamic_of_static says
    dyn = qm.dynamic_roi_map.reshape(-1)[sel].astype(int) - 1
    np.testing.assert_array_equal(dyn, qm.dynamic_of_static[qm.static_index])
    # dynamic q centres are the centres of 3 static q bins
    assert qm.dynamic_q[0] == pytest.approx(q.min() + 1.5 * width)
    assert set(np.unique(qm.dynamic_phi)) == {-90.0, 90.0}
    # pixel_index is exactly the correlated pixels
    expected = np.flatnonzero((qm.static_roi_map > 0) & qm.mask)
    np.testing.assert_array_equal(qm.pixel_index, expected)
    assert qm.shape == (48, 64)


def test_q_range_and_mask_restrict_the_binned_pixels() -> None:
    q, _ = pixel_q_phi((48, 64), **GEOMETRY)
    mask = np.ones((48, 64), dtype=bool)
    mask[:, :5] = False
    lo, hi = 0.2 * q.max(), 0.6 * q.max()
    qm = _qmap(q_range=(lo, hi), mask=mask)
    inside = (q >= lo) & (q <= hi) & mask
    np.testing.assert_array_equal(qm.mask, inside)
    np.testing.assert_array_equal(qm.static_roi_map > 0, inside)


def test_hash_is_stable_and_sensitive() -> None:
    a, b = _qmap(), _qmap()
    assert a.hash == b.hash
    assert len(a.hash) == 64
    mask = np.ones((48, 64), dtype=bool)
    mask[0, 0] = False
    assert _qmap(mask=mask).hash != a.hash
    assert _qmap(energy=10.5).hash != a.hash


def test_pysimplemask_roundtrip(tmp_path: Path) -> None:
    qm = _qmap()
    path = tmp_path / "qmap.h5"
    write_qmap(path, qm)
    back = read_qmap(path)
    assert back.source == str(path)
    assert back.hash == qm.hash
    for key in ("dynamic_roi_map", "static_roi_map", "mask", "static_q", "dynamic_phi"):
        np.testing.assert_array_equal(getattr(back, key), getattr(qm, key))
    with h5py.File(path, "r") as f:
        g = f["qmap"]
        assert g.attrs["hash"] == qm.hash
        assert g["dynamic_num_pts"][()].tolist() == [4, 2]
        assert g["static_index_mapping"].shape == (46,)
        assert [v.decode() for v in g["map_names"][()]] == ["q", "phi"]
        assert g["beam_center_x"][()] == 30.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qmap.h5"]  # no temp file left


def test_to_datasets_has_the_pysimplemask_keys() -> None:
    datasets, attrs = _qmap().to_datasets()
    for part in ("dynamic", "static"):
        for suffix in ("roi_map", "num_pts", "v_list_dim0", "v_list_dim1", "index_mapping"):
            assert f"{part}_{suffix}" in datasets
    for key in ("mask", "beam_center_x", "beam_center_y", "pixel_size", "energy"):
        assert key in datasets
    assert set(attrs) == {"hash", "version"}


def test_read_compacts_bins_emptied_by_the_mask(tmp_path: Path) -> None:
    qm = _qmap()
    path = tmp_path / "qmap.h5"
    write_qmap(path, qm)
    with h5py.File(path, "r+") as f:
        mask = f["qmap/mask"][()]
        mask[qm.static_roi_map == 5] = 0  # empty static bin 5
        f["qmap/mask"][...] = mask
    back = read_qmap(path)
    assert back.n_static == qm.n_static - 1
    np.testing.assert_array_equal(back.static_q, np.delete(qm.static_q, 4))
    assert back.static_roi_map.max() == qm.n_static - 1


def _write_legacy(path: Path, qm: QMap, *, per_cell: bool) -> None:
    with h5py.File(path, "w") as f:
        dyn = qm.dynamic_roi_map.astype(np.int32)
        dyn[dyn == 0] = -1
        f["data/dynamicMap"] = dyn
        f["data/staticMap"] = qm.static_roi_map.astype(np.int32)
        f["data/mask"] = qm.mask.astype(np.uint8)
        f["data/x0"] = np.array([[qm.beam_center_x]])
        for prefix, part in (("d", "dynamic"), ("s", "static")):
            n0, n1 = getattr(qm, f"{part}_num_pts")
            f[f"data/{prefix}noq"] = np.array([[n0]])
            f[f"data/{prefix}nophi"] = np.array([[n1]])
            if per_cell:
                qv = np.full(n0 * n1, np.nan)
                pv = np.full(n0 * n1, np.nan)
                index = getattr(qm, f"{part}_index_mapping")
                qv[index] = getattr(qm, f"{part}_q")
                pv[index] = getattr(qm, f"{part}_phi")
            else:
                qv = getattr(qm, f"{part}_v_list_dim0")
                pv = getattr(qm, f"{part}_v_list_dim1")
            f[f"data/{prefix}qval"] = qv.reshape(1, -1)
            f[f"data/{prefix}phival"] = pv.reshape(1, -1)


def test_read_legacy_layout_with_per_cell_lists(tmp_path: Path) -> None:
    qm = _qmap()
    path = tmp_path / "legacy.h5"
    _write_legacy(path, qm, per_cell=True)
    back = read_qmap(path)
    np.testing.assert_array_equal(back.dynamic_roi_map, qm.dynamic_roi_map)
    np.testing.assert_array_equal(back.static_roi_map, qm.static_roi_map)
    np.testing.assert_allclose(back.static_q, qm.static_q)
    np.testing.assert_allclose(back.dynamic_phi, qm.dynamic_phi)
    assert back.beam_center_x == 30.0
    assert np.isnan(back.beam_center_y)


def test_read_legacy_layout_with_per_axis_lists(tmp_path: Path) -> None:
    qm = _qmap(n_dynamic_phi=1, n_static_phi=1)  # full grid: bin b is grid cell b - 1
    path = tmp_path / "legacy.h5"
    _write_legacy(path, qm, per_cell=False)
    back = read_qmap(path)
    np.testing.assert_allclose(back.dynamic_q, qm.dynamic_q)
    np.testing.assert_allclose(back.static_q, qm.static_q)


def test_legacy_layout_without_q_list(tmp_path: Path) -> None:
    path = tmp_path / "legacy.h5"
    _write_legacy(path, _qmap(), per_cell=True)
    with h5py.File(path, "r+") as f:
        del f["data/sqval"]
    with pytest.raises(QMapError, match="missing") as info:
        read_qmap(path)
    assert info.value.key == "/data/sqval"


def test_bin_numbers_beyond_the_described_bins(tmp_path: Path) -> None:
    path = tmp_path / "qmap.h5"
    write_qmap(path, _small())
    with h5py.File(path, "r+") as f:
        roi = f["qmap/static_roi_map"][()]
        roi[0, 0] = 9
        f["qmap/static_roi_map"][...] = roi
    with pytest.raises(QMapError, match="up to 9") as info:
        read_qmap(path)
    assert info.value.key == "/qmap/static_roi_map"


# ------------------------------------------------------------------ bad input
def test_frame_shape_mismatch_names_both_files(tmp_path: Path) -> None:
    path = tmp_path / "qmap.h5"
    write_qmap(path, _qmap())
    qm = read_qmap(path)
    qm.check_frame_shape((48, 64))
    with pytest.raises(QMapError) as info:
        qm.check_frame_shape((64, 48), frames_source="/data/raw.h5")
    assert str(path) in str(info.value)
    assert "/data/raw.h5" in str(info.value)
    assert info.value.path == str(path)
    assert "(48, 64)" in str(info.value.expected)


def test_static_bin_spanning_two_dynamic_bins(tmp_path: Path) -> None:
    dyn = np.array([[1, 2, 2, 2], [1, 1, 2, 0]], dtype=np.uint32)  # static bin 2 in 1 and 2
    with pytest.raises(QMapError, match=r"static bin 2 spans dynamic bins \[1, 2\]") as info:
        _small(dynamic_roi_map=dyn)
    assert info.value.key == "static_roi_map"
    # from a file: the error names it
    path = tmp_path / "bad.h5"
    write_qmap(path, _small())
    with h5py.File(path, "r+") as f:
        f["qmap/dynamic_roi_map"][...] = dyn
    with pytest.raises(QMapError, match="spans dynamic bins") as info:
        read_qmap(path)
    assert info.value.path == str(path)


def test_static_bin_outside_every_dynamic_bin() -> None:
    dyn = np.array([[1, 1, 2, 2], [1, 1, 0, 0]], dtype=np.uint32)
    with pytest.raises(QMapError, match=r"static bin 3 spans dynamic bins \[0, 2\]"):
        _small(dynamic_roi_map=dyn)


def test_all_masked_qmap(tmp_path: Path) -> None:
    path = tmp_path / "masked.h5"
    write_qmap(path, _qmap())
    with h5py.File(path, "r+") as f:
        f["qmap/mask"][...] = 0
    with pytest.raises(QMapError, match="masked") as info:
        read_qmap(path)
    assert info.value.path == str(path)
    assert info.value.key == "mask"


def test_missing_dynamic_roi_map_key(tmp_path: Path) -> None:
    path = tmp_path / "missing.h5"
    write_qmap(path, _qmap())
    with h5py.File(path, "r+") as f:
        del f["qmap/dynamic_roi_map"]
    with pytest.raises(QMapError, match="missing") as info:
        read_qmap(path)
    assert info.value.key == "/qmap/dynamic_roi_map"
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "qmap.h5"
    write_qmap(path, qmap_from_geometry((256, 256), n_dynamic_q=3, n_static_q=9, **GEOMETRY))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(QMapError) as info:
        read_qmap(path)
    assert info.value.path == str(path)
    assert info.value.key
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5\n")
    with pytest.raises(QMapError, match="not a readable HDF5 file") as info:
        read_qmap(text)
    assert info.value.key == "/"
    with pytest.raises(QMapError, match="no such file"):
        read_qmap(tmp_path / "absent.h5")
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(QMapError, match="not a q-map file") as info:
        read_qmap(empty)
    assert info.value.key == "/qmap/dynamic_roi_map"


def test_corrupt_dataset_names_its_key(tmp_path: Path) -> None:
    path = tmp_path / "qmap.h5"
    write_qmap(path, qmap_from_geometry((256, 256), n_dynamic_q=3, n_static_q=9, **GEOMETRY))
    with h5py.File(path, "r") as f:
        info = f["qmap/static_roi_map"].id.get_chunk_info(0)
        offset, size = info.byte_offset, info.size
    data = bytearray(path.read_bytes())
    data[offset : offset + size] = b"\xff" * size  # garbage in the LZF-compressed chunk
    path.write_bytes(bytes(data))
    with pytest.raises(QMapError, match="cannot read dataset") as err:
        read_qmap(path)
    assert err.value.key == "/qmap/static_roi_map"
    assert err.value.path == str(path)


def test_non_compact_or_inconsistent_bins_are_rejected() -> None:
    sta = np.array([[1, 3, 4, 4], [1, 3, 4, 0]], dtype=np.uint32)
    with pytest.raises(QMapError, match="up to 4"):
        _small(static_roi_map=sta)
    with pytest.raises(QMapError, match="static bin 2 has no valid pixel"):
        _small(static_q=[0.005, 0.015, 0.02, 0.03], static_phi=[0.0] * 4, static_roi_map=sta)
    with pytest.raises(QMapError, match="shape differs"):
        _small(mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(QMapError, match="non-negative integers"):
        _small(static_roi_map=np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(QMapError, match="disagrees"):
        _small(
            dynamic_num_pts=(2, 1),
            dynamic_v_list_dim0=np.array([0.01, 0.03]),
            dynamic_v_list_dim1=np.array([0.0]),
            dynamic_index_mapping=np.array([0, 1]),
        )


def test_small_qmap_properties() -> None:
    qm = _small()
    np.testing.assert_array_equal(qm.pixel_index, [0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(qm.static_index, [0, 1, 2, 2, 0, 1, 2])
    np.testing.assert_array_equal(qm.dynamic_of_static, [0, 0, 1])
    assert qm.dynamic_num_pts == (2, 1)  # derived from the distinct q and phi values
    np.testing.assert_array_equal(qm.dynamic_index_mapping, [0, 1])
    assert not qm.pixel_index.flags.writeable


def test_geometry_usage_errors() -> None:
    with pytest.raises(UsageError, match="multiple") as info:
        _qmap(n_static_q=10)
    assert info.value.argument == "n_static_q"
    with pytest.raises(UsageError) as info:
        _qmap(energy=-1.0)
    assert info.value.argument == "energy"
    with pytest.raises(UsageError) as info:
        _qmap(mask=np.zeros((48, 64), dtype=bool))
    assert info.value.argument == "mask"
