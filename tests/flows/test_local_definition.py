"""Static checks of flow definitions (``check_definition``)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flows.errors import FlowDefinitionError
from flows.local.definition import check_definition, find_problems, validate_definition

GOOD: dict[str, Any] = {
    "StartAt": "Transfer",
    "States": {
        "Transfer": {
            "Type": "Action",
            "ActionUrl": "https://transfer.actions.globus.org/transfer",
            "Parameters": {"source_endpoint.$": "$.input.src", "DATA": []},
            "ResultPath": "$.Transfer",
            "WaitTime": 600,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Failed"}],
            "Next": "Check",
        },
        "Check": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.Transfer.status", "StringEquals": "SUCCEEDED", "Next": "Name"},
                {
                    "And": [
                        {"Variable": "$.input.n", "IsPresent": True},
                        {"Variable": "$.input.n", "NumericGreaterThanPath": "$.input.m"},
                    ],
                    "Next": "Pause",
                },
            ],
            "Default": "Failed",
        },
        "Name": {
            "Type": "ExpressionEval",
            "Parameters": {"name.=": "pathsplit(input.path)[1]"},
            "ResultPath": "$.name",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
        "Failed": {"Type": "Fail", "Error": "TransferFailed", "Cause": "see $.Error"},
    },
}


def _broken(mutate: Any) -> list[str]:
    defn = copy.deepcopy(GOOD)
    mutate(defn)
    return check_definition(defn)


def test_a_good_definition_has_no_findings() -> None:
    assert check_definition(GOOD) == []
    validate_definition(GOOD)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d.update(StartAt="Nowhere"),
            "error: StartAt: StartAt 'Nowhere' is not a state",
        ),
        (
            lambda d: d["States"]["Done"].update(Next="Gone"),
            "error: Done.Next: 'Gone' is not a state",
        ),
        (
            lambda d: d["States"]["Check"].update(Default="Gone"),
            "error: Check.Default: 'Gone' is not a state",
        ),
        (
            lambda d: d["States"]["Transfer"]["Catch"][0].update(Next="Gone"),
            "error: Transfer.Catch[0].Next: 'Gone' is not a state",
        ),
        (
            lambda d: d["States"]["Transfer"]["Catch"][0].update(ErrorEquals=["Oops"]),
            "error: Transfer.Catch[0].ErrorEquals: unknown error name 'Oops'",
        ),
        (
            lambda d: d["States"]["Done"].pop("End"),
            "error: Done: needs exactly one of Next or End",
        ),
        (lambda d: d["States"]["Done"].update(Type="Map"), "error: Done: unknown Type 'Map'"),
        (
            lambda d: d["States"]["Done"].update(OutputPath="$.x"),
            "error: Done: OutputPath is not allowed",
        ),
        (
            lambda d: d["States"].update(Orphan={"Type": "Pass", "End": True}),
            "error: Orphan: state is unreachable from StartAt",
        ),
        (
            lambda d: d["States"]["Transfer"]["Parameters"].update({"x.$": "input.src"}),
            "error: Transfer.Parameters.x.$: a JSONPath must be a string starting with '$'",
        ),
        (
            lambda d: d["States"]["Name"]["Parameters"].update({"y.=": "open('f')"}),
            "error: Name.Parameters.y.=: only these functions may be called",
        ),
        (
            lambda d: d["States"]["Check"]["Choices"][0].pop("StringEquals"),
            "error: Check.Choices[0]: a rule needs exactly one known comparison operator",
        ),
        (
            lambda d: d["States"]["Pause"].pop("Seconds"),
            "error: Pause: needs exactly one of Seconds or SecondsPath",
        ),
        (
            lambda d: d["States"]["Transfer"].pop("ActionUrl"),
            "error: Transfer: ActionUrl (a URL string) is required",
        ),
        (
            lambda d: d["States"]["Transfer"].update(WaitTime=0),
            "error: Transfer: WaitTime must be a positive number",
        ),
        (
            lambda d: d["States"]["Transfer"].update(InputPath="$.input"),
            "error: Transfer: Parameters and InputPath are exclusive",
        ),
    ],
)
def test_each_error_is_reported(mutate: Any, expected: str) -> None:
    findings = _broken(mutate)
    assert any(f.startswith(expected) for f in findings), findings


def test_result_path_dollar_on_an_action_is_a_warning_only() -> None:
    defn = copy.deepcopy(GOOD)
    del defn["States"]["Transfer"]["ResultPath"]  # default is $
    findings = check_definition(defn)
    assert findings == [
        "warning: Transfer.ResultPath: ResultPath is '$' (explicit or by default):"
        " the result replaces the whole run state"
    ]
    assert check_definition(defn, warnings=False) == []
    validate_definition(defn)  # warnings do not raise


def test_validate_definition_raises_with_state_and_field() -> None:
    defn = copy.deepcopy(GOOD)
    defn["States"]["Done"]["Next"] = "Gone"
    with pytest.raises(FlowDefinitionError) as info:
        validate_definition(defn)
    assert (info.value.state, info.value.field) == ("Done", "Next")
    assert isinstance(info.value, ValueError)


def test_top_level_shape_errors() -> None:
    assert check_definition([]) == ["error: a flow definition must be a JSON object"]
    assert check_definition({"StartAt": "A", "States": {}}) == [
        "error: States: States must be a non-empty object"
    ]
    assert [f.level for f in find_problems({"StartAt": "A", "States": {"B": 1}})] == [
        "error",
        "error",
    ]


def test_choice_and_fail_states_take_no_next() -> None:
    defn = copy.deepcopy(GOOD)
    defn["States"]["Failed"]["Next"] = "Done"
    assert "error: Failed: a Fail state takes no Next or End" in check_definition(defn)
