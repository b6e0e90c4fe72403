"""The XPCS flow, end to end on the local engine: success, re-run, injected faults, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flows.cli.flow import catalog_command, list_catalog
from flows.local import ActionContext, FunctionProvider, LocalEngine, RunStatus, TransferProvider
from flows.xpcs.definition import xpcs_flow
from flows.xpcs.local import LocalFacility, override_wait_times, run_local_flow
from flows.xpcs.validate import FlowInputError
from tools.action_urls import COMPUTE_V3_URL, TRANSFER_URL
from xpcs_kernel.result.writer import read_result
from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

SPEC = SyntheticSpec(
    n_frames=160, shape=(24, 24), n_dynamic_q=3, n_static_q=6, tau_c_range=(2.0, 12.0)
)
ACTIONS = ["TransferIn", "Correlate", "Plots", "PublishMetadata", "PublishTransfer"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("beamline")
    raw, qmap = base / "A001.h5", base / "qmap_A.h5"
    write_synthetic(raw, qmap, SPEC)
    return raw, qmap


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.slow
def test_full_flow_publishes_and_a_rerun_updates_the_same_entry(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, qmap = dataset
    db = tmp_path / "state.db"
    first = run_local_flow(
        raw,
        qmap,
        workdir=tmp_path / "work",
        options={"mode": "both", "twotime_bins": [0]},
        db_path=db,
        label="A001 test",
        tags=["test"],
        transfer_back=True,
        timeout=300,
    )
    assert first.status is RunStatus.SUCCEEDED, first.failure
    assert first.facility == "local"
    assert first.result_path is not None
    assert read_result(first.result_path).analysis == ("multitau", "twotime")
    assert {p.name for p in first.plot_paths} >= {"A001_g2.png", "A001_twotime_bin0.png"}
    assert all(p.is_file() for p in first.plot_paths)
    assert len(first.fitted_rates) == SPEC.n_dynamic_q
    assert first.summary is not None
    assert first.summary["n_frames"] == SPEC.n_frames

    # published: results, plots and metadata.json; manifest checksums match what was published
    assert first.published_dir is not None
    published = {
        p.relative_to(first.published_dir).as_posix() for p in _files(first.published_dir)
    }
    assert {"A001_results.hdf", "plots/A001_g2.png", "metadata.json"} <= published
    entry = first.catalog_entry
    assert entry is not None
    assert entry.version == 1
    assert entry.subject == first.catalog_subject
    assert entry.subject.endswith(str(raw))
    assert entry.content["dataset"]["name"] == "A001"
    assert entry.content["facility"] == "local"
    assert first.published_files
    assert all(p.is_file() for p in first.published_files)
    for item in entry.content["manifest"]:
        data = (first.published_dir / item["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
    # results appear atomically: no partial or temporary file is left anywhere
    assert [p for p in _files(tmp_path / "work") if p.name.startswith(".")] == []
    # transferred back next to the raw file
    back = raw.parent / "A001_results"
    assert (back / "A001_results.hdf").is_file()

    # the run persists: a new engine on the same database reports it
    record = LocalEngine(db).get_run(first.run_id)
    assert record.status is RunStatus.SUCCEEDED
    assert record.label == "A001 test"
    assert record.tags == ("test",)
    started = [
        e["details"]["state_name"]
        for e in LocalEngine(db).get_run_logs(first.run_id)
        if e["code"] == "ActionStarted"
    ]
    assert started == [*ACTIONS, "PublishIngest", "TransferBack"]

    again = run_local_flow(
        raw, qmap, workdir=tmp_path / "work", options={"mode": "multitau"}, db_path=db, timeout=300
    )
    assert again.status is RunStatus.SUCCEEDED, again.failure
    assert again.catalog_subject == first.catalog_subject
    entries = list_catalog(db)
    assert len(entries) == 1
    assert entries[0].version == 2
    assert entries[0].content["parameters"]["mode"] == "multitau"

    listed = CliRunner().invoke(catalog_command, ["list", "--json", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    assert [e["subject"] for e in json.loads(listed.output)] == [first.catalog_subject]
    shown = CliRunner().invoke(catalog_command, ["show", first.catalog_subject, "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "A001" in shown.output
    assert "tau_c=" in shown.output
    missing = CliRunner().invoke(catalog_command, ["show", "globus://nope", "--db", str(db)])
    assert missing.exit_code != 0


def _assert_nothing_published(result: Any, db: Path, work: Path) -> None:
    assert result.status is RunStatus.FAILED
    assert result.catalog_entry is None
    assert list_catalog(db) == []
    assert _files(work / "publication") == []


def test_failing_correlation_fails_the_run_and_publishes_nothing(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    _raw, qmap = dataset
    bad = tmp_path / "beamline" / "B002.h5"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 4000)  # an HDF5 signature, then garbage
    shutil.copy(qmap, bad.parent / "qmap_B.h5")
    db = tmp_path / "state.db"
    result = run_local_flow(
        bad, bad.parent / "qmap_B.h5", workdir=tmp_path / "work", options={}, db_path=db
    )
    _assert_nothing_published(result, db, tmp_path / "work")
    assert result.failure is not None
    assert result.failure["state"] == "Correlate"
    assert result.failure["error"] == "ActionFailedException"
    assert "B002.h5" in result.failure["cause"]
    record = LocalEngine(db).get_run(result.run_id)
    assert record.failed_state == "FlowFailed"
    assert "Plots" not in record.state
    assert "PublishMetadata" not in record.state


def test_checksum_mismatch_in_transfer_in_fails_before_correlate(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, qmap = dataset
    work = tmp_path / "work"
    facility = LocalFacility.in_directory(work)

    def corrupting_copy(src: Path, dst: Path) -> None:
        data = bytearray(src.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dst.write_bytes(bytes(data))

    db = tmp_path / "state.db"
    result = run_local_flow(
        raw,
        qmap,
        workdir=work,
        options={},
        db_path=db,
        facility=facility,
        providers={
            TRANSFER_URL: TransferProvider(dict(facility.collections), copy_file=corrupting_copy)
        },
    )
    _assert_nothing_published(result, db, work)
    assert result.failure is not None
    assert result.failure["state"] == "TransferIn"
    assert "checksum mismatch" in result.failure["cause"]
    state = LocalEngine(db).get_run(result.run_id).state
    assert "Correlate" not in state
    assert _files(work / "facility") == []  # the corrupt copy never landed


def test_an_action_past_its_wait_time_is_caught(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, qmap = dataset

    def stuck(body: Mapping[str, Any], context: ActionContext) -> Mapping[str, Any]:
        context.cancelled.wait(30)  # a queue that never starts the job
        return {"results": []}

    db = tmp_path / "state.db"
    t0 = time.monotonic()
    result = run_local_flow(
        raw,
        qmap,
        workdir=tmp_path / "work",
        options={},
        db_path=db,
        providers={COMPUTE_V3_URL: FunctionProvider(COMPUTE_V3_URL, stuck)},
        definition=override_wait_times(xpcs_flow().definition, 0.5, states=["Correlate"]),
    )
    assert time.monotonic() - t0 < 20
    _assert_nothing_published(result, db, tmp_path / "work")
    assert result.failure is not None
    assert result.failure == {
        "state": "Correlate",
        "error": "ActionTimeout",
        "cause": "the action did not complete within WaitTime 0.5 s",
    }


@pytest.mark.parametrize(
    ("kwargs", "pointer"),
    [
        ({"options": {"stride": 0}}, "/input/options/stride"),
        ({"options": {"begin": 50, "end": 10}}, "/input/options/end"),
        ({"options": {}, "dataset_name": "bad name"}, "/input/dataset/name"),
        ({"options": {}, "allowed_roots": ("/nowhere",)}, "/input/raw/path"),
    ],
)
def test_bad_input_is_rejected_before_anything_runs(
    dataset: tuple[Path, Path], tmp_path: Path, kwargs: dict[str, Any], pointer: str
) -> None:
    raw, qmap = dataset
    work = tmp_path / "work"
    roots = kwargs.pop("allowed_roots", ("/",))
    facility = LocalFacility.in_directory(work, allowed_roots=roots)
    db = tmp_path / "state.db"
    with pytest.raises(FlowInputError) as info:
        run_local_flow(raw, qmap, workdir=work, db_path=db, facility=facility, **kwargs)
    assert info.value.pointer == pointer
    assert LocalEngine(db).list_runs() == []
    assert _files(work) == []
