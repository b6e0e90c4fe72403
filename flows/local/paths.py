"""The JSONPath subset used by Globus Flows definitions.

Supported forms: ``$`` (the whole state), ``$.a.b`` (object members),
``$.a[0].b`` (list indices, negative allowed when reading) and
``$['a key']`` (quoted member names). Wildcards, filters and slices are not
part of what Globus Flows accepts in ``.$`` references and ``ResultPath``, so
they are rejected with an error naming the path.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from flows.errors import JSONPathError

__all__ = ["del_path", "get_path", "has_path", "parse_path", "set_path"]

Step = str | int

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r"""\[(?:'([^']*)'|"([^"]*)")\]""")


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[Step, ...]:
    """Split a JSONPath into member names (``str``) and list indices (``int``).

    Parameters
    ----------
    path
        A JSONPath such as ``"$.Correlate.details.results[0].output"``.

    Returns
    -------
    tuple of str or int
        The steps from the root; ``()`` for ``"$"``.

    Raises
    ------
    JSONPathError
        When the path does not start with ``$`` or uses syntax outside the subset.
    """
    if not isinstance(path, str) or not path.startswith("$"):
        raise JSONPathError("a JSONPath must be a string starting with '$'", path=str(path))
    steps: list[Step] = []
    pos = 1
    while pos < len(path):
        char = path[pos]
        if char == ".":
            match = _NAME.match(path, pos + 1)
            if not match:
                raise JSONPathError(f"expected a member name at character {pos + 1}", path=path)
            steps.append(match.group(0))
            pos = match.end()
        elif char == "[":
            index = _INDEX.match(path, pos)
            if index:
                steps.append(int(index.group(1)))
                pos = index.end()
                continue
            quoted = _QUOTED.match(path, pos)
            if not quoted:
                raise JSONPathError(
                    f"unsupported bracket expression at character {pos} (only [n] and ['name'])",
                    path=path,
                )
            steps.append(quoted.group(1) if quoted.group(1) is not None else quoted.group(2))
            pos = quoted.end()
        else:
            raise JSONPathError(f"unexpected {char!r} at character {pos}", path=path)
    return tuple(steps)


def _describe(steps: tuple[Step, ...]) -> str:
    text = "$"
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else f".{step}"
    return text


def get_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``.

    Raises
    ------
    JSONPathError
        When a member or index along the path is absent; the message names the
        first missing step.
    """
    value = document
    steps = parse_path(path)
    for i, step in enumerate(steps):
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                raise JSONPathError(
                    f"{_describe(steps[: i + 1])} is absent (no list element {step})", path=path
                )
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                raise JSONPathError(f"{_describe(steps[: i + 1])} is absent", path=path)
            value = value[step]
    return value


def has_path(document: Any, path: str) -> bool:
    """Whether ``path`` exists in ``document`` (a malformed path still raises)."""
    parse_path(path)
    try:
        get_path(document, path)
    except JSONPathError:
        return False
    return True


def set_path(document: Any, path: str, value: Any) -> Any:
    """A copy of ``document`` with ``value`` stored at ``path``.

    Like Globus Flows ``ResultPath``: ``"$"`` replaces the whole document and
    missing intermediate objects are created. Setting a list element requires
    the element to exist (lists are never grown implicitly).

    Returns
    -------
    object
        The new document; ``document`` itself is not modified.
    """
    steps = parse_path(path)
    if not steps:
        return copy.deepcopy(value)
    root = copy.deepcopy(document) if isinstance(document, (dict, list)) else {}
    node: Any = root
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                raise JSONPathError(
                    f"cannot set {_describe(steps[: i + 1])}: no such list element", path=path
                )
            if last:
                node[step] = copy.deepcopy(value)
            else:
                if not isinstance(node[step], (dict, list)):
                    node[step] = {}
                node = node[step]
        else:
            if not isinstance(node, dict):
                raise JSONPathError(
                    f"cannot set {_describe(steps[: i + 1])}: parent is not an object", path=path
                )
            if last:
                node[step] = copy.deepcopy(value)
            else:
                if not isinstance(node.get(step), (dict, list)):
                    node[step] = {}
                node = node[step]
    return root


def del_path(document: Any, path: str) -> Any:
    """A copy of ``document`` without the member at ``path`` (absent is not an error)."""
    steps = parse_path(path)
    if not steps:
        return {}
    root = copy.deepcopy(document)
    node: Any = root
    for step in steps[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return root
    last = steps[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node):
        del node[last]
    return root
