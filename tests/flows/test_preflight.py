"""Pre-launch checks: a q-map of another shape is refused before anything starts
(``launch()`` raises, ``xpcs-flows run`` exits 2 with one line), as the watcher does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from flows import cli as cli_module
from flows.launch import launch
from flows.launch.preflight import preflight
from tests.flows.test_launch_support import make_dataset
from xpcs_kernel.errors import InputDataError
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.synthetic import SyntheticSpec, write_synthetic


@pytest.fixture
def mismatched(tmp_path: Path) -> tuple[Path, Path]:
    """A 24 x 24 raw file and the q-map of a 16 x 16 detector."""
    raw, _ = make_dataset(tmp_path / "beamline")
    other = tmp_path / "other"
    other.mkdir()
    write_synthetic(
        other / "small_raw.h5", other / "small.h5", SyntheticSpec(n_frames=20, shape=(16, 16))
    )
    return raw, other / "small.h5"


def _runs_recorded(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return (
            conn.execute("SELECT COUNT(*) FROM launched_runs").fetchone()[0]
            if "launched_runs" in tables
            else 0
        )


def test_preflight_accepts_matching_files(tmp_path: Path) -> None:
    raw, qmap = make_dataset(tmp_path)
    report = preflight(raw, qmap, CorrelationOptions())
    assert report.frame_shape == (24, 24)


def test_launch_refuses_a_qmap_of_another_shape(
    tmp_path: Path, mismatched: tuple[Path, Path]
) -> None:
    raw, qmap = mismatched
    db = tmp_path / "state.db"
    with pytest.raises(InputDataError) as info:
        launch(raw, qmap, db_path=db, workdir=tmp_path / "work")
    message = str(info.value)
    assert str(raw) in message
    assert "(16, 16)" in message
    assert "(24, 24)" in message
    assert _runs_recorded(db) == 0
    assert not (tmp_path / "work").exists()  # nothing was staged


def test_run_command_refuses_a_qmap_of_another_shape_with_one_line(
    tmp_path: Path,
    mismatched: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw, qmap = mismatched
    db = tmp_path / "state.db"
    code = cli_module.main(
        ["run", str(raw), "--qmap", str(qmap), "--db", str(db), "--workdir", str(tmp_path / "w")]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "started run" not in out
    assert len(err.strip().splitlines()) == 1
    assert "frame shape differs from the q-map's" in err
    assert "expected (16, 16)" in err
    assert _runs_recorded(db) == 0


def test_preflight_reads_the_frames_from_the_dataset_option(tmp_path: Path) -> None:
    raw, qmap = make_dataset(tmp_path)
    with pytest.raises(InputDataError, match="no/such/frames"):
        preflight(raw, qmap, CorrelationOptions(dataset="/no/such/frames"))
