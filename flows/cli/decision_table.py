"""The facility selector's "where and why" as a table for people.

One header line, one row per ranked candidate (rank, facility, state, the
reasons), then one line naming the deployments that were not considered
because their descriptors are not filled in (or invalid), with where to fill
them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xpcs_kernel.errors import ConfigurationError

__all__ = ["decision_table", "skipped_deployments"]


def skipped_deployments(problems: Mapping[str, ConfigurationError]) -> dict[str, str]:
    """Why each known deployment was not a candidate: ``"not configured"`` or ``"invalid: ..."``.

    ``problems`` is :attr:`deployments.DeploymentSet.problems`.
    """
    out: dict[str, str] = {}
    for name, error in sorted(problems.items()):
        text = str(error)
        out[name] = "not configured" if "placeholder" in text else f"invalid: {text}"
    return out


def decision_table(
    decision: Mapping[str, Any], skipped: Mapping[str, str] | None = None, *, indent: str = "  "
) -> list[str]:
    """Lines of the table of ``decision`` (:meth:`deployments.Decision.to_dict`).

    ``skipped`` (name -> reason, from :func:`skipped_deployments`) adds the
    deployments left out before ranking.
    """
    rows = list(decision.get("candidates") or ())
    width = max([len("facility"), *(len(str(r.get("facility", ""))) for r in rows)])
    lines = [f"{indent}{'rank':>4}  {'facility':<{width}}  {'state':<8}  why"]
    for row in rows:
        rank = row.get("rank")
        mark = "-" if rank is None else str(rank)
        reasons = "; ".join(row.get("reasons") or ()) or "-"
        lines.append(
            f"{indent}{mark:>4}  {row.get('facility', '?'):<{width}}  "
            f"{row.get('state', ''):<8}  {reasons}"
        )
    not_configured = sorted(n for n, why in (skipped or {}).items() if why == "not configured")
    if not_configured:
        lines.append(
            f"{indent}skipped, not configured: {', '.join(not_configured)} "
            "(`xpcs-flows facilities` says what to fill in)"
        )
    for name, why in sorted((skipped or {}).items()):
        if why != "not configured":
            lines.append(f"{indent}skipped, {name}: {why}")
    return lines
