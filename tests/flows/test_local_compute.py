"""The local Compute provider: registration as Globus stores it, a worker process per task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flows.errors import ActionError
from flows.local import (
    ActionContext,
    ActionStatus,
    ComputeProvider,
    FunctionRegistry,
    LocalEngine,
    RunStatus,
    default_providers,
)
from tools.action_urls import COMPUTE_V2_URL, COMPUTE_V3_URL

_SCALE = 3  # a module global: functions that use it are not self-contained


def correlate_like(**data: Any) -> dict[str, Any]:
    """Self-contained: imports what it needs inside, like our tools' functions."""
    import math
    import os

    return {
        "pid": os.getpid(),
        "norm": math.sqrt(sum(v * v for v in data["values"])),
        "name": data["name"],
    }


def uses_module_import(x: int) -> int:
    return os.getpid() + x  # `os` is imported at module level only


def uses_module_global(x: int) -> int:
    return x * _SCALE


def raises_value_error(**data: Any) -> None:
    raise ValueError(f"no frames in {data['name']}")


def returns_a_set() -> object:
    return {1, 2}


@pytest.fixture
def registry(tmp_path: Path) -> FunctionRegistry:
    return FunctionRegistry(tmp_path / "state.db")


def _context(seconds: float | None = None) -> ActionContext:
    import time

    return ActionContext(
        run_id="r",
        state_name="Correlate",
        action_id="act",
        action_url=COMPUTE_V3_URL,
        username="tester",
        deadline=None if seconds is None else time.monotonic() + seconds,
    )


def test_registration_stores_the_code_source_serialization(registry: FunctionRegistry) -> None:
    fid = registry.register(correlate_like)
    payload = registry.get(fid)
    assert payload.startswith("04\n")  # DillCodeSource, what gladier registers with
    assert registry.register(correlate_like) == fid  # unchanged source: same id
    assert registry.names() == {fid: "correlate_like"}
    assert registry.register(correlate_like, function_id="fixed-id") == "fixed-id"
    with pytest.raises(ActionError, match="not registered locally") as info:
        registry.get("unknown")
    assert info.value.code == "ActionUnableToRun"


def test_function_runs_in_a_worker_process_with_v3_output(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    registry = FunctionRegistry(db)
    fid = registry.register(correlate_like)
    engine = LocalEngine(db, default_providers(db))
    defn = {
        "StartAt": "CorrelateLike",
        "States": {
            "CorrelateLike": {
                "Type": "Action",
                "ActionUrl": COMPUTE_V3_URL,
                "ExceptionOnActionFailure": True,
                "Parameters": {
                    "endpoint_id.$": "$.input.compute_endpoint",
                    "tasks": [
                        {
                            "function_id.$": "$.input.correlate_like_function_id",
                            "kwargs.$": "$.input",
                        }
                    ],
                },
                "ResultPath": "$.CorrelateLike",
                "WaitTime": 120,
                "Next": "Report",
            },
            "Report": {
                "Type": "ExpressionEval",
                "Parameters": {"norm.=": "CorrelateLike.details.results[0].output.norm"},
                "ResultPath": "$.report",
                "End": True,
            },
        },
    }
    data = {
        "input": {
            "compute_endpoint": "endpoint-local",
            "correlate_like_function_id": fid,
            "values": [3, 4],
            "name": "run7",
        }
    }
    rec = engine.run_until_done(engine.start_run(defn, data), timeout=120)
    assert rec.status is RunStatus.SUCCEEDED, rec.error
    output = rec.output["CorrelateLike"]["details"]["results"][0]["output"]
    assert output["norm"] == 5.0
    assert output["name"] == "run7"
    assert output["pid"] != os.getpid()  # it ran in another process
    assert rec.output["report"] == {"norm": 5.0}


@pytest.mark.parametrize(
    ("function", "missing"), [(uses_module_import, "'os'"), (uses_module_global, "'_SCALE'")]
)
def test_a_function_that_is_not_self_contained_fails_as_on_an_endpoint(
    registry: FunctionRegistry, function: Any, missing: str
) -> None:
    # in this process the function works: only the round trip exposes the problem
    assert function(1) >= 1
    fid = registry.register(function)
    provider = ComputeProvider(registry)
    body = {"endpoint_id": "ep", "tasks": [{"function_id": fid, "args": [1]}]}
    result = provider.run(body, context=_context(120))
    assert result.status is ActionStatus.FAILED
    assert f"NameError: name {missing} is not defined" in result.details["error"]
    assert "Traceback (most recent call last)" in result.details["exception"]
    assert result.details["results"][0]["status"] == "failed"


def test_an_exception_fails_the_action_with_the_remote_traceback(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    fid = FunctionRegistry(db).register(raises_value_error)
    engine = LocalEngine(db, default_providers(db))
    defn = {
        "StartAt": "Correlate",
        "States": {
            "Correlate": {
                "Type": "Action",
                "ActionUrl": COMPUTE_V2_URL,  # the v2 body shape works too
                "Parameters": {
                    "tasks": [{"endpoint": "ep", "function": fid, "payload": {"name": "run9"}}]
                },
                "ResultPath": "$.Correlate",
                "Catch": [
                    {
                        "ErrorEquals": ["ActionFailedException"],
                        "ResultPath": "$.Error",
                        "Next": "Fail",
                    }
                ],
                "End": True,
            },
            "Fail": {"Type": "Fail", "Error": "CorrelationFailed"},
        },
    }
    rec = engine.run_until_done(engine.start_run(defn, {}), timeout=120)
    assert rec.status is RunStatus.FAILED
    assert rec.error == {"error": "CorrelationFailed", "cause": "the flow reached Fail state Fail"}
    caught = engine.get_run_logs(rec.run_id)
    failed = next(e for e in caught if e["code"] == "ActionFailed")
    assert "ValueError: no frames in run9" in failed["details"]["cause"]
    traceback_text = failed["details"]["output"]["details"]["exception"]
    assert 'File "<string>", line 2, in raises_value_error' in traceback_text  # remote frames


def test_non_json_results_and_unknown_functions(registry: FunctionRegistry) -> None:
    provider = ComputeProvider(registry)
    fid = registry.register(returns_a_set)
    result = provider.run(
        {"endpoint_id": "ep", "tasks": [{"function_id": fid}]}, context=_context(120)
    )
    assert result.status is ActionStatus.FAILED
    assert "not JSON" in result.details["error"]
    with pytest.raises(ActionError, match="lacks required field 'tasks'"):
        provider.run({"endpoint_id": "ep"}, context=_context())
    with pytest.raises(ActionError, match="not registered locally"):
        provider.run({"endpoint_id": "ep", "tasks": [{"function_id": "x"}]}, context=_context())


def sleeps_forever(pid_file: str) -> None:
    import os
    import time
    from pathlib import Path

    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(120)


def test_wait_time_kills_the_worker_process(tmp_path: Path) -> None:
    import time

    db = tmp_path / "state.db"
    fid = FunctionRegistry(db).register(sleeps_forever)
    engine = LocalEngine(db, default_providers(db))
    pid_file = tmp_path / "worker.pid"
    defn = {
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Action",
                "ActionUrl": COMPUTE_V3_URL,
                "Parameters": {
                    "endpoint_id": "ep",
                    "tasks": [{"function_id": fid, "args": [str(pid_file)]}],
                },
                "ResultPath": "$.Slow",
                "WaitTime": 3,
                "End": True,
            }
        },
    }
    rec = engine.run_until_done(engine.start_run(defn, {}), timeout=60)
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None
    assert rec.error["error"] == "ActionTimeout"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"worker process {pid} still alive after the timeout")
