"""``Run.local_engine``: the public way to the engine object of a local run."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.local import LocalEngine
from flows.runs import Run
from flows.runs.index import RunIndexEntry
from xpcs_kernel.errors import UsageError


def _entry(engine: str) -> RunIndexEntry:
    return RunIndexEntry(
        run_id="r-1",
        engine=engine,
        flow_id=None if engine == "local" else "f-1",
        facility="local" if engine == "local" else "polaris",
        dataset="A001",
        label="A001 @ here",
        launch_id="l-1",
        attempt=1,
        publication_key="",
        started_at=0.0,
        collections={} if engine == "local" else None,
    )


def test_a_local_run_gives_its_engine_once(tmp_path: Path) -> None:
    run = Run(_entry("local"), db_path=tmp_path / "state.db")
    assert run.engine == "local"
    engine = run.local_engine
    assert isinstance(engine, LocalEngine)
    assert run.local_engine is engine
    assert engine.store.db_path == tmp_path / "state.db"


def test_a_globus_run_has_no_local_engine(tmp_path: Path) -> None:
    run = Run(_entry("globus"), db_path=tmp_path / "state.db")
    with pytest.raises(UsageError, match="r-1 runs on globus, not the local engine"):
        run.local_engine
