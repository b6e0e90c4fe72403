"""The default launcher: what it passes to ``flows.launch.api.launch``; finding runs by tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.local import LocalEngine
from flows.watch.launcher import FlowsLauncher, LaunchedRun, RunLookupUnavailable, key_tag

PASS_FLOW = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


class _FakeRun:
    run_id = "run-1"
    facility = "polaris"


def test_launch_passes_the_watchers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.launch.api

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def fake_launch(*args: Any, **kwargs: Any) -> _FakeRun:
        calls.append((args, kwargs))
        return _FakeRun()

    monkeypatch.setattr(flows.launch.api, "launch", fake_launch)
    launcher = FlowsLauncher(
        engine="globus",
        facility="auto",
        options={"mode": "multitau"},
        db_path=tmp_path / "state.db",
        workdir=tmp_path / "work",
    )
    run = launcher.launch(tmp_path / "a.h5", tmp_path / "q.h5", tags=["x", key_tag("k")])
    assert run == LaunchedRun("run-1", "polaris")
    assert calls == [
        (
            (tmp_path / "a.h5", tmp_path / "q.h5"),
            {
                "facility": "auto",
                "engine": "globus",
                "tags": ("x", "xpcs-watch:k"),
                "options": {"mode": "multitau"},
                "db_path": tmp_path / "state.db",
                "workdir": tmp_path / "work",
                "wait": False,
            },
        )
    ]


def test_find_looks_local_runs_up_by_tag_and_status_follows_them(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    engine = LocalEngine(db, providers={})
    other = engine.start_run(PASS_FLOW, {"input": {}}, tags=[key_tag("other")])
    run_id = engine.start_run(PASS_FLOW, {"input": {}}, tags=["engine:local", key_tag("k1")])
    launcher = FlowsLauncher(engine="local", db_path=db)
    assert launcher.find(key_tag("k1")) == LaunchedRun(run_id, "local")
    assert launcher.find(key_tag("other")) == LaunchedRun(other, "local")
    assert launcher.find(key_tag("k2")) is None
    assert launcher.status(run_id) == "ACTIVE"
    engine.run_until_done(run_id)
    assert launcher.status(run_id) == "SUCCEEDED"


def test_find_on_globus_says_it_cannot_know(tmp_path: Path) -> None:
    launcher = FlowsLauncher(engine="globus", db_path=tmp_path / "state.db")
    with pytest.raises(RunLookupUnavailable) as info:
        launcher.find(key_tag("k1"))
    assert info.value.tag == "xpcs-watch:k1"
    assert info.value.engine == "globus"
    assert "xpcs-flows retry" in str(info.value)
