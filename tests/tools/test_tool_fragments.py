"""Each tool's flow fragment: current URLs, raising actions, Catch into its own failure state."""

from __future__ import annotations

from typing import Any

import pytest
from gladier import GladierBaseTool

import tools
from flows.xpcs.schema import input_schema
from tools._states import COMPUTE_V3_URL, FAILURE_PATH, FLOW_FAILED

ALL_TOOLS = [getattr(tools, name) for name in tools.__all__ if name[0].isupper()]


@pytest.mark.parametrize("tool", ALL_TOOLS, ids=lambda t: t.__name__)
def test_fragment_actions_raise_and_catch(tool: type[GladierBaseTool]) -> None:
    states: dict[str, Any] = tool.flow_definition["States"]
    assert tool.flow_definition["StartAt"] in states
    actions = [n for n, s in states.items() if s["Type"] == "Action"]
    assert actions
    for name in actions:
        state = states[name]
        assert state["ExceptionOnActionFailure"] is True
        assert state["ResultPath"] == f"$.{name}"
        failed = state["Catch"][0]["Next"]
        assert failed in states  # the failure state travels with the tool
        assert states[failed]["ResultPath"] == FAILURE_PATH
        assert states[failed]["Next"] == FLOW_FAILED
        if state["ActionUrl"] == COMPUTE_V3_URL:
            assert tool.compute_functions
            tasks = state["Parameters"].get("tasks", [])
            for task in tasks:
                assert set(task) == {"function_id.$", "kwargs"}


@pytest.mark.parametrize("tool", ALL_TOOLS, ids=lambda t: t.__name__)
def test_required_and_default_input_is_in_the_schema(tool: type[GladierBaseTool]) -> None:
    batch = tool.__name__.startswith("Batch")
    live = tool.__name__.endswith("Live")
    declared = set(input_schema(batch=batch, live=live)["properties"]["input"]["properties"])
    assert set(tool.required_input) <= declared
    assert set(tool.flow_input) <= declared
