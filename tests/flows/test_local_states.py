"""State semantics of the local engine: each state type, Catch, timeouts, cancel, context."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from flows.errors import FlowDefinitionError, RunNotFound, RunWaitTimeout
from flows.local import (
    ActionContext,
    ActionResult,
    FunctionProvider,
    LocalEngine,
    RunStatus,
    provider_map,
    unable_to_run,
)
from xpcs_kernel.errors import UsageError

ECHO = "https://example.test/echo"
FLAKY = "https://example.test/flaky"
HANG = "https://example.test/hang"


def _echo(body: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    return {"echo": dict(body), "state": context.state_name}


def _flaky(body: Mapping[str, Any], context: ActionContext) -> ActionResult | dict[str, Any]:
    mode = body.get("mode")
    if mode == "fail":
        return ActionResult.failed("disk full", {"bytes": 12})
    if mode == "raise":
        raise RuntimeError("provider crashed")
    if mode == "reject":
        raise unable_to_run("missing field 'x'")
    return {"ok": True}


class _Hang:
    """A provider that blocks until the engine cancels it."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def __call__(self, body: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
        self.started.set()
        if context.cancelled.wait(20):
            self.cancelled.set()
        return {"late": True}


@pytest.fixture
def hang() -> _Hang:
    return _Hang()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def engine(tmp_path: Path, hang: _Hang, sleeps: list[float]) -> LocalEngine:
    providers = provider_map(
        [
            FunctionProvider(ECHO, _echo),
            FunctionProvider(FLAKY, _flaky),
            FunctionProvider(HANG, hang),
        ]
    )
    return LocalEngine(tmp_path / "state.db", providers, sleep=sleeps.append, username="tester")


def _run(
    engine: LocalEngine, states: dict[str, Any], data: dict[str, Any], start: str = ""
) -> Any:
    defn = {"StartAt": start or next(iter(states)), "States": states}
    run_id = engine.start_run(defn, data, label="t", tags=["a", "b"], flow_id="flow-1")
    return engine.run_until_done(run_id, timeout=30)


def _codes(engine: LocalEngine, run_id: str) -> list[str]:
    return [entry["code"] for entry in engine.get_run_logs(run_id)]


def test_pass_parameters_input_path_and_result_path(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Copy": {
                "Type": "Pass",
                "InputPath": "$.input.a",
                "ResultPath": "$.copied",
                "Next": "Build",
            },
            "Build": {
                "Type": "Pass",
                "Parameters": {"x.$": "$.copied.v", "y": "literal", "z.=": "copied.v * 10"},
                "ResultPath": "$.built",
                "Next": "Noop",
            },
            "Noop": {"Type": "Pass", "End": True},
        },
        {"input": {"a": {"v": 4}}},
    )
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output == {
        "input": {"a": {"v": 4}},
        "copied": {"v": 4},
        "built": {"x": 4, "y": "literal", "z": 40},
    }
    assert rec.details["code"] == "FlowSucceeded"
    assert rec.details["output"] == rec.output
    assert (rec.label, rec.tags, rec.flow_id) == ("t", ("a", "b"), "flow-1")
    assert rec.completion_time is not None
    assert rec.completion_time >= rec.start_time
    assert _codes(engine, rec.run_id) == [
        "FlowStarted",
        "PassStarted",
        "PassCompleted",
        "PassStarted",
        "PassCompleted",
        "PassStarted",
        "PassCompleted",
        "FlowSucceeded",
    ]


def test_pass_with_default_result_path_replaces_the_state(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {"P": {"Type": "Pass", "Parameters": {"only.$": "$.keep"}, "End": True}},
        {"keep": 1, "drop": 2},
    )
    assert rec.output == {"only": 1}


def test_expression_eval_and_context(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Eval": {
                "Type": "ExpressionEval",
                "Parameters": {
                    "name.=": "pathsplit(input.path)[1]",
                    "dest.=": "'/results/' + _context.run_id",
                    "who.$": "$._context.username",
                    "flow.$": "$._context.flow_id",
                },
                "ResultPath": "$.computed",
                "End": True,
            }
        },
        {"input": {"path": "/data/A001/frames.h5"}},
    )
    assert rec.output["computed"] == {
        "name": "frames.h5",
        "dest": f"/results/{rec.run_id}",
        "who": "tester",
        "flow": "flow-1",
    }
    assert "_context" not in rec.output
    assert _codes(engine, rec.run_id)[1:3] == ["ExpressionEvalStarted", "ExpressionEvalCompleted"]


CHOICE_STATES: dict[str, Any] = {
    "Pick": {
        "Type": "Choice",
        "Choices": [
            {"Variable": "$.kind", "StringEquals": "fast", "Next": "Fast"},
            {
                "And": [
                    {"Variable": "$.n", "NumericGreaterThanEquals": 10},
                    {"Not": {"Variable": "$.skip", "BooleanEquals": True}},
                ],
                "Next": "Big",
            },
            {
                "Or": [
                    {"Variable": "$.name", "StringMatches": "*.h5"},
                    {"Variable": "$.n", "NumericLessThanPath": "$.limit"},
                ],
                "Next": "Match",
            },
            {"Variable": "$.extra", "IsPresent": True, "Next": "Extra"},
        ],
        "Default": "Other",
    },
    "Fast": {"Type": "Pass", "Parameters": {"went": "Fast"}, "End": True},
    "Big": {"Type": "Pass", "Parameters": {"went": "Big"}, "End": True},
    "Match": {"Type": "Pass", "Parameters": {"went": "Match"}, "End": True},
    "Extra": {"Type": "Pass", "Parameters": {"went": "Extra"}, "End": True},
    "Other": {"Type": "Pass", "Parameters": {"went": "Other"}, "End": True},
}


@pytest.mark.parametrize(
    ("data", "went"),
    [
        ({"kind": "fast", "n": 99}, "Fast"),
        ({"kind": "slow", "n": 10, "skip": False}, "Big"),
        ({"kind": "slow", "n": 10, "skip": True, "name": "x.h5"}, "Match"),
        ({"kind": "slow", "n": 1, "limit": 2, "name": "x.imm"}, "Match"),
        ({"n": 5, "limit": 2, "extra": None}, "Extra"),
        ({"kind": 3, "n": "10"}, "Other"),  # wrong types never match
    ],
)
def test_choice_rules_and_default(engine: LocalEngine, data: dict[str, Any], went: str) -> None:
    rec = _run(engine, CHOICE_STATES, data)
    assert rec.output == {"went": went}
    assert "ChoiceCompleted" in _codes(engine, rec.run_id)


def test_choice_without_match_or_default_fails(engine: LocalEngine) -> None:
    states = {
        "Pick": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Done"}],
        },
        "Done": {"Type": "Pass", "End": True},
    }
    rec = _run(engine, states, {"n": 2})
    assert rec.status is RunStatus.FAILED
    assert rec.error == {"error": "States.NoChoiceMatched", "cause": rec.error["cause"]}
    assert rec.failed_state == "Pick"


def test_wait_seconds_and_seconds_path_use_the_injected_sleep(
    engine: LocalEngine, sleeps: list[float]
) -> None:
    rec = _run(
        engine,
        {
            "W1": {"Type": "Wait", "Seconds": 2, "Next": "W2"},
            "W2": {"Type": "Wait", "SecondsPath": "$.delay", "End": True},
        },
        {"delay": 1.25},
    )
    assert rec.status is RunStatus.SUCCEEDED
    assert sum(sleeps) == pytest.approx(3.25)
    assert max(sleeps) <= 0.5  # sliced, so a cancel is noticed quickly


def test_fail_state_fails_the_run_with_error_and_cause(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Start": {"Type": "Pass", "Next": "Stop"},
            "Stop": {"Type": "Fail", "Error": "NoFrames", "Cause": "the file had no frames"},
        },
        {"a": 1},
    )
    assert rec.status is RunStatus.FAILED
    assert rec.failed_state == "Stop"
    assert rec.error == {"error": "NoFrames", "cause": "the file had no frames"}
    assert rec.details["code"] == "FlowFailed"
    assert rec.output is None
    assert _codes(engine, rec.run_id)[-2:] == ["FailStarted", "FlowFailed"]


def test_action_result_is_a_globus_status_document(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Echo": {
                "Type": "Action",
                "ActionUrl": ECHO,
                "Parameters": {"file.$": "$.input.file"},
                "ResultPath": "$.Echo",
                "End": True,
            }
        },
        {"input": {"file": "a.h5"}},
    )
    doc = rec.output["Echo"]
    assert doc["status"] == "SUCCEEDED"
    assert doc["details"] == {"echo": {"file": "a.h5"}, "state": "Echo"}
    assert doc["state_name"] == "Echo"
    assert {"action_id", "display_status", "start_time", "completion_time"} <= set(doc)
    logs = engine.get_run_logs(rec.run_id)
    started = next(e for e in logs if e["code"] == "ActionStarted")
    assert started["details"]["input"] == {"file": "a.h5"}
    assert started["details"]["action_id"] == doc["action_id"]


def _catching(mode: str, errors: list[str]) -> dict[str, Any]:
    return {
        "Act": {
            "Type": "Action",
            "ActionUrl": FLAKY,
            "Parameters": {"mode": mode},
            "ResultPath": "$.Act",
            "Catch": [{"ErrorEquals": errors, "ResultPath": "$.Problem", "Next": "Handle"}],
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "End": True},
        "Handle": {
            "Type": "Pass",
            "Parameters": {"handled.$": "$.Problem.Error"},
            "ResultPath": "$.h",
            "End": True,
        },
    }


@pytest.mark.parametrize(
    ("mode", "errors", "code", "cause"),
    [
        ("fail", ["ActionFailedException"], "ActionFailedException", "disk full"),
        ("raise", ["States.ALL"], "ActionFailedException", "RuntimeError: provider crashed"),
        ("reject", ["ActionUnableToRun"], "ActionUnableToRun", "missing field 'x'"),
    ],
)
def test_catch_routes_with_the_error_in_result_path(
    engine: LocalEngine, mode: str, errors: list[str], code: str, cause: str
) -> None:
    rec = _run(engine, _catching(mode, errors), {"x": 1})
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["Problem"]["Error"] == code
    assert rec.output["Problem"]["Cause"] == cause
    assert rec.output["h"] == {"handled": code}
    assert "Act" not in rec.output
    if mode == "fail":  # the failed action's status document comes along
        assert rec.output["Problem"]["status"] == "FAILED"
        assert rec.output["Problem"]["details"] == {"bytes": 12, "error": "disk full"}
    failed = [e for e in engine.get_run_logs(rec.run_id) if e["code"] == "ActionFailed"]
    assert failed[0]["details"]["caught_by"] == "Handle"


def test_catch_that_does_not_match_lets_the_run_fail(engine: LocalEngine) -> None:
    rec = _run(engine, _catching("fail", ["ActionTimeout"]), {})
    assert rec.status is RunStatus.FAILED
    assert rec.failed_state == "Act"
    assert rec.error == {"error": "ActionFailedException", "cause": "disk full"}
    assert _codes(engine, rec.run_id)[-2:] == ["ActionFailed", "FlowFailed"]


def test_unknown_action_url_is_unable_to_run(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "X": {
                "Type": "Action",
                "ActionUrl": "https://nowhere.test/x",
                "ResultPath": "$.X",
                "End": True,
            }
        },
        {},
    )
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None
    assert rec.error["error"] == "ActionUnableToRun"
    assert "no local action provider for https://nowhere.test/x" in rec.error["cause"]


def test_wait_time_is_a_timeout_caught_as_action_timeout(engine: LocalEngine, hang: _Hang) -> None:
    t0 = time.monotonic()
    rec = _run(
        engine,
        {
            "Slow": {
                "Type": "Action",
                "ActionUrl": HANG,
                "WaitTime": 0.3,
                "ResultPath": "$.Slow",
                "Catch": [
                    {"ErrorEquals": ["ActionTimeout"], "ResultPath": "$.Timeout", "Next": "After"}
                ],
                "End": True,
            },
            "After": {"Type": "Pass", "End": True},
        },
        {},
    )
    assert time.monotonic() - t0 < 5
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["Timeout"]["Error"] == "ActionTimeout"
    assert "WaitTime 0.3 s" in rec.output["Timeout"]["Cause"]
    assert hang.cancelled.wait(5), "the provider was told to stop"


def test_exception_on_action_failure_false_continues_with_the_failed_status(
    engine: LocalEngine,
) -> None:
    rec = _run(
        engine,
        {
            "Act": {
                "Type": "Action",
                "ActionUrl": FLAKY,
                "Parameters": {"mode": "fail"},
                "ExceptionOnActionFailure": False,
                "ResultPath": "$.Act",
                "Next": "Check",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.Act.status", "StringEquals": "FAILED", "Next": "Cleanup"}
                ],
                "Default": "Done",
            },
            "Cleanup": {
                "Type": "Pass",
                "Parameters": {"cleaned": True},
                "ResultPath": "$.c",
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
        {},
    )
    assert rec.status is RunStatus.SUCCEEDED
    assert rec.output["Act"]["status"] == "FAILED"
    assert rec.output["Act"]["details"]["error"] == "disk full"
    assert rec.output["c"] == {"cleaned": True}


def test_runtime_errors_fail_the_run_and_are_not_caught(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Act": {
                "Type": "Action",
                "ActionUrl": ECHO,
                "Parameters": {"file.$": "$.input.missing"},
                "ResultPath": "$.Act",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
        {"input": {}},
    )
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None
    assert rec.error["error"] == "States.Runtime"
    assert "$.input.missing is absent" in rec.error["cause"]
    assert "parameter file.$" in rec.error["cause"]


def test_run_state_over_200_kb_fails(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Big": {
                "Type": "ExpressionEval",
                "Parameters": {"s.=": "'x' * 150000", "t.=": "'y' * 60000"},
                "ResultPath": "$.big",
                "End": True,
            }
        },
        {},
    )
    assert rec.status is RunStatus.FAILED
    assert "limits it to 204800 bytes" in rec.error["cause"]


def test_cancel_stops_a_running_action(engine: LocalEngine, hang: _Hang) -> None:
    defn = {
        "StartAt": "Slow",
        "States": {
            "Slow": {"Type": "Action", "ActionUrl": HANG, "ResultPath": "$.s", "End": True}
        },
    }
    run_id = engine.start_run(defn, {}, background=True)
    assert hang.started.wait(10)
    with pytest.raises(RunWaitTimeout) as info:
        engine.run_until_done(run_id, timeout=0.2)
    assert info.value.run_id == run_id
    assert engine.get_run(run_id).status is RunStatus.ACTIVE
    engine.cancel_run(run_id)
    rec = engine.run_until_done(run_id, timeout=10)
    assert rec.status is RunStatus.FAILED
    assert rec.details["code"] == "FlowCanceled"
    assert hang.cancelled.wait(5)
    assert _codes(engine, run_id)[-1] == "FlowCanceled"


def test_cancel_of_an_idle_run_is_immediate(engine: LocalEngine) -> None:
    defn = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    run_id = engine.start_run(defn, {})
    rec = engine.cancel_run(run_id)
    assert rec.status is RunStatus.FAILED
    assert rec.details["code"] == "FlowCanceled"
    assert engine.run_until_done(run_id).status is RunStatus.FAILED


def test_start_run_rejects_bad_definitions_inputs_and_reused_ids(engine: LocalEngine) -> None:
    good = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    with pytest.raises(FlowDefinitionError, match="StartAt"):
        engine.start_run({"StartAt": "Q", "States": good["States"]}, {})
    with pytest.raises(UsageError, match="JSON object"):
        engine.start_run(good, [1, 2])  # type: ignore[arg-type]
    engine.start_run(good, {}, run_id="fixed")
    with pytest.raises(UsageError, match="already used"):
        engine.start_run(good, {}, run_id="fixed")
    with pytest.raises(RunNotFound) as info:
        engine.get_run("nope")
    assert info.value.run_id == "nope"


def test_list_runs_filters_by_status(engine: LocalEngine) -> None:
    ok = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    bad = {"StartAt": "F", "States": {"F": {"Type": "Fail"}}}
    a = engine.start_run(ok, {})
    b = engine.start_run(bad, {})
    pending = engine.start_run(ok, {})
    engine.run_until_done(a)
    engine.run_until_done(b)
    assert {r.run_id for r in engine.list_runs()} == {a, b, pending}
    assert [r.run_id for r in engine.list_runs(status="FAILED")] == [b]
    assert [r.run_id for r in engine.list_runs(status=RunStatus.ACTIVE)] == [pending]
    assert engine.get_run(a).to_dict()["status"] == "SUCCEEDED"


def test_an_action_input_that_is_not_an_object_is_unable_to_run(engine: LocalEngine) -> None:
    rec = _run(
        engine,
        {
            "Act": {
                "Type": "Action",
                "ActionUrl": ECHO,
                "InputPath": "$.items",
                "ResultPath": "$.Act",
                "End": True,
            }
        },
        {"items": [1, 2]},
    )
    assert rec.status is RunStatus.FAILED
    assert rec.error == {
        "error": "ActionUnableToRun",
        "cause": "the action input must be a JSON object, found list",
    }


def test_an_engine_bug_fails_the_run_and_is_raised(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.local.step as engine_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("oops")

    monkeypatch.setattr(engine_module, "run_pass", broken)
    run_id = engine.start_run({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {})
    with pytest.raises(KeyError):
        engine.run_until_done(run_id)
    rec = engine.get_run(run_id)
    assert rec.status is RunStatus.FAILED
    assert rec.error is not None
    assert rec.error["cause"] == "local engine error: KeyError: 'oops'"
