"""flows.launch.api on the local engine: non-blocking launch, Run handle, reattach, errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import pytest

from deployments import RunHistory
from flows.errors import RunNotFound, RunWaitTimeout
from flows.launch.api import launch, prepare_launch, standard_tags, start_attempt
from flows.local import ActionContext, FunctionProvider, LocalCatalog
from flows.runs.driver import drive_local_run
from flows.runs.handle import FINAL, Run
from flows.runs.index import RunIndex
from tests.flows.test_launch_support import make_dataset, write_polaris
from tools.action_urls import TRANSFER_URL
from xpcs_kernel.errors import ConfigurationError, QMapError, UsageError
from xpcs_kernel.result.writer import read_result


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    return make_dataset(tmp_path / "beamline")


@pytest.fixture
def blocked() -> Iterator[threading.Event]:
    """An event that a blocking TransferIn provider waits on (set at teardown)."""
    release = threading.Event()
    yield release
    release.set()


def _blocking_transfer(release: threading.Event) -> dict[str, Any]:
    def transfer(body: Mapping[str, Any], context: ActionContext) -> Mapping[str, Any]:
        while not release.is_set() and not context.cancelled.is_set():
            release.wait(0.05)
        raise RuntimeError("the test transfer never completes")

    return {TRANSFER_URL: FunctionProvider(TRANSFER_URL, transfer)}


@pytest.mark.slow
def test_launch_returns_at_once_and_wait_gives_the_outputs(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, qmap = dataset
    db = tmp_path / "state.db"
    run = launch(raw, qmap, db_path=db, workdir=tmp_path / "work", options={"mode": "multitau"})
    # not blocked: the run is still going when launch returns
    assert run.status() == "ACTIVE"
    assert run.engine == "local"
    assert run.facility == "local"
    assert run.label == "A001 @ local"
    assert run.decision is not None
    assert run.decision["chosen"] == "local"
    assert run.outputs.result_path is None  # nothing before SUCCEEDED

    assert run.wait(progress=False, timeout=300) is run
    assert run.status() == "SUCCEEDED"
    out = run.outputs
    assert out.result_path is not None
    assert out.result_path.is_file()
    assert out.result_path.is_relative_to(tmp_path / "work" / "local")
    assert read_result(out.result_path).g2 is not None
    assert {p.name for p in out.plot_paths} >= {"A001_g2.png", "A001_saxs_1d.png"}
    assert all(p.is_file() for p in out.plot_paths)
    assert out.catalog_subject is not None
    assert out.catalog_subject.endswith(str(raw))
    index = run.local_engine.get_run(run.run_id).input["input"]["search_index"]
    entries = LocalCatalog(db).list(index)
    assert [e.subject for e in entries] == [out.catalog_subject]

    codes = [entry["code"] for entry in run.logs()]
    assert codes[0] == "FlowStarted"
    assert codes[-1] == "FlowSucceeded"

    # the start and the outcome are in the history; the tags carry facility and engine
    with RunHistory(db) as history:
        (row,) = history.runs(dataset="A001")
        assert (row.run_id, row.facility, row.attempt, row.outcome) == (
            run.run_id,
            "local",
            1,
            "succeeded",
        )
        assert row.decision is not None
        assert row.decision["chosen"] == "local"
        assert history.publication(run.entry.publication_key) == (run.run_id, "local")

    # another handle (as another process would) reattaches by id
    again = Run.from_id(run.run_id, db_path=db)
    info = again.to_dict()
    assert info["status"] == "SUCCEEDED"
    assert info["facility"] == "local"
    assert info["label"] == "A001 @ local"
    assert info["duration_s"] is not None
    assert info["duration_s"] > 0
    assert info["outputs"]["result_path"] == str(out.result_path)
    assert again.decision == run.decision


def test_tags_name_beamline_experiment_facility_engine(tmp_path: Path) -> None:
    raw, _ = make_dataset(tmp_path)
    with h5py.File(raw, "a") as f:
        f["/entry/instrument/name"] = "8-ID-I"
        f["/entry/experiment_identifier"] = "2026-3 Smith"
    tags = standard_tags(
        raw, facility="polaris", engine="globus", extra=("sample:gel", "engine:globus")
    )
    assert tags == [
        "beamline:8-ID-I",
        "experiment:2026-3 Smith",
        "facility:polaris",
        "engine:globus",
        "sample:gel",
    ]


def test_wait_timeout_then_cancel(
    dataset: tuple[Path, Path], tmp_path: Path, blocked: threading.Event
) -> None:
    raw, qmap = dataset
    db = tmp_path / "state.db"
    request = prepare_launch(raw, qmap, facility="local", db_path=db, workdir=tmp_path / "w")
    run = start_attempt(request, "local", decision=None, providers=_blocking_transfer(blocked))
    with pytest.raises(RunWaitTimeout) as caught:
        run.wait(progress=False, timeout=0.2)
    assert caught.value.run_id == run.run_id
    assert "still ACTIVE" in str(caught.value)
    assert run.status() == "ACTIVE"  # a timeout leaves the run going

    run.cancel()
    run.wait(progress=False, timeout=30)
    assert run.status() == "FAILED"
    failure = run.failure
    assert failure is not None
    assert failure["error"] == "FlowCanceled"
    assert run.logs()[-1]["code"] == "FlowCanceled"
    with RunHistory(db) as history:
        (row,) = history.runs(dataset="A001")
        assert row.outcome == "failed"
    assert run.decision is None  # the facility was named: no decision


@pytest.mark.slow
def test_a_run_whose_driver_is_gone_is_resumed_by_whoever_waits(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, qmap = dataset
    db = tmp_path / "state.db"
    request = prepare_launch(raw, qmap, facility="local", db_path=db, workdir=tmp_path / "w")
    started = start_attempt(request, "local", decision=None, background=False)
    assert RunIndex(db).get(started.run_id) is not None
    # nobody drives it yet: a fresh process reattaching drives it to the end
    assert drive_local_run(started.run_id, db_path=db) == "SUCCEEDED"
    assert Run.from_id(started.run_id, db_path=db).outputs.result_path is not None


def test_unknown_run_id_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="no local flow run with id 'nope'"):
        Run.from_id("nope", db_path=tmp_path / "state.db")


def test_launch_checks_its_input_before_anything_starts(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    raw, qmap = dataset
    db = tmp_path / "state.db"
    with pytest.raises(UsageError, match="raw: no such file"):
        launch(tmp_path / "missing.h5", qmap, db_path=db)
    with pytest.raises(QMapError):
        launch(raw, raw, db_path=db)  # the raw file is no q-map
    with pytest.raises(UsageError, match="unknown option"):
        launch(raw, qmap, db_path=db, options={"mood": "happy"})
    with pytest.raises(ConfigurationError, match="unknown deployment"):
        launch(raw, qmap, db_path=db, facility="atlantis")
    with pytest.raises(UsageError, match="engine"):
        launch(raw, qmap, db_path=db, engine="carrier-pigeon")  # type: ignore[arg-type]
    write_polaris()
    with pytest.raises(UsageError, match="runs on the globus engine"):
        launch(raw, qmap, db_path=db, facility="polaris", engine="local")
    # nothing was started or recorded
    assert RunIndex(db).recent() == []
    assert not db.exists() or RunHistory(db).runs() == []


def test_status_values_are_globus_statuses() -> None:
    assert frozenset({"SUCCEEDED", "FAILED"}) == FINAL
