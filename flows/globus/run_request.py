"""What a run request to Globus Flows carries: its label, principals and body.

Checked here, before anything is sent: the Flows service refuses labels
longer than :data:`LABEL_MAX` and principals that are not identity or group
URNs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xpcs_kernel.errors import UsageError

__all__ = ["LABEL_MAX", "principal_urns", "run_body", "run_label"]

#: The Flows service refuses run labels longer than this.
LABEL_MAX = 64
_PRINCIPAL_PREFIXES = ("urn:globus:auth:identity:", "urn:globus:groups:id:")


def run_label(dataset: str, facility: str) -> str:
    """The run label ``<dataset> @ <facility>``, at most :data:`LABEL_MAX` characters.

    The dataset name is shortened (keeping its end, which usually tells
    datasets apart, after an ellipsis) so that the facility always shows.
    """
    suffix = f" @ {facility}"
    room = LABEL_MAX - len(suffix)
    if room < 8:
        return f"{dataset} @ {facility}"[:LABEL_MAX]
    if len(dataset) > room:
        dataset = "…" + dataset[-(room - 1) :]
    return dataset + suffix


def principal_urns(values: Sequence[str], *, argument: str) -> list[str]:
    """Check that each value is a Globus identity or group URN (as Flows requires).

    Raises
    ------
    UsageError
        A value is not such a URN; ``argument`` names the parameter.
    """
    out = []
    for value in values:
        if not isinstance(value, str) or not value.startswith(_PRINCIPAL_PREFIXES):
            raise UsageError(
                f"{value!r} is not a Globus principal URN (urn:globus:auth:identity:<id> or "
                "urn:globus:groups:id:<id>)",
                argument=argument,
            )
        out.append(value)
    return out


def run_body(flow_input: Mapping[str, Any], *, function_ids: Mapping[str, str]) -> dict[str, Any]:
    """The ``run_flow`` body: ``{"input": flow_input}`` with the deployed function ids.

    ``function_ids`` (``DeployRecord.function_ids``) fill the keys the input
    lacks; an input that names another id for one of them is refused.
    """
    merged = dict(flow_input)
    for key, function_id in function_ids.items():
        if merged.setdefault(key, function_id) != function_id:
            raise UsageError(
                f"{merged[key]!r} is not the deployed function {function_id!r}", argument=key
            )
    return {"input": merged}
