"""The batch flow on the local engine: one Compute task per dataset, one catalog entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.cli.flow import list_catalog
from flows.local import RunStatus
from flows.xpcs.local_batch import run_local_batch_flow
from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

SPEC = SyntheticSpec(n_frames=120, shape=(20, 20), n_dynamic_q=2, n_static_q=4)


@pytest.mark.slow
def test_batch_flow_fans_out_and_publishes_one_entry(tmp_path: Path) -> None:
    beam = tmp_path / "beamline"
    (beam / "A001").mkdir(parents=True)
    (beam / "A002").mkdir()
    write_synthetic(beam / "A001" / "A001.h5", beam / "qmap.h5", SPEC)
    write_synthetic(beam / "A002" / "A002.h5", beam / "qmap2.h5", SPEC)
    db = tmp_path / "state.db"
    record = run_local_batch_flow(
        [
            ("A001", beam / "A001" / "A001.h5", beam / "qmap.h5"),
            ("A002", beam / "A002" / "A002.h5", beam / "qmap.h5"),
        ],
        workdir=tmp_path / "work",
        options={"mode": "multitau"},
        batch_name="night-1",
        db_path=db,
        timeout=300,
    )
    assert record.status is RunStatus.SUCCEEDED, record.state.get("Failure")
    tasks = record.state["Correlate"]["details"]["results"]
    assert [t["output"]["name"] for t in tasks] == ["A001", "A002"]  # one task per dataset
    assert len(record.state["Plots"]["details"]["results"]) == 2
    published = tmp_path / "work" / "publication" / "published" / "night-1"
    for name in ("A001", "A002"):
        assert (published / name / f"{name}_results.hdf").is_file()
        assert (published / name / "plots" / f"{name}_g2.png").is_file()
    (entry,) = list_catalog(db)
    assert entry.subject == record.state["Result"]["subject"]
    assert entry.subject.endswith("#night-1")
    assert [r["name"] for r in entry.content["results"]] == ["A001", "A002"]
    assert {r["dataset"] for r in entry.content["fitted_rates"]} == {"A001", "A002"}
