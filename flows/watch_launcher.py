"""What the watcher needs from a launcher, and the default one (:func:`flows.launch.launch`).

A :class:`Launcher` starts one run for a data file, finds the run started
with a given idempotency tag (so that a launch interrupted by a crash is
neither repeated nor lost), and reports a run's status. Tests inject fakes;
:class:`FlowsLauncher` is the real one (imported lazily, so the watcher and
its ledger import without the launch API).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from xpcs_kernel.errors import XPCSFlowsError

__all__ = [
    "KEY_TAG_PREFIX",
    "FlowsLauncher",
    "LaunchedRun",
    "Launcher",
    "RunLookupUnavailable",
    "key_tag",
]

#: Run tags of the form ``xpcs-watch:<key>`` carry the watcher's idempotency key.
KEY_TAG_PREFIX = "xpcs-watch:"


def key_tag(key: str) -> str:
    """The run tag that carries the idempotency ``key``."""
    return f"{KEY_TAG_PREFIX}{key}"


class RunLookupUnavailable(XPCSFlowsError):
    """The launcher cannot tell whether a run with the idempotency tag ``tag`` exists."""

    def __init__(self, message: str, *, tag: str, engine: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.engine = engine


@dataclass(frozen=True)
class LaunchedRun:
    """A run started for a file: its id and the facility it runs on."""

    run_id: str
    facility: str


class Launcher(Protocol):
    """What the watcher calls to start and follow runs."""

    def launch(self, raw: Path, qmap: Path, *, tags: Sequence[str]) -> LaunchedRun:
        """Start a run for ``raw`` tagged with ``tags`` (which include the key tag)."""
        ...

    def find(self, tag: str) -> LaunchedRun | None:
        """The run started with ``tag``, ``None`` if there is none.

        Raises :class:`RunLookupUnavailable` when that cannot be known.
        """
        ...

    def status(self, run_id: str) -> str:
        """``ACTIVE``, ``SUCCEEDED`` or ``FAILED`` (``INACTIVE``/``ENDED`` on Globus)."""
        ...


def _launch_api() -> Any:
    """:mod:`flows.launch`, imported on first use (it pulls in the whole flow stack)."""
    return importlib.import_module("flows.launch")


class FlowsLauncher:
    """Launch with :func:`flows.launch.launch`; follow with :meth:`flows.launch.Run.from_id`.

    Parameters
    ----------
    engine
        ``"local"`` or ``"globus"``.
    facility
        ``"auto"`` (the selector decides per file) or a deployment name.
    options
        Correlation options passed to every launch (``None``: defaults).
    db_path
        The state database of runs (``None``: the per-user default).
    workdir
        Work directory of local runs (``None``: the launch API's default).
    """

    def __init__(
        self,
        *,
        engine: str = "local",
        facility: str = "auto",
        options: Any = None,
        db_path: Path | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.facility = facility
        self.options = options
        self.db_path = db_path
        self.workdir = workdir
        self._handles: dict[str, Any] = {}

    def launch(self, raw: Path, qmap: Path, *, tags: Sequence[str]) -> LaunchedRun:
        """Start the flow for ``raw`` without waiting for it."""
        run = _launch_api().launch(
            raw,
            qmap,
            facility=self.facility,
            engine=self.engine,
            tags=tuple(tags),
            options=self.options,
            db_path=self.db_path,
            workdir=self.workdir,
            wait=False,
        )
        self._handles[str(run.run_id)] = run
        return LaunchedRun(run_id=str(run.run_id), facility=str(run.facility))

    def find(self, tag: str) -> LaunchedRun | None:
        """Look the tag up in the local engine's runs (Globus runs cannot be looked up)."""
        if self.engine != "local":
            raise RunLookupUnavailable(
                f"cannot look up Globus runs by tag {tag!r}; check `xpcs-flows list` and use "
                "`xpcs-flows retry FILE` if no run was started",
                tag=tag,
                engine=self.engine,
            )
        from flows.local.store import RunStore, default_state_db

        store = RunStore(self.db_path or default_state_db())
        for record in store.list_runs():
            if tag in record.tags:
                return LaunchedRun(run_id=record.run_id, facility=self._facility_of(record.run_id))
        return None

    def _handle(self, run_id: str) -> Any:
        """The :class:`~flows.run_handle.Run` of ``run_id``, kept while the run is followed.

        Keeping one handle per run matters for local runs: a handle resumes a
        run whose driver is gone (e.g. after a watcher restart) exactly once.
        """
        handle = self._handles.get(run_id)
        if handle is None:
            handle = _launch_api().Run.from_id(run_id, db_path=self.db_path)
            self._handles[run_id] = handle
        return handle

    def _facility_of(self, run_id: str) -> str:
        return str(self._handle(run_id).facility)

    def status(self, run_id: str) -> str:
        """The run's status, through the launch API's run handle."""
        status = str(self._handle(run_id).status())
        if status in ("SUCCEEDED", "FAILED", "ENDED"):
            self._handles.pop(run_id, None)
        return status
