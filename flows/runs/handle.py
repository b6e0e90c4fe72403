"""The :class:`Run` handle: one launched flow run, on either engine.

A :class:`Run` reads its run from the local engine's store (engine
``local``) or from the Globus Flows service (engine ``globus``) and offers
the same methods on both: :meth:`Run.status`, :meth:`Run.wait`,
:meth:`Run.logs`, :attr:`Run.outputs`, :meth:`Run.cancel`. Any process can
reattach with :meth:`Run.from_id` (the run index in the user's SQLite file
says which engine and facility a run id belongs to).

A local run whose driving process died (a beamline script that exited, a
killed watcher) is resumed in the background by the first process that asks
for its status or waits for it. When a run is seen ending, its outcome is
recorded once in the run history (timings, or the classified failure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import globus_sdk

from flows.errors import RunWaitTimeout
from flows.globus.runs import (
    GlobusRun,
    cancel_globus_run,
    get_globus_run,
    get_globus_run_logs,
)
from flows.local import ActionProvider, LocalEngine, RunRecord, default_providers
from flows.local import default_state_db as _default_state_db
from flows.runs.index import RunIndex, RunIndexEntry
from flows.runs.live_progress import partial_progress, progress_dict
from flows.runs.outcome import RunOutputs, outputs_from, record_outcome, seconds_between
from flows.runs.progress import RunProgress, spawn_driver
from flows.runs.publication import guard_providers
from xpcs_kernel.errors import UsageError
from xpcs_kernel.live.progress import ResultProgress

__all__ = ["FINAL", "Run", "RunOutputs", "globus_flows_client"]

#: Public statuses after which a run never changes.
FINAL = frozenset({"SUCCEEDED", "FAILED"})

_POLL_S = {"local": 0.2, "globus": 5.0}  # seconds between status polls in Run.wait


def globus_flows_client() -> globus_sdk.FlowsClient:
    """A FlowsClient of the logged-in user (``xpcs-flows login``)."""
    from flows.globus.auth import XPCSLoginManager

    return XPCSLoginManager.from_environment().flows_client()


@dataclass
class _Snapshot:
    status: str
    raw_status: str
    current_state: str | None
    start_time: str | None
    completion_time: str | None
    output: Any
    failure: Mapping[str, Any] | None
    details: Mapping[str, Any] = field(default_factory=dict)


_PUBLIC = {"ENDED": "FAILED"}  # a Globus run that ended (canceled) did not succeed


class Run:
    """One launched flow run (local or Globus).

    Attributes
    ----------
    run_id, engine, facility, label
        The run, ``"local"``/``"globus"``, where it runs, its label.
    decision
        The facility decision (``Decision.to_dict()``), ``None`` when the
        facility was named.
    attempts
        Run ids of the earlier failover attempts of the same launch.
    poll_interval
        Seconds between status polls in :meth:`wait`.
    resume_in
        Where a local run whose driver is gone is resumed: ``"thread"`` (a
        daemon thread of this process) or ``"process"`` (a detached driver
        process, for short-lived callers such as the CLI).
    """

    def __init__(
        self,
        entry: RunIndexEntry,
        *,
        db_path: Path,
        providers: Mapping[str, ActionProvider] | None = None,
        flows_client: globus_sdk.FlowsClient | None = None,
    ) -> None:
        self.entry = entry
        self.run_id = entry.run_id
        self.engine = entry.engine
        self.facility = entry.facility
        self.label = entry.label
        self.decision: Mapping[str, Any] | None = entry.decision
        self.attempts: tuple[str, ...] = ()
        self.db_path = Path(db_path)
        self.poll_interval = _POLL_S.get(self.engine, 5.0)
        self._extra_providers = dict(providers or {})
        self._flows_client = flows_client
        self._local: LocalEngine | None = None
        self._settled = False
        self._resumed = False
        self.resume_in = "thread"

    def __repr__(self) -> str:
        return f"Run({self.run_id!r}, engine={self.engine!r}, facility={self.facility!r})"

    # -- reattaching --------------------------------------------------------------------------
    @classmethod
    def from_id(
        cls, run_id: str, *, db_path: Path | None = None, engine: str | None = None
    ) -> Run:
        """Reattach to run ``run_id``.

        Parameters
        ----------
        run_id
            A run started by :func:`flows.launch.api.launch` (found in the run
            index), or any run of the local engine's store.
        db_path
            The SQLite file (default: the per-user one).
        engine
            ``"globus"`` to reach a Globus run that this machine did not start
            (e.g. one started in the web app).

        Raises
        ------
        RunNotFound
            No such run in the index or the local store (and ``engine`` not ``globus``).
        """
        db = Path(db_path) if db_path is not None else _default_state_db()
        entry = RunIndex(db).get(run_id)
        if entry is None and engine != "globus":
            record = LocalEngine(db, providers={}).store.get(run_id)  # RunNotFound if absent
            body = record.input.get("input", {}) if isinstance(record.input, Mapping) else {}
            entry = RunIndexEntry(
                run_id=run_id,
                engine="local",
                flow_id=record.flow_id,
                facility=str(body.get("facility", "local")),
                dataset=str(body.get("dataset", {}).get("name", "")),
                label=record.label or "",
                launch_id=run_id,
                attempt=1,
                publication_key="",
                started_at=0.0,
            )
        elif entry is None:
            entry = RunIndexEntry(run_id, "globus", None, "", "", "", run_id, 1, "", 0.0)
        run = cls(entry, db_path=db)
        run.attempts = tuple(
            e.run_id for e in RunIndex(db).chain(entry.launch_id) if e.attempt < entry.attempt
        )
        return run

    # -- engine access -----------------------------------------------------------------------
    @property
    def local_engine(self) -> LocalEngine:
        """The local engine that runs this run (its providers publication-guarded).

        ``engine`` names the engine (``"local"`` or ``"globus"``); this is the
        engine object itself, for a local run only.

        Raises
        ------
        UsageError
            The run runs on Globus Flows.
        """
        if self.engine != "local":
            raise UsageError(f"run {self.run_id} runs on {self.engine}, not the local engine")
        if self._local is None:
            providers = default_providers(self.db_path, collections=self.entry.collections)
            providers.update(self._extra_providers)
            if self.entry.publication_key:
                providers = guard_providers(
                    providers,
                    db_path=self.db_path,
                    publication_key=self.entry.publication_key,
                    facility=self.facility,
                )
            self._local = LocalEngine(self.db_path, providers)
        return self._local

    def _flows(self) -> globus_sdk.FlowsClient:
        if self._flows_client is None:
            self._flows_client = globus_flows_client()
        return self._flows_client

    def _ensure_driven(self, record: RunRecord) -> None:
        """Resume an ACTIVE local run that no live process drives (see ``resume_in``)."""
        if self._resumed or self.entry.collections is None or record.status.is_final:
            return
        engine = self.local_engine
        if engine.store.has_live_driver(self.run_id):
            return
        self._resumed = True
        if self.resume_in == "process":
            spawn_driver(self.run_id, db_path=self.db_path)
            return
        name = f"resume-{self.run_id}"
        threading.Thread(target=engine.resume, args=(self.run_id,), name=name, daemon=True).start()

    def _snapshot(self) -> _Snapshot:
        if self.engine == "local":
            record = self.local_engine.get_run(self.run_id)
            self._ensure_driven(record)
            failure = None
            if record.status.value == "FAILED":
                state = record.state if isinstance(record.state, Mapping) else {}
                failure = state.get("Failure") or record.error or dict(record.details)
            return _Snapshot(
                status=record.status.value,
                raw_status=record.status.value,
                current_state=record.current_state,
                start_time=record.start_time,
                completion_time=record.completion_time,
                output=record.output,
                failure=failure,
                details=dict(record.details),
            )
        run: GlobusRun = get_globus_run(self.run_id, client=self._flows())
        output = run.details.get("output") if run.status == "SUCCEEDED" else None
        failure = dict(run.details) if _PUBLIC.get(run.status, run.status) == "FAILED" else None
        return _Snapshot(
            status=_PUBLIC.get(run.status, run.status),
            raw_status=run.status,
            current_state=run.display_status,
            start_time=run.start_time,
            completion_time=run.completion_time,
            output=output,
            failure=failure,
            details=dict(run.details),
        )

    # -- public API --------------------------------------------------------------------------
    def status(self) -> str:
        """``ACTIVE``, ``SUCCEEDED`` or ``FAILED`` (``INACTIVE`` possible on Globus).

        A canceled run is ``FAILED``; a Globus ``ENDED`` run is reported ``FAILED``.
        """
        snap = self._snapshot()
        self._settle(snap)
        return snap.status

    def wait(self, *, progress: bool = True, timeout: float | None = None) -> Run:
        """Wait until the run ends; returns ``self``.

        Parameters
        ----------
        progress
            Show a rich progress line (on stderr) with the current state.
        timeout
            Seconds to wait at most (``None``: no limit).

        Raises
        ------
        RunWaitTimeout
            The run is still going after ``timeout`` seconds (it goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        display = RunProgress(self.label or self.run_id) if progress else None
        try:
            while True:
                snap = self._snapshot()
                if display is not None:
                    display.update(snap.status, snap.current_state)
                if snap.status in FINAL:
                    self._settle(snap)
                    return self
                if deadline is not None and time.monotonic() >= deadline:
                    raise RunWaitTimeout(self.run_id, float(timeout or 0.0))
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                time.sleep(self.poll_interval if left is None else min(self.poll_interval, left))
        finally:
            if display is not None:
                display.close()

    def logs(self) -> list[dict[str, Any]]:
        """The run's log entries, oldest first (Globus ``get_run_logs`` entries)."""
        if self.engine == "local":
            return self.local_engine.get_run_logs(self.run_id)
        return get_globus_run_logs(self.run_id, client=self._flows())

    @property
    def outputs(self) -> RunOutputs:
        """Result, plots and catalog subject (empty until SUCCEEDED)."""
        return outputs_from(self._snapshot().output)

    def live_progress(self) -> ResultProgress | None:
        """A live local run's frame count and g2 so far (``None``: not live, not yet, or
        on Globus, whose result file is on the facility)."""
        if self.engine != "local":
            return None
        return partial_progress(self.local_engine.get_run(self.run_id).state)

    @property
    def failure(self) -> Mapping[str, Any] | None:
        """What the failed run reported (``{"error", "cause", ...}``), else ``None``."""
        return self._snapshot().failure

    def cancel(self) -> None:
        """Cancel the run (it ends FAILED; a final run is left as it is)."""
        if self.engine == "local":
            self.local_engine.cancel_run(self.run_id)
        else:
            cancel_globus_run(self.run_id, client=self._flows())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (``--json`` output)."""
        snap = self._snapshot()
        self._settle(snap)
        live = self.live_progress()
        return {
            "run_id": self.run_id,
            "engine": self.engine,
            "facility": self.facility,
            "label": self.label,
            "status": snap.status,
            "engine_status": snap.raw_status,
            "current_state": snap.current_state,
            "start_time": snap.start_time,
            "completion_time": snap.completion_time,
            "duration_s": seconds_between(snap.start_time, snap.completion_time),
            "attempts": list(self.attempts),
            "decision": None if self.decision is None else dict(self.decision),
            "outputs": self.outputs.to_dict() if snap.status == "SUCCEEDED" else None,
            "failure": None if snap.failure is None else dict(snap.failure),
            "live_progress": None if live is None else progress_dict(live),
        }

    # -- history -----------------------------------------------------------------------------
    def _settle(self, snap: _Snapshot) -> None:
        """Record a final outcome in the run history once (runs we launched only)."""
        if self._settled or snap.status not in FINAL or not self.entry.publication_key:
            return
        record_outcome(
            self.db_path,
            self.entry,
            succeeded=snap.status == "SUCCEEDED",
            output=snap.output,
            failure=snap.failure,
        )
        self._settled = True
