"""The ``.=`` expression language of Globus Flows, evaluated safely.

An expression is parsed with :mod:`ast` and walked by a small interpreter that
accepts only a whitelist of node types; nothing is ever passed to ``eval``.
Following the Globus Flows documentation ("Expressions" in *Authoring Flows*):

* names are properties of the run state (``foo``, ``object_val.sub_val1``,
  ``items[0]``, ``_context.run_id``); dotted access and subscripts index into
  objects and lists like Python;
* literals (strings in single or double quotes, numbers, ``True``/``False``/
  ``None``, lists, tuples and objects), arithmetic (``+ - * / // %`` and
  ``**``), ``+`` on strings and lists concatenates, comparisons (``== != < <=
  > >= in not in``), ``and``/``or``/``not`` and ``a if cond else b``;
* the functions Globus documents: ``pathsplit(path)`` -> ``[head, tail]``,
  ``is_present(name)`` (whether a dotted property path exists in the state),
  ``getattr(obj, name, default)``, and the Python built-ins ``len``, ``str``,
  ``int``, ``float``, ``bool``, ``abs``, ``min``, ``max``, ``round``, ``sum``.

Anything else (attribute access on non-objects, method calls, lambdas,
comprehensions, imports, dunder names ...) raises :class:`ExpressionError`
naming the expression.
"""

from __future__ import annotations

import ast
import operator
import posixpath
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from flows.errors import ExpressionError, JSONPathError
from flows.local.paths import has_path

__all__ = ["FUNCTIONS", "evaluate", "validate_expression"]

#: Longest string or list an expression may build (the Globus run state limit).
_MAX_SIZE = 200 * 1024
_MAX_EXPONENT = 1024
_MAX_BITS = 65536


def _pathsplit(path: str) -> list[str]:
    head, tail = posixpath.split(str(path))
    return [head, tail]


_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sum": sum,
    "pathsplit": _pathsplit,
}

#: Names of the functions an expression may call.
FUNCTIONS: frozenset[str] = frozenset({*_BUILTINS, "is_present", "getattr"})

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
}


class _Reject(Exception):
    """Internal: the expression leaves the supported subset."""


@lru_cache(maxsize=512)
def _parse(expression: str) -> ast.expr:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", expression=expression) from None
    _check(tree.body, expression)
    return tree.body


def _check(node: ast.AST, expression: str) -> None:
    """Static whitelist check over the whole tree."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if not isinstance(sub.func, ast.Name) or sub.func.id not in FUNCTIONS:
                raise ExpressionError(
                    f"only these functions may be called: {', '.join(sorted(FUNCTIONS))}",
                    expression=expression,
                )
            if sub.keywords:
                raise ExpressionError("keyword arguments are not supported", expression=expression)
        elif isinstance(sub, (ast.Name, ast.Attribute)):
            name = sub.id if isinstance(sub, ast.Name) else sub.attr
            if name.startswith("__"):
                raise ExpressionError(f"name {name!r} is not allowed", expression=expression)
        elif not isinstance(
            sub,
            (
                ast.Constant,
                ast.Subscript,
                ast.Slice,
                ast.BinOp,
                ast.UnaryOp,
                ast.BoolOp,
                ast.Compare,
                ast.IfExp,
                ast.List,
                ast.Tuple,
                ast.Dict,
                ast.Load,
                ast.operator,
                ast.unaryop,
                ast.boolop,
                ast.cmpop,
            ),
        ):
            raise ExpressionError(
                f"{type(sub).__name__} is not part of the expression language",
                expression=expression,
            )
        if isinstance(sub, ast.BinOp) and type(sub.op) not in _BINOPS:
            raise ExpressionError(
                f"operator {type(sub.op).__name__} is not supported", expression=expression
            )
        if isinstance(sub, ast.Dict) and any(key is None for key in sub.keys):
            raise ExpressionError("'**' unpacking is not supported", expression=expression)


def validate_expression(expression: str) -> None:
    """Raise :class:`ExpressionError` when ``expression`` leaves the supported subset.

    Used by the static definition checks; evaluation is not attempted.
    """
    _parse(expression)


def evaluate(expression: str, names: Mapping[str, Any]) -> Any:
    """Evaluate a ``.=`` expression against the run state.

    Parameters
    ----------
    expression
        The expression text, e.g. ``"input.path + '/' + pathsplit(file)[1]"``.
    names
        The run state (with ``_context``); top-level names are its members.

    Returns
    -------
    object
        The JSON-like value of the expression.

    Raises
    ------
    ExpressionError
        When the expression is outside the supported subset, names something
        absent from the state, or fails while evaluating (the message keeps
        the underlying reason).
    """
    if not isinstance(expression, str):
        raise ExpressionError("an expression must be a string", expression=repr(expression))
    tree = _parse(expression)
    try:
        return _Evaluator(names, expression).visit(tree)
    except ExpressionError:
        raise
    except _Reject as exc:
        raise ExpressionError(str(exc), expression=expression) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}", expression=expression) from None


class _Evaluator:
    def __init__(self, names: Mapping[str, Any], expression: str) -> None:
        self.names = names
        self.expression = expression

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise _Reject(f"{type(node).__name__} is not part of the expression language")
        return self._bounded(method(node))

    @staticmethod
    def _bounded(value: Any) -> Any:
        if isinstance(value, (str, list, tuple, dict)) and len(value) > _MAX_SIZE:
            raise _Reject(f"result longer than {_MAX_SIZE} items")
        return value

    def visit_Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise _Reject(f"literal of type {type(node.value).__name__} is not supported")
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id not in self.names:
            raise _Reject(f"name {node.id!r} is not present in the run state")
        return self.names[node.id]

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        base = self.visit(node.value)
        if not isinstance(base, Mapping):
            raise _Reject(f"'.{node.attr}' applied to a {type(base).__name__}, not an object")
        if node.attr not in base:
            raise _Reject(f"property {node.attr!r} is not present")
        return base[node.attr]

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        base = self.visit(node.value)
        if not isinstance(base, (Mapping, list, tuple, str)):
            raise _Reject(f"cannot index a {type(base).__name__}")
        if isinstance(node.slice, ast.Slice):
            if isinstance(base, Mapping):
                raise _Reject("cannot slice an object")
            parts = [
                None if part is None else self.visit(part)
                for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return base[slice(*parts)]
        key = self.visit(node.slice)
        return base[key]

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left = self.visit(node.left)
        right = self.visit(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)):
            if abs(right) > _MAX_EXPONENT:
                raise _Reject(f"exponent larger than {_MAX_EXPONENT}")
            if isinstance(left, int) and left.bit_length() * abs(right) > _MAX_BITS:
                raise _Reject(f"integer result larger than {_MAX_BITS} bits")
        if isinstance(node.op, ast.Mult):
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list))
                    and isinstance(count, int)
                    and len(seq) * count > _MAX_SIZE
                ):
                    raise _Reject(f"result longer than {_MAX_SIZE} items")
        return _BINOPS[type(node.op)](left, right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARY[type(node.op)](self.visit(node.operand))

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.visit(operand)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comparator)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.visit(elt) for elt in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> list[Any]:
        return [self.visit(elt) for elt in node.elts]

    def visit_Dict(self, node: ast.Dict) -> dict[Any, Any]:
        return {
            self.visit(key): self.visit(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # guaranteed by _check
        name = node.func.id
        args = [self.visit(arg) for arg in node.args]
        if name == "is_present":
            if len(args) != 1 or not isinstance(args[0], str):
                raise _Reject("is_present takes one string: a dotted property path")
            path = args[0] if args[0].startswith("$") else f"$.{args[0]}"
            try:
                return has_path(self.names, path)
            except JSONPathError as exc:
                raise _Reject(str(exc)) from None
        if name == "getattr":
            if len(args) not in (2, 3) or not isinstance(args[1], str):
                raise _Reject("getattr takes (object, name) or (object, name, default)")
            default = args[2] if len(args) == 3 else None
            return args[0].get(args[1], default) if isinstance(args[0], Mapping) else default
        return _BUILTINS[name](*args)
