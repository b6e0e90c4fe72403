"""Validation of XPCS flow input, before any transfer starts.

:func:`validate_flow_input` checks the input against the very schema that is
deployed with the flow (:func:`flows.xpcs.schema.input_schema`), then what a
schema cannot say: the correlation options are accepted by
:class:`~xpcs_kernel.options.CorrelationOptions` (``end > begin``), every
path lies inside the deployment's allowed roots of its collection, the raw
file and the q-map have different names, the facility is a known one, and for
a batch the dataset names are unique and the derived plan matches the
datasets. Every error is a :class:`FlowInputError` naming the field as a JSON
pointer (``/input/options/stride``) and what was expected.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from flows.errors import FlowInputError
from flows.xpcs.batch import check_plan
from flows.xpcs.schema import input_schema
from xpcs_kernel.errors import UsageError
from xpcs_kernel.options import CorrelationOptions

__all__ = ["FlowInputError", "check_allowed_path", "validate_flow_input"]


@functools.cache
def _validator(batch: bool, live: bool = False) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(input_schema(batch=batch, live=live))


def _pointer(parts: Sequence[Any]) -> str:
    return "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in parts)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _schema_error(error: jsonschema.ValidationError) -> FlowInputError:
    where = list(error.absolute_path)
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return FlowInputError(
            "required field is missing",
            pointer=_pointer([*where, missing[0] if missing else "?"]),
            expected="a value",
        )
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        if unknown and error.validator_value is False:
            return FlowInputError(
                "unknown field",
                pointer=_pointer([*where, unknown[0]]),
                expected=f"one of {sorted(known)}",
                found=_short(unknown[0]),
            )
    expected = {
        "type": f"type {error.validator_value}",
        "enum": f"one of {error.validator_value}",
        "pattern": "an absolute path without '..' or a trailing '/'"
        if "/" in str(error.validator_value)
        else f"a string matching {error.validator_value}",
        "minimum": f"a value >= {error.validator_value}",
        "exclusiveMinimum": f"a value > {error.validator_value}",
        "minItems": f"at least {error.validator_value} item(s)",
        "maxItems": f"at most {error.validator_value} item(s)",
        "minLength": "a non-empty string",
    }.get(str(error.validator), f"{error.validator} {_short(error.validator_value)}")
    return FlowInputError(
        error.message, pointer=_pointer(where), expected=expected, found=_short(error.instance)
    )


def check_allowed_path(
    collection: str,
    path: str,
    *,
    pointer: str,
    allowed_roots: Mapping[str, Sequence[str]] | None,
) -> None:
    """Raise :class:`FlowInputError` when ``path`` is outside the roots allowed on ``collection``.

    A collection absent from ``allowed_roots`` (or ``allowed_roots=None``) is
    not restricted; ``..`` components are always refused.
    """
    parts = PurePosixPath(path).parts
    if ".." in parts or not path.startswith("/"):
        raise FlowInputError(
            "path is not absolute or climbs with '..'",
            pointer=pointer,
            expected="an absolute path without '..'",
            found=_short(path),
        )
    if allowed_roots is None or collection not in allowed_roots:
        return
    target = PurePosixPath(path)
    roots = [PurePosixPath(r) for r in allowed_roots[collection]]
    if not any(target == root or root in target.parents for root in roots):
        raise FlowInputError(
            f"path is outside the roots this deployment may use on collection {collection}",
            pointer=pointer,
            expected=f"a path under one of {[str(r) for r in roots]}",
            found=_short(path),
        )


def _check_options(options: Mapping[str, Any]) -> None:
    try:
        CorrelationOptions.from_dict(dict(options))
    except UsageError as exc:
        field = exc.argument if exc.argument and exc.argument in options else None
        raise FlowInputError(
            str(exc),
            pointer=_pointer(["input", "options", *([field] if field else [])]),
            expected="options accepted by CorrelationOptions",
            found=_short(options.get(field)) if field else None,
        ) from None


def _collection_paths(body: Mapping[str, Any], batch: bool) -> list[tuple[str, str, str]]:
    """``(collection id, path, pointer)`` of every path in the input."""
    found = []
    for key in ("staging", "publication", "return_to", "raw", "source"):
        if isinstance(body.get(key), Mapping):
            found.append((body[key]["id"], body[key]["path"], f"/input/{key}/path"))
    if not batch:
        found.append((body["raw"]["id"], body["qmap_path"], "/input/qmap_path"))
    else:
        for i, item in enumerate(body["datasets"]):
            for key in ("raw_path", "qmap_path"):
                found.append((body["source"]["id"], item[key], f"/input/datasets/{i}/{key}"))
    return found


def validate_flow_input(
    flow_input: Mapping[str, Any],
    *,
    allowed_roots: Mapping[str, Sequence[str]] | None = None,
    batch: bool = False,
    facilities: Collection[str] | None = None,
    live: bool = False,
) -> dict[str, Any]:
    """Validate run input of the XPCS flow; returns a JSON copy of it.

    Parameters
    ----------
    flow_input
        ``{"input": {...}}`` as sent to the flow.
    allowed_roots
        Collection id -> the paths this deployment may read or write there.
    batch
        Validate against the batch flow's schema.
    facilities
        Known facility names; ``input.facility`` must be one of them.
    live
        Validate against the live flow's schema.

    Raises
    ------
    FlowInputError
        For the first problem, naming the field (JSON pointer) and what was expected.
    """
    try:
        data = json.loads(json.dumps(flow_input, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise FlowInputError(
            f"input is not JSON: {exc}", pointer="", expected="a JSON object"
        ) from None
    error = jsonschema.exceptions.best_match(_validator(batch, live).iter_errors(data))
    if error is not None:
        raise _schema_error(error)
    body = data["input"]
    _check_options(body["options"])
    if facilities is not None and body["facility"] not in facilities:
        raise FlowInputError(
            "unknown facility",
            pointer="/input/facility",
            expected=f"one of {sorted(facilities)}",
            found=_short(body["facility"]),
        )
    for collection, path, pointer in _collection_paths(body, batch):
        check_allowed_path(collection, path, pointer=pointer, allowed_roots=allowed_roots)
    if not batch:
        if PurePosixPath(body["raw"]["path"]).name == PurePosixPath(body["qmap_path"]).name:
            raise FlowInputError(
                "the raw file and the q-map have the same name (they share a staging directory)",
                pointer="/input/qmap_path",
                expected="a file name different from the raw file's",
                found=_short(body["qmap_path"]),
            )
    else:
        check_plan(body)
    return copy.deepcopy(data)
