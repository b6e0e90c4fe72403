"""JSONPath subset and Parameters resolution (``.$`` references, ``.=`` expressions)."""

from __future__ import annotations

from typing import Any

import pytest

from flows.errors import ExpressionError, JSONPathError
from flows.local.parameters import resolve_parameters
from flows.local.paths import del_path, get_path, has_path, parse_path, set_path

STATE: dict[str, Any] = {
    "input": {"files": [{"name": "a.h5", "size": 3}, {"name": "b.h5", "size": 5}]},
    "Correlate": {"details": {"results": [{"output": {"g2": [1.5, 1.2]}}]}},
    "_context": {"run_id": "r-1"},
    "odd key": 7,
}


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", ()),
        ("$.a.b", ("a", "b")),
        ("$.a[0].b", ("a", 0, "b")),
        ("$._context.run_id", ("_context", "run_id")),
        ("$['odd key']", ("odd key",)),
        ("$.a[-1]", ("a", -1)),
    ],
)
def test_parse_path(path: str, steps: tuple[object, ...]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize("bad", ["a.b", "$.", "$.a[*]", "$..a", "$.a[?(@.x)]", "$[1:2]"])
def test_malformed_paths_are_rejected_with_the_path_named(bad: str) -> None:
    with pytest.raises(JSONPathError) as info:
        parse_path(bad)
    assert info.value.path == bad
    assert repr(bad) in str(info.value)


def test_get_path_reads_nested_values() -> None:
    assert get_path(STATE, "$.Correlate.details.results[0].output.g2[1]") == 1.2
    assert get_path(STATE, "$.input.files[-1].name") == "b.h5"
    assert get_path(STATE, "$._context.run_id") == "r-1"
    assert get_path(STATE, "$['odd key']") == 7
    assert get_path(STATE, "$") is STATE


def test_get_path_names_the_first_missing_step() -> None:
    with pytest.raises(JSONPathError, match=r"\$\.Correlate\.detail is absent"):
        get_path(STATE, "$.Correlate.detail.results")
    with pytest.raises(JSONPathError, match="no list element 2"):
        get_path(STATE, "$.input.files[2]")
    assert has_path(STATE, "$.input.files[1].size")
    assert not has_path(STATE, "$.input.files[9]")


def test_set_path_creates_intermediate_objects_and_copies() -> None:
    doc = {"a": 1}
    new = set_path(doc, "$.x.y.z", [1])
    assert new == {"a": 1, "x": {"y": {"z": [1]}}}
    assert doc == {"a": 1}  # not modified
    assert set_path(new, "$.x.y.z[0]", 9)["x"]["y"]["z"] == [9]
    assert set_path(doc, "$", {"b": 2}) == {"b": 2}
    with pytest.raises(JSONPathError, match="no such list element"):
        set_path(new, "$.x.y.z[3]", 0)
    assert del_path(new, "$.x.y") == {"a": 1, "x": {}}


def test_resolve_parameters_references_expressions_and_literals() -> None:
    template = {
        "files.$": "$.input.files",
        "first.=": "input.files[0].name",
        "total.=": "input.files[0].size + input.files[1].size",
        "nested": {"run.$": "$._context.run_id", "literal": "$.not.a.reference"},
        "items": [{"g2.$": "$.Correlate.details.results[0].output.g2"}, 3],
    }
    assert resolve_parameters(template, STATE) == {
        "files": STATE["input"]["files"],
        "first": "a.h5",
        "total": 8,
        "nested": {"run": "r-1", "literal": "$.not.a.reference"},
        "items": [{"g2": [1.5, 1.2]}, 3],
    }


def test_resolve_parameters_errors_name_the_parameter() -> None:
    with pytest.raises(JSONPathError, match=r"parameter nested\.where\.\$: \$\.nowhere is absent"):
        resolve_parameters({"nested": {"where.$": "$.nowhere"}}, STATE)
    with pytest.raises(ExpressionError, match=r"parameter bad\.=: name 'nothing' is not present"):
        resolve_parameters({"bad.=": "nothing + 1"}, STATE)


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("run7.h5", "*.h5", True),
        ("run7.h5.bak", "*.h5", False),
        ("a*b", "a\\*b", True),  # escaped star is literal
        ("axb", "a\\*b", False),
        ("a.b", "a?b", False),  # only * is a wildcard
        ("x[1]", "x[1]", True),
    ],
)
def test_string_matches(value: str, pattern: str, expected: bool) -> None:
    from flows.local.choice import rule_matches

    rule = {"Variable": "$.v", "StringMatches": pattern}
    assert rule_matches(rule, {"v": value}) is expected
