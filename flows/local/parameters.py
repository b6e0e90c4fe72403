"""Resolving a state's ``Parameters`` template against the run state.

A key ending in ``.$`` takes the value at a JSONPath (``"file.$": "$.input.file"``),
a key ending in ``.=`` takes the value of an expression
(``"name.=": "pathsplit(input.file)[1]"``); the suffix is dropped from the
resolved key. Other values are copied, recursing into objects and lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.errors import ExpressionError, JSONPathError
from flows.local.expressions import evaluate
from flows.local.paths import get_path

__all__ = ["resolve_parameters"]


def resolve_parameters(template: Any, state: Mapping[str, Any], *, where: str = "") -> Any:
    """Resolve ``.$`` references and ``.=`` expressions in ``template``.

    Parameters
    ----------
    template
        The ``Parameters`` object of a state (or any JSON value inside it).
    state
        The run state the references and expressions read (including ``_context``).
    where
        Prefix for error messages (e.g. the state name), kept by recursion.

    Returns
    -------
    object
        The resolved JSON value.

    Raises
    ------
    JSONPathError, ExpressionError
        When a reference is absent or an expression fails; the message names
        the parameter key.
    """
    if isinstance(template, list):
        return [
            resolve_parameters(item, state, where=f"{where}[{i}]")
            for i, item in enumerate(template)
        ]
    if not isinstance(template, Mapping):
        return template
    resolved: dict[str, Any] = {}
    for key, value in template.items():
        here = f"{where}.{key}" if where else key
        if key.endswith(".$"):
            if not isinstance(value, str):
                raise JSONPathError(f"parameter {here} must be a JSONPath string", path=str(value))
            try:
                resolved[key[:-2]] = get_path(state, value)
            except JSONPathError as exc:
                raise JSONPathError(f"parameter {here}: {exc.reason}", path=value) from None
        elif key.endswith(".="):
            try:
                resolved[key[:-2]] = evaluate(value, state)
            except ExpressionError as exc:
                raise ExpressionError(
                    f"parameter {here}: {exc.reason}", expression=str(value)
                ) from None
        else:
            resolved[key] = resolve_parameters(value, state, where=here)
    return resolved
