"""The ``.=`` expression language: the documented subset works, anything else is refused."""

from __future__ import annotations

import pytest

from flows.errors import ExpressionError
from flows.local.expressions import evaluate, validate_expression

STATE = {
    "foo": "bar",
    "object_val": {"sub_val1": "embedded", "sub_val2": "also_embedded"},
    "n": 7,
    "items": [3, 1, 2],
    "input": {"path": "/data/run7/frames.h5", "flag": True},
    "_context": {"run_id": "r-9", "username": "beamline"},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("foo + ' ' + object_val.sub_val1", "bar embedded"),  # the Globus docs example
        ("n * 2 + 1", 15),
        ("n / 2", 3.5),
        ("n // 2", 3),
        ("n % 4", 3),
        ("2 ** 10", 1024),
        ("-n", -7),
        ("items + [4]", [3, 1, 2, 4]),
        ("items[0]", 3),
        ("items[-1]", 2),
        ("items[1:]", [1, 2]),
        ("object_val['sub_val2']", "also_embedded"),
        ("n > 5 and n < 10", True),
        ("n == 7 or missing_is_not_evaluated", True),
        ("not input.flag", False),
        ("1 < n <= 7", True),
        ("'bar' in foo", True),
        ("3 not in items", False),
        ("'big' if n > 5 else 'small'", "big"),
        ("pathsplit(input.path)", ["/data/run7", "frames.h5"]),
        ("pathsplit(input.path)[1]", "frames.h5"),
        ("is_present('object_val.sub_val1')", True),
        ("is_present('object_val.nope')", False),
        ("getattr(object_val, 'nope', 'fallback')", "fallback"),
        ("getattr(object_val, 'sub_val1')", "embedded"),
        ("len(items) + int('3') + float('0.5')", 6.5),
        ("str(n) + '!'", "7!"),
        ("max(items) - min(items) + sum(items) + abs(-1) + round(2.6)", 12),
        ("_context.run_id", "r-9"),
        ("{'a': n, 'b': [foo, None, True]}", {"a": 7, "b": ["bar", None, True]}),
        ("(1, 2)", [1, 2]),
    ],
)
def test_supported_expressions(expression: str, expected: object) -> None:
    assert evaluate(expression, STATE) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('true')", "only these functions may be called"),
        ("open('/etc/passwd')", "only these functions may be called"),
        ("foo.upper()", "only these functions may be called"),
        ("().__class__.__bases__", "not allowed"),
        ("object_val.__class__", "not allowed"),
        ("(lambda: 1)()", "only these functions may be called"),
        ("[x for x in items]", "ListComp is not part"),
        ("{**object_val}", "unpacking is not supported"),
        ("f'{foo}'", "JoinedStr is not part"),
        ("n := 3", "syntax error"),
        ("len(items, key=1)", "keyword arguments"),
        ("foo.sub", "applied to a str"),
        ("undefined_name + 1", "name 'undefined_name' is not present"),
        ("'a' * 10 ** 9", "result longer than"),
        ("(10 ** 1000) ** 1000", "integer result larger than"),
        ("2 ** 5000", "exponent larger than"),
        ("items[10]", "IndexError"),
        ("1 / 0", "ZeroDivisionError"),
        ("n & 1", "operator BitAnd is not supported"),
    ],
)
def test_unsafe_or_unsupported_expressions_are_refused(expression: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(expression, STATE)
    assert info.value.expression == expression
    assert reason in str(info.value)


def test_validate_expression_is_static() -> None:
    validate_expression("undefined_but_syntactically_fine + 1")
    with pytest.raises(ExpressionError, match="only these functions"):
        validate_expression("exec('x')")
