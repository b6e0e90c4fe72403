"""Runs persist in SQLite: visible from new engine objects and resumable after a crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flows.errors import RunWaitTimeout
from flows.local import (
    ActionContext,
    FunctionProvider,
    LocalEngine,
    RunStatus,
    default_state_db,
    provider_map,
)

STEP = "https://example.test/step"
REPO = Path(__file__).resolve().parents[2]

DEFINITION = {
    "StartAt": "First",
    "States": {
        "First": {
            "Type": "Action",
            "ActionUrl": STEP,
            "Parameters": {"n": 1},
            "ResultPath": "$.First",
            "Next": "Second",
        },
        "Second": {
            "Type": "Action",
            "ActionUrl": STEP,
            "Parameters": {"n": 2},
            "ResultPath": "$.Second",
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "End": True},
    },
}


class _Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may turn it into a result)."""


class _Steps:
    def __init__(self, crash_on: int | None = None) -> None:
        self.calls: list[int] = []
        self.crash_on = crash_on

    def __call__(self, body: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
        self.calls.append(int(body["n"]))
        if body["n"] == self.crash_on:
            raise _Crash
        return {"n": body["n"], "run": context.run_id}


def _engine(db: Path, steps: _Steps) -> LocalEngine:
    return LocalEngine(db, provider_map([FunctionProvider(STEP, steps)]))


def test_a_run_is_visible_with_logs_from_a_new_engine(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = _engine(db, _Steps())
    run_id = first.start_run(DEFINITION, {"x": 1}, label="persist", tags=["t"])
    first.run_until_done(run_id)
    other = _engine(db, _Steps())
    rec = other.get_run(run_id)
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.label == "persist"
    assert rec.tags == ("t",)
    assert rec.output["Second"]["details"] == {"n": 2, "run": run_id}
    codes = [e["code"] for e in other.get_run_logs(run_id)]
    assert codes == [
        "FlowStarted",
        "ActionStarted",
        "ActionCompleted",
        "ActionStarted",
        "ActionCompleted",
        "PassStarted",
        "PassCompleted",
        "FlowSucceeded",
    ]
    assert [r.run_id for r in other.list_runs()] == [run_id]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_interrupted_run_resumes_to_completion(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    crashing = _Steps(crash_on=2)
    run_id = _engine(db, crashing).start_run(DEFINITION, {"x": 1})
    with pytest.raises(_Crash):
        _engine(db, crashing).run_until_done(run_id)
    assert crashing.calls == [1, 2]

    steps = _Steps()
    engine = _engine(db, steps)
    stuck = engine.get_run(run_id)
    assert stuck.status is RunStatus.ACTIVE
    assert stuck.current_state == "Second"
    assert stuck.state["First"]["details"]["n"] == 1  # the first state's result survived
    assert engine.get_run_logs(run_id)[-1]["code"] == "ActionStarted"

    rec = engine.resume(run_id)
    assert rec.status is RunStatus.SUCCEEDED
    assert steps.calls == [2]  # only the interrupted action is re-run
    assert rec.output["First"]["details"]["n"] == 1
    assert rec.output["Second"]["details"]["n"] == 2
    codes = [e["code"] for e in engine.get_run_logs(run_id)]
    assert codes.count("FlowResumed") == 1
    assert codes[-1] == "FlowSucceeded"


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from flows.local import FunctionProvider, LocalEngine, provider_map

    def step(body, context):
        if body["n"] == 2:
            time.sleep(60)
        return {"n": body["n"]}

    engine = LocalEngine(Path(sys.argv[1]), provider_map([FunctionProvider(sys.argv[3], step)]))
    engine.run_until_done(sys.argv[2])
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_process_leaves_a_run_that_another_process_resumes(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    run_id = _engine(db, _Steps()).start_run(DEFINITION, {})
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), run_id, STEP], cwd=REPO, env=dict(os.environ)
    )
    try:
        watcher = _engine(db, _Steps())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            logs = watcher.get_run_logs(run_id)
            if any(
                e["code"] == "ActionStarted" and e["details"]["state_name"] == "Second"
                for e in logs
            ):
                break
            assert child.poll() is None, "the child process ended early"
            time.sleep(0.05)
        else:
            pytest.fail("the child never reached state Second")
        # a live driver holds the run: another engine waits instead of driving it twice
        with pytest.raises(RunWaitTimeout):
            watcher.run_until_done(run_id, timeout=0.3)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)

    steps = _Steps()
    rec = _engine(db, steps).run_until_done(run_id, timeout=30)
    assert rec.status is RunStatus.SUCCEEDED
    assert steps.calls == [2]
    assert rec.output["Second"]["details"] == {"n": 2, "run": run_id}


def test_default_database_is_under_the_user_data_directory(isolated_home: Path) -> None:
    engine = LocalEngine(providers={})
    expected = isolated_home / ".local" / "share" / "xpcs-flows" / "state.db"
    assert default_state_db() == expected
    assert engine.db_path == expected
    assert expected.is_file()


def test_forced_resume_takes_over_and_the_old_driver_cannot_overwrite(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    release = threading.Event()
    returned = threading.Event()

    def stuck(body: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
        if body["n"] == 2:
            release.wait(20)
            returned.set()
            return {"n": 2, "by": "old driver"}
        return {"n": body["n"]}

    old = LocalEngine(db, provider_map([FunctionProvider(STEP, stuck)]))
    run_id = old.start_run(DEFINITION, {}, background=True)
    deadline = time.monotonic() + 20
    while old.get_run(run_id).current_state != "Second" or not any(
        e["code"] == "ActionStarted" and e["details"]["state_name"] == "Second"
        for e in old.get_run_logs(run_id)
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)

    steps = _Steps()
    new = _engine(db, steps)
    rec = new.resume(run_id, force=True, timeout=20)
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["Second"]["details"] == {"n": 2, "run": run_id}

    release.set()
    assert returned.wait(10)
    time.sleep(0.3)  # let the old driver try to commit its late result
    final = new.get_run(run_id)
    assert final.output["Second"]["details"] == {"n": 2, "run": run_id}
    assert "old driver" not in str(new.get_run_logs(run_id))
