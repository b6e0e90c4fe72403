"""What was deployed: the deploy-state file and the records read from it.

:func:`deploy` (:mod:`flows.globus.deploy`) keeps the ids and checksums of the
registered functions and of each flow in a small JSON file (default
``$XDG_DATA_HOME/xpcs-flows/globus-deploy.json``), written atomically after
each step. :func:`deployed_flow` reads a deployment back without network
access (launching, the watcher and timers need only that).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import globus_sdk

from xpcs_kernel.errors import ConfigurationError

__all__ = [
    "MAX_REPLACED",
    "DeployRecord",
    "FunctionDeployment",
    "default_state_path",
    "deployed_flow",
    "flow_scope",
    "load_state",
    "replaced_flows",
    "save_state",
]

_FORMAT = 1


@dataclass(frozen=True)
class FunctionDeployment:
    """One compute function: the flow-input key holding its id, and what deploy did."""

    key: str
    name: str
    function_id: str
    checksum: str
    action: str  # "registered" or "unchanged"


@dataclass(frozen=True)
class DeployRecord:
    """The outcome of :func:`deploy` (or the stored deployment, :func:`deployed_flow`).

    ``flow_action`` is ``created``, ``updated``, ``recreated`` (the stored
    flow was gone) or ``unchanged``.
    """

    name: str
    flow_id: str
    flow_scope: str
    flow_checksum: str
    flow_action: str
    functions: tuple[FunctionDeployment, ...]
    state_path: Path
    replaced_flows: tuple[tuple[str, str], ...] = ()
    """``(flow_id, replaced_at)`` of earlier flows of this name (a flow recreated
    because the stored one was gone), oldest first; ``replaced_at`` is ISO 8601 UTC.
    Runs started before a replacement belong to the earlier flow."""

    def flow_ids_since(self, when: datetime) -> tuple[str, ...]:
        """Every flow id of this name that was current at some time after ``when``."""
        bound = when if when.tzinfo else when.replace(tzinfo=UTC)
        older = (f for f, at in self.replaced_flows if datetime.fromisoformat(at) >= bound)
        return (self.flow_id, *older)

    @property
    def function_ids(self) -> dict[str, str]:
        """Flow-input key -> function id (what a run's input needs)."""
        return {f.key: f.function_id for f in self.functions}

    @property
    def changed(self) -> bool:
        """Whether anything was sent to Globus."""
        return self.flow_action != "unchanged" or any(
            f.action != "unchanged" for f in self.functions
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (``xpcs-flows deploy --json``)."""
        return {
            "name": self.name,
            "flow_id": self.flow_id,
            "flow_scope": self.flow_scope,
            "flow_checksum": self.flow_checksum,
            "flow_action": self.flow_action,
            "function_ids": self.function_ids,
            "functions": [vars(f) for f in self.functions],
            "changed": self.changed,
            "state_path": str(self.state_path),
            "replaced_flows": [{"flow_id": f, "replaced_at": at} for f, at in self.replaced_flows],
        }


def default_state_path() -> Path:
    """``$XDG_DATA_HOME/xpcs-flows/globus-deploy.json`` (``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "xpcs-flows" / "globus-deploy.json"


def load_state(path: Path) -> dict[str, Any]:
    """The deploy state at ``path`` (empty if none); a clear error if it is not ours."""
    if not path.exists():
        return {"format": _FORMAT, "functions": {}, "flows": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"unreadable deploy state: {exc}", source=path) from exc
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ConfigurationError(
            "not an xpcs-flows deploy state", source=path, expected=f"format {_FORMAT}"
        )
    state.setdefault("functions", {})
    state.setdefault("flows", {})
    return state


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def flow_scope(flow_id: str) -> str:
    """The user scope of flow ``flow_id``."""
    return str(globus_sdk.SpecificFlowClient(flow_id).scopes.user)


MAX_REPLACED = 10  # earlier flow ids kept per name


def replaced_flows(entry: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(flow id, replaced at) of the flows a deployment replaced, oldest first."""
    return tuple((r["flow_id"], r["replaced_at"]) for r in entry.get("replaced_flows", ()))


def deployed_flow(name: str = "xpcs", *, state_path: Path | None = None) -> DeployRecord | None:
    """The stored deployment ``name`` (no network), or ``None`` if never deployed."""
    path = state_path or default_state_path()
    entry = load_state(path)["flows"].get(name)
    if entry is None:
        return None
    functions = tuple(
        FunctionDeployment(key, f["name"], f["function_id"], f["checksum"], "unchanged")
        for key, f in sorted(entry.get("functions", {}).items())
    )
    return DeployRecord(
        name=name,
        flow_id=entry["flow_id"],
        flow_scope=flow_scope(entry["flow_id"]),
        flow_checksum=entry["checksum"],
        flow_action="unchanged",
        functions=functions,
        state_path=path,
        replaced_flows=replaced_flows(entry),
    )
