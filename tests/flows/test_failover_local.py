"""Failover on the local engine: injected infrastructure faults, data errors, one publication."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from deployments import FacilityChooser, FailoverPolicy, RunHistory
from flows.launch.api import prepare_launch
from flows.launch.failover import run_with_failover
from flows.local import (
    ActionContext,
    ActionProvider,
    ActionResult,
    FunctionProvider,
    LocalCatalog,
    unable_to_run,
)
from flows.runs.index import RunIndex
from flows.runs.publication import ALREADY_PUBLISHED, PublicationGuard, guard_providers
from tests.flows.test_launch_support import make_dataset, write_local_deployment
from tools.action_urls import COMPUTE_V3_URL, SEARCH_INGEST_URL


def _offline(body: Mapping[str, Any], context: ActionContext) -> Mapping[str, Any]:
    raise unable_to_run("endpoint 0000 is offline (injected fault)")


def _faults(*broken: str) -> Any:
    def providers_for(facility: str) -> Mapping[str, ActionProvider] | None:
        if facility in broken:
            return {COMPUTE_V3_URL: FunctionProvider(COMPUTE_V3_URL, _offline)}
        return None

    return providers_for


@pytest.fixture
def sites() -> None:
    # two more local-engine "facilities"; site_a ranks first, then site_b, then local
    write_local_deployment("site_a", throughput_mpix_s=100000)
    write_local_deployment("site_b", throughput_mpix_s=50000)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.slow
@pytest.mark.usefixtures("sites")
def test_infrastructure_fault_fails_over_to_the_next_facility_and_publishes_once(
    tmp_path: Path,
) -> None:
    raw, qmap = make_dataset(tmp_path / "beamline")
    db, work = tmp_path / "state.db", tmp_path / "work"
    request = prepare_launch(raw, qmap, db_path=db, workdir=work)
    run = run_with_failover(request, progress=False, timeout=300, providers_for=_faults("site_a"))

    assert run.status() == "SUCCEEDED"
    assert run.facility == "site_b"
    assert run.decision is not None
    assert [c["facility"] for c in run.decision["candidates"][:3]] == [
        "site_a",
        "site_b",
        "local",
    ]
    (first,) = run.attempts
    first_entry = RunIndex(db).get(first)
    assert first_entry is not None
    assert first_entry.facility == "site_a"

    with RunHistory(db) as history:
        rows = history.runs(dataset="A001")
        assert [(r.facility, r.attempt, r.outcome) for r in rows] == [
            ("site_a", 1, "failed"),
            ("site_b", 2, "succeeded"),
        ]
        assert rows[0].failure_kind == "infrastructure"
        plan = json.loads(rows[0].failure_detail or "{}")
        assert plan["relaunch"] is True
        assert plan["facility"] == "site_b"
        assert plan["failure"]["code"] == "ActionUnableToRun"
        assert rows[1].failover_from == first
        assert history.publication(request.publication_key) == (run.run_id, "site_b")

    # one catalog entry, one published copy (on site_b only)
    index = run.local_engine.get_run(run.run_id).input["input"]["search_index"]
    assert [e.subject for e in LocalCatalog(db).list(index)] == [run.outputs.catalog_subject]
    assert _files(work / "site_a" / "publication") == []
    published = _files(work / "site_b" / "publication")
    assert {p.name for p in published} >= {"A001_results.hdf", "A001_g2.png"}
    assert len([p for p in published if p.name == "A001_results.hdf"]) == 1


@pytest.mark.slow
@pytest.mark.usefixtures("sites")
def test_a_corrupt_raw_file_is_not_retried_elsewhere(tmp_path: Path) -> None:
    raw, qmap = make_dataset(tmp_path / "beamline")
    db = tmp_path / "state.db"
    request = prepare_launch(raw, qmap, db_path=db, workdir=tmp_path / "work")
    # the file is cut short after the pre-launch checks (which refuse it otherwise)
    data = raw.read_bytes()
    raw.write_bytes(data[: len(data) // 3])  # truncated: not a readable HDF5 file any more
    run = run_with_failover(request, progress=False, timeout=300)

    assert run.status() == "FAILED"
    assert run.facility == "site_a"
    assert run.attempts == ()
    with RunHistory(db) as history:
        (row,) = history.runs(dataset="A001")
        assert row.failure_kind == "data"
        plan = json.loads(row.failure_detail or "{}")
        assert plan["relaunch"] is False
        assert "not retried elsewhere" in plan["reason"]
        assert history.publication(request.publication_key) is None


@pytest.mark.usefixtures("sites")
def test_failover_stops_at_the_attempt_limit(tmp_path: Path) -> None:
    raw, qmap = make_dataset(tmp_path / "beamline")
    db = tmp_path / "state.db"
    request = prepare_launch(raw, qmap, db_path=db, workdir=tmp_path / "work")
    run = run_with_failover(
        request,
        progress=False,
        timeout=120,
        policy=FailoverPolicy(max_attempts=2),
        providers_for=_faults("site_a", "site_b", "local"),
        chooser=FacilityChooser(history=None),
    )
    assert run.status() == "FAILED"
    assert (run.facility, len(run.attempts)) == ("site_b", 1)
    with RunHistory(db) as history:
        rows = history.runs(dataset="A001")
        assert [(r.facility, r.outcome, r.failure_kind) for r in rows] == [
            ("site_a", "failed", "infrastructure"),
            ("site_b", "failed", "infrastructure"),
        ]
        assert "retry limit reached (2 attempts)" in (rows[1].failure_detail or "")


def test_the_guard_lets_only_the_owner_publish(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    ingested: list[str] = []

    def ingest(body: Mapping[str, Any], context: ActionContext) -> Mapping[str, Any]:
        ingested.append(context.run_id)
        return {"subject": body["subject"]}

    inner = FunctionProvider(SEARCH_INGEST_URL, ingest)
    guarded = guard_providers(
        {SEARCH_INGEST_URL: inner}, db_path=db, publication_key="k1", facility="site_a"
    )[SEARCH_INGEST_URL]
    assert isinstance(guarded, PublicationGuard)

    def ctx(run_id: str, state: str = "PublishIngest") -> ActionContext:
        return ActionContext(run_id, state, "a1", SEARCH_INGEST_URL, "me")

    body = {"subject": "s"}
    assert guarded.run(body, context=ctx("run-1")).status.value == "SUCCEEDED"
    assert guarded.run(body, context=ctx("run-1")).status.value == "SUCCEEDED"  # resumed owner
    refused: ActionResult = guarded.run(body, context=ctx("run-2"))
    assert refused.status.value == "FAILED"
    assert refused.details["error"] == ALREADY_PUBLISHED
    assert refused.details["owner_run_id"] == "run-1"
    # a non-publish state through the same URL is not guarded
    assert guarded.run(body, context=ctx("run-2", "TransferIn")).status.value == "SUCCEEDED"
    assert ingested == ["run-1", "run-1", "run-2"]
    with RunHistory(db) as history:
        assert history.publication("k1") == ("run-1", "site_a")


@pytest.mark.slow
@pytest.mark.usefixtures("sites")
def test_a_failure_while_publishing_is_not_relaunched(tmp_path: Path) -> None:
    raw, qmap = make_dataset(tmp_path / "beamline")
    db = tmp_path / "state.db"

    def search_down(body: Mapping[str, Any], context: ActionContext) -> Mapping[str, Any]:
        raise unable_to_run("search service unavailable (injected fault)")

    def providers_for(facility: str) -> Mapping[str, ActionProvider] | None:
        return {SEARCH_INGEST_URL: FunctionProvider(SEARCH_INGEST_URL, search_down)}

    request = prepare_launch(raw, qmap, db_path=db, workdir=tmp_path / "work")
    run = run_with_failover(request, progress=False, timeout=300, providers_for=providers_for)
    assert run.status() == "FAILED"
    assert run.facility == "site_a"
    assert run.attempts == ()
    failure = run.failure
    assert failure is not None
    assert failure["state"] == "PublishIngest"
    with RunHistory(db) as history:
        (row,) = history.runs(dataset="A001")
        assert row.failure_kind == "infrastructure"
        assert "failed while publishing (PublishIngest)" in (row.failure_detail or "")
        # the copy step had claimed the one publication for this run
        assert history.publication(request.publication_key) == (run.run_id, "site_a")
