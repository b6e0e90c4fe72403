"""One run as the Globus Flows service reports it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FINAL_STATUSES", "GlobusRun"]

#: Run statuses after which a run never changes again.
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "ENDED"})


@dataclass(frozen=True)
class GlobusRun:
    """One run as the Flows service reports it (``get_run``, ``run_flow``).

    ``status`` is the Globus status (ACTIVE, INACTIVE, SUCCEEDED, FAILED, ENDED).
    """

    run_id: str
    flow_id: str | None
    status: str
    label: str | None
    tags: tuple[str, ...]
    start_time: str | None
    completion_time: str | None
    display_status: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> GlobusRun:
        """Build from a Flows run document."""
        return cls(
            run_id=str(doc.get("run_id") or doc["action_id"]),
            flow_id=doc.get("flow_id"),
            status=str(doc.get("status")),
            label=doc.get("label"),
            tags=tuple(doc.get("tags") or ()),
            start_time=doc.get("start_time"),
            completion_time=doc.get("completion_time"),
            display_status=doc.get("display_status"),
            details=dict(doc.get("details") or {}),
        )

    @property
    def is_final(self) -> bool:
        """Whether the run has ended."""
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form, shaped like the local engine's run records."""
        return {
            "run_id": self.run_id,
            "flow_id": self.flow_id,
            "status": self.status,
            "display_status": self.display_status or self.status,
            "label": self.label,
            "tags": list(self.tags),
            "start_time": self.start_time,
            "completion_time": self.completion_time,
            "details": dict(self.details),
        }
