"""Choice-state rules: comparison operators, ``And``/``Or``/``Not``.

Operators follow the Amazon States Language that Globus Flows builds on:
``StringEquals``, ``StringLessThan``, ``StringGreaterThan``,
``StringLessThanEquals``, ``StringGreaterThanEquals``, ``StringMatches``
(``*`` wildcard, ``\\*`` a literal star), the ``Numeric*`` family,
``BooleanEquals``, the type tests ``IsNull``, ``IsPresent``, ``IsNumeric``,
``IsString``, ``IsBoolean``, and a ``...Path`` variant of every comparison
(the right-hand side is read from the state). A rule whose Variable (or
right-hand path) is absent, or whose values have the wrong type, does not
match.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from flows.errors import FlowDefinitionError
from flows.local.paths import get_path, has_path

__all__ = ["COMPARISONS", "TYPE_TESTS", "choice_next", "rule_matches"]


def _matches(value: str, pattern: str) -> bool:
    """``StringMatches``: ``*`` matches any run of characters, ``\\*`` a literal star."""
    parts = re.split(r"(\\\*|\*)", pattern)
    regex = "".join(
        ".*" if part == "*" else re.escape("*") if part == "\\*" else re.escape(part)
        for part in parts
    )
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}

_KINDS: dict[str, Callable[[Any], bool]] = {
    "String": lambda v: isinstance(v, str),
    "Numeric": _is_number,
}

#: Comparison operators (without the ``Path`` suffix) -> (type check, comparison).
COMPARISONS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, Any], bool]]] = {
    f"{kind}{name}": (check, compare)
    for kind, check in _KINDS.items()
    for name, compare in _ORDER.items()
}
COMPARISONS["BooleanEquals"] = (lambda v: isinstance(v, bool), operator.eq)
COMPARISONS["StringMatches"] = (lambda v: isinstance(v, str), lambda v, p: _matches(v, p))

#: Type-test operators (their value is ``true`` or ``false``).
TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
}


def rule_matches(rule: Mapping[str, Any], state: Any, *, where: str = "Choices") -> bool:
    """Whether a Choice rule holds for the run state.

    Raises
    ------
    FlowDefinitionError
        When the rule has no known operator.
    """
    if "And" in rule:
        return all(rule_matches(sub, state, where=where) for sub in rule["And"])
    if "Or" in rule:
        return any(rule_matches(sub, state, where=where) for sub in rule["Or"])
    if "Not" in rule:
        return not rule_matches(rule["Not"], state, where=where)
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise FlowDefinitionError("a rule needs a Variable (a JSONPath)", state=where)
    if "IsPresent" in rule:
        return has_path(state, variable) == bool(rule["IsPresent"])
    present = has_path(state, variable)
    for op, test in TYPE_TESTS.items():
        if op in rule:
            return present and test(get_path(state, variable)) == bool(rule[op])
    for key, expected in rule.items():
        base = key[:-4] if key.endswith("Path") else key
        if base not in COMPARISONS:
            continue
        check, compare = COMPARISONS[base]
        if not present:
            return False
        if key.endswith("Path") and not has_path(state, expected):
            return False
        value = get_path(state, variable)
        other = get_path(state, expected) if key.endswith("Path") else expected
        return check(value) and check(other) and bool(compare(value, other))
    raise FlowDefinitionError(f"rule {dict(rule)!r} has no known comparison operator", state=where)


def choice_next(spec: Mapping[str, Any], state: Any, *, name: str) -> str | None:
    """The ``Next`` of the first matching choice, else ``Default`` (``None`` if absent)."""
    for i, rule in enumerate(spec.get("Choices", [])):
        if rule_matches(rule, state, where=f"{name}.Choices[{i}]"):
            return str(rule["Next"])
    default = spec.get("Default")
    return None if default is None else str(default)
