"""Static checks of a Globus Flows definition.

:func:`check_definition` returns every finding as a line of text
(``"error: ..."`` or ``"warning: ..."``); the lead's static tests and the local
engine both use it. :func:`validate_definition` raises on the first error.

Errors: a missing or unknown ``StartAt``; a ``Next``/``Default``/``Catch``
target that does not exist; a state neither ``End`` nor with ``Next``; an
unknown state ``Type``; ``OutputPath`` (not allowed in Globus Flows); an
unreachable state; a malformed JSONPath or expression; a Choice rule without a
known operator; a Wait without ``Seconds``/``SecondsPath``.

Warnings: an Action (or ExpressionEval) whose ``ResultPath`` is ``$``,
explicitly or by default, which replaces the whole run state with the action's
result.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flows.errors import ExpressionError, FlowDefinitionError, JSONPathError
from flows.local.choice import COMPARISONS, TYPE_TESTS
from flows.local.expressions import validate_expression
from flows.local.paths import parse_path

__all__ = [
    "ERROR_NAMES",
    "STATE_TYPES",
    "Finding",
    "check_definition",
    "find_problems",
    "validate_definition",
]

#: State types the Globus Flows service (and the local engine) accepts.
STATE_TYPES = frozenset({"Action", "Pass", "Choice", "Wait", "Fail", "ExpressionEval"})
#: Error names a ``Catch`` may list.
ERROR_NAMES = frozenset(
    {"ActionUnableToRun", "ActionFailedException", "ActionTimeout", "States.ALL"}
)
_NEEDS_NEXT = frozenset({"Action", "Pass", "Wait", "ExpressionEval"})


@dataclass(frozen=True)
class Finding:
    """One problem found in a definition."""

    level: Literal["error", "warning"]
    message: str
    state: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = ".".join(p for p in (self.state, self.field) if p)
        return f"{self.level}: {where + ': ' if where else ''}{self.message}"


def find_problems(definition: Any) -> list[Finding]:
    """Every :class:`Finding` for ``definition``, errors and warnings, in state order."""
    if not isinstance(definition, Mapping):
        return [Finding("error", "a flow definition must be a JSON object")]
    states = definition.get("States")
    start = definition.get("StartAt")
    found: list[Finding] = []
    if not isinstance(states, Mapping) or not states:
        return [Finding("error", "States must be a non-empty object", field="States")]
    if not isinstance(start, str) or start not in states:
        found.append(Finding("error", f"StartAt {start!r} is not a state", field="StartAt"))
    for name, spec in states.items():
        found.extend(_check_state(str(name), spec, states))
    if isinstance(start, str) and start in states:
        reachable = _reachable(start, states)
        found.extend(
            Finding("error", "state is unreachable from StartAt", state=str(name))
            for name in states
            if name not in reachable
        )
    return found


def check_definition(definition: Any, *, warnings: bool = True) -> list[str]:
    """All findings for ``definition`` as text lines.

    Parameters
    ----------
    definition
        The flow definition (``StartAt``, ``States``).
    warnings
        Include warning-level findings (``ResultPath`` of ``$`` on an Action).

    Returns
    -------
    list of str
        ``"error: <state>.<field>: <message>"`` / ``"warning: ..."`` lines; empty
        when the definition is clean.
    """
    return [str(f) for f in find_problems(definition) if warnings or f.level == "error"]


def validate_definition(definition: Any) -> None:
    """Raise :class:`FlowDefinitionError` for the first error-level finding."""
    for finding in find_problems(definition):
        if finding.level == "error":
            raise FlowDefinitionError(finding.message, state=finding.state, field=finding.field)


def _targets(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if "Next" in spec:
        yield "Next", spec["Next"]
    if "Default" in spec:
        yield "Default", spec["Default"]
    for i, rule in enumerate(spec.get("Choices") or []):
        if isinstance(rule, Mapping):
            yield f"Choices[{i}].Next", rule.get("Next")
    for i, catcher in enumerate(spec.get("Catch") or []):
        if isinstance(catcher, Mapping):
            yield f"Catch[{i}].Next", catcher.get("Next")


def _reachable(start: str, states: Mapping[str, Any]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        spec = states.get(todo.pop())
        if not isinstance(spec, Mapping):
            continue
        for _, target in _targets(spec):
            if isinstance(target, str) and target in states and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _check_path(value: Any, name: str, field: str) -> Iterator[Finding]:
    try:
        parse_path(value)
    except JSONPathError as exc:
        yield Finding("error", exc.reason, state=name, field=field)


def _check_template(template: Any, name: str, field: str) -> Iterator[Finding]:
    if isinstance(template, list):
        for i, item in enumerate(template):
            yield from _check_template(item, name, f"{field}[{i}]")
    elif isinstance(template, Mapping):
        for key, value in template.items():
            here = f"{field}.{key}"
            if key.endswith(".$"):
                yield from _check_path(value, name, here)
            elif key.endswith(".="):
                try:
                    validate_expression(value)
                except ExpressionError as exc:
                    yield Finding("error", exc.reason, state=name, field=here)
            else:
                yield from _check_template(value, name, here)


def _check_rule(rule: Any, name: str, field: str) -> Iterator[Finding]:
    if not isinstance(rule, Mapping):
        yield Finding("error", "a rule must be an object", state=name, field=field)
        return
    if "And" in rule or "Or" in rule:
        key = "And" if "And" in rule else "Or"
        subs = rule[key]
        if not isinstance(subs, list) or not subs:
            yield Finding("error", f"{key} needs a non-empty list", state=name, field=field)
            return
        for i, sub in enumerate(subs):
            yield from _check_rule(sub, name, f"{field}.{key}[{i}]")
        return
    if "Not" in rule:
        yield from _check_rule(rule["Not"], name, f"{field}.Not")
        return
    if "Variable" not in rule:
        yield Finding("error", "a rule needs a Variable", state=name, field=field)
        return
    yield from _check_path(rule["Variable"], name, f"{field}.Variable")
    ops = [
        key
        for key in rule
        if key in TYPE_TESTS
        or key == "IsPresent"
        or key in COMPARISONS
        or (key.endswith("Path") and key[:-4] in COMPARISONS)
    ]
    if len(ops) != 1:
        yield Finding(
            "error",
            f"a rule needs exactly one known comparison operator, found {ops or 'none'}",
            state=name,
            field=field,
        )
    elif ops[0].endswith("Path"):
        yield from _check_path(rule[ops[0]], name, f"{field}.{ops[0]}")


def _check_state(name: str, spec: Any, states: Mapping[str, Any]) -> Iterator[Finding]:
    if not isinstance(spec, Mapping):
        yield Finding("error", "a state must be an object", state=name)
        return
    kind = spec.get("Type")
    if kind not in STATE_TYPES:
        yield Finding("error", f"unknown Type {kind!r} (one of {sorted(STATE_TYPES)})", state=name)
        return
    if "OutputPath" in spec:
        yield Finding("error", "OutputPath is not allowed; use ResultPath", state=name)
    for field, target in _targets(spec):
        if not isinstance(target, str) or target not in states:
            yield Finding("error", f"{target!r} is not a state", state=name, field=field)
    if kind in ("Choice", "Fail") and ("Next" in spec or "End" in spec):
        yield Finding("error", f"a {kind} state takes no Next or End", state=name)
    if kind in _NEEDS_NEXT:
        has_next, ends = "Next" in spec, spec.get("End") is True
        if has_next == ends:
            yield Finding("error", "needs exactly one of Next or End: true", state=name)
    for field in ("InputPath", "ResultPath", "SecondsPath"):
        if field in spec:
            yield from _check_path(spec[field], name, field)
    if "Parameters" in spec:
        if "InputPath" in spec:
            yield Finding("error", "Parameters and InputPath are exclusive", state=name)
        yield from _check_template(spec["Parameters"], name, "Parameters")
    for i, catcher in enumerate(spec.get("Catch") or []):
        field = f"Catch[{i}]"
        errors = catcher.get("ErrorEquals") if isinstance(catcher, Mapping) else None
        if not isinstance(errors, list) or not errors:
            yield Finding("error", "ErrorEquals must be a non-empty list", state=name, field=field)
        else:
            for err in errors:
                if err not in ERROR_NAMES:
                    yield Finding(
                        "error",
                        f"unknown error name {err!r} (one of {sorted(ERROR_NAMES)})",
                        state=name,
                        field=f"{field}.ErrorEquals",
                    )
        if isinstance(catcher, Mapping) and "ResultPath" in catcher:
            yield from _check_path(catcher["ResultPath"], name, f"{field}.ResultPath")
    if kind == "Action":
        if not isinstance(spec.get("ActionUrl"), str):
            yield Finding("error", "ActionUrl (a URL string) is required", state=name)
        wait = spec.get("WaitTime", 300)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait <= 0:
            yield Finding("error", "WaitTime must be a positive number of seconds", state=name)
    if kind in ("Action", "ExpressionEval") and spec.get("ResultPath", "$") == "$":
        yield Finding(
            "warning",
            "ResultPath is '$' (explicit or by default): the result replaces the whole run state",
            state=name,
            field="ResultPath",
        )
    if kind == "ExpressionEval" and "Parameters" not in spec:
        yield Finding("error", "ExpressionEval needs Parameters", state=name)
    if kind == "Choice":
        choices = spec.get("Choices")
        if not isinstance(choices, list) or not choices:
            yield Finding("error", "Choices must be a non-empty list", state=name)
        else:
            for i, rule in enumerate(choices):
                yield from _check_rule(rule, name, f"Choices[{i}]")
                if not isinstance(rule, Mapping) or "Next" not in rule:
                    yield Finding(
                        "error", "each choice needs Next", state=name, field=f"Choices[{i}]"
                    )
    if kind == "Wait" and ("Seconds" in spec) == ("SecondsPath" in spec):
        yield Finding(
            "error",
            "needs exactly one of Seconds or SecondsPath (Timestamp is not supported locally)",
            state=name,
        )
    if kind == "Wait" and "Seconds" in spec:
        seconds = spec["Seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            yield Finding("error", "Seconds must be a number >= 0", state=name, field="Seconds")
