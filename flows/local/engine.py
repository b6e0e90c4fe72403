"""The local flow engine: runs a Globus Flows definition on this machine.

:class:`LocalEngine` interprets the same JSON definition that is deployed to
Globus Flows, calling local :class:`~flows.local.providers.base.ActionProvider`
objects for the action URLs. Run state, status and logs are written to SQLite
after every state transition, so another engine object (or process) on the
same database can report a run and resume it.

Execution model
---------------
``start_run`` records a new ACTIVE run (and, with ``background=True``, drives
it in a thread). ``run_until_done`` drives an ACTIVE run in the calling
thread when no live driver holds it, else waits for the driver to finish.
``resume`` does the same for a run whose driver died (it records a
``FlowResumed`` log entry).

Resuming and actions in flight
------------------------------
An Action state is persisted as the current state (with an ``ActionStarted``
entry) before its provider is called, and its result is persisted with the
move to the next state. A run whose process died during an action therefore
resumes by **re-running that action**: providers must be idempotent (transfer
copies to a temporary name and renames, search ingest replaces the subject,
compute functions are expected to overwrite their outputs). A Wait state is
likewise restarted from its full duration.

Errors
------
Action errors (``ActionUnableToRun``, ``ActionFailedException``,
``ActionTimeout``) can be routed by ``Catch``. Errors of the definition or its
data at run time (a JSONPath that names nothing, an expression that fails, a
Choice with no match, a run state over 200 KB) fail the run with
``States.Runtime`` (or ``States.NoChoiceMatched``); they are not catchable, as
in the Amazon States Language that Globus Flows follows.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from flows.errors import (
    RunWaitTimeout,
)
from flows.local.actions import RunCanceled
from flows.local.definition import validate_definition
from flows.local.providers.base import ActionProvider
from flows.local.records import (
    RunRecord,
    RunStatus,
    utc_now,
)
from flows.local.states import (
    StepOutcome,
    log_entry,
)
from flows.local.step import commit_step, finish_canceled, run_step
from flows.local.store import OwnershipLost, RunStore, default_state_db
from xpcs_kernel.errors import UsageError

__all__ = ["LocalEngine"]

_POLL_S = 0.05


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class LocalEngine:
    """Runs Globus Flows definitions locally, persisting runs in SQLite.

    Parameters
    ----------
    db_path
        The SQLite state file; default :func:`~flows.local.store.default_state_db`
        (``$XDG_DATA_HOME/xpcs-flows/state.db``).
    providers
        Action URL -> provider. Default: the local Compute and Search ingest
        providers on the same database (see
        :func:`flows.local.defaults.default_providers`; a Transfer provider
        needs a collection map, so it is added only by the caller).
    sleep
        The sleep used by Wait states (tests inject a fake clock).
    username
        ``$._context.username``; default: the local user name.
    """

    def __init__(
        self,
        db_path: Path | None = None,
        providers: Mapping[str, ActionProvider] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        username: str | None = None,
    ) -> None:
        self.db_path = Path(db_path) if db_path is not None else default_state_db()
        self.store = RunStore(self.db_path)
        if providers is None:
            from flows.local.defaults import default_providers

            providers = default_providers(self.db_path)
        self.providers: dict[str, ActionProvider] = dict(providers)
        self.sleep = sleep
        self.username = username or _username()

    # -- public API --------------------------------------------------------------------------
    def start_run(
        self,
        definition: Mapping[str, Any],
        input: Mapping[str, Any],
        *,
        label: str | None = None,
        tags: Iterable[str] = (),
        flow_id: str | None = None,
        run_id: str | None = None,
        background: bool = False,
    ) -> str:
        """Record a new ACTIVE run of ``definition`` with ``input``; returns its run id.

        Parameters
        ----------
        definition
            The flow definition (validated first; errors raise
            :class:`~flows.errors.FlowDefinitionError`).
        input
            The run input (a JSON object): the initial run state.
        label, tags, flow_id
            Recorded as Globus records them.
        run_id
            Use this id instead of a new UUID (must be unused).
        background
            Drive the run in a background thread now; otherwise it is driven
            by :meth:`run_until_done` or :meth:`resume`.
        """
        validate_definition(definition)
        if not isinstance(input, Mapping):
            raise UsageError("run input must be a JSON object", argument="input")
        try:
            body = json.loads(json.dumps(dict(input), allow_nan=False))
            defn = json.loads(json.dumps(dict(definition), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"input and definition must be JSON: {exc}") from None
        run_id = run_id or str(uuid.uuid4())
        now = utc_now()
        record = RunRecord(
            run_id=run_id,
            status=RunStatus.ACTIVE,
            flow_id=flow_id,
            label=label,
            tags=tuple(str(t) for t in tags),
            start_time=now,
            completion_time=None,
            input=body,
            state=body,
            current_state=str(defn["StartAt"]),
            details={"code": "FlowStarted", "description": "The Flow Instance started execution"},
            definition=defn,
        )
        started = log_entry("FlowStarted", "The Flow Instance started execution", {"input": body})
        try:
            self.store.create(record, [started])
        except sqlite3.IntegrityError:
            raise UsageError(f"run id {run_id} is already used", argument="run_id") from None
        if background:
            self._start_background(run_id)
        return run_id

    def run_until_done(self, run_id: str, *, timeout: float | None = None) -> RunRecord:
        """Drive (or wait for) the run until it SUCCEEDS or FAILS.

        ``timeout`` is checked between states (an action in progress is not
        interrupted by it); past it, :class:`~flows.errors.RunWaitTimeout` is
        raised and the run stays ACTIVE.
        """
        return self._drive_or_wait(run_id, timeout=timeout, resumed=False, force=False)

    def resume(
        self, run_id: str, *, timeout: float | None = None, force: bool = False
    ) -> RunRecord:
        """Continue an ACTIVE run whose driver is gone, from its recorded state.

        The state that was being executed is executed again (an action in
        flight is re-run). With ``force`` the run is taken over even from a
        driver that looks alive (e.g. one recorded by another host).
        """
        return self._drive_or_wait(run_id, timeout=timeout, resumed=True, force=force)

    def get_run(self, run_id: str) -> RunRecord:
        """The run record; raises :class:`~flows.errors.RunNotFound`."""
        return self.store.get(run_id)

    def get_run_logs(self, run_id: str) -> list[dict[str, Any]]:
        """The run's log entries, oldest first (Globus ``get_run_logs`` entries)."""
        return self.store.logs(run_id)

    def list_runs(
        self, *, status: RunStatus | str | None = None, limit: int | None = None
    ) -> list[RunRecord]:
        """Runs in the database, newest first."""
        return self.store.list_runs(
            status=None if status is None else RunStatus(status), limit=limit
        )

    def cancel_run(self, run_id: str) -> RunRecord:
        """Cancel an ACTIVE run (status FAILED, details code ``FlowCanceled``).

        A run with a live driver stops at that driver's next check (within a
        fraction of a second, killing an action in progress where the provider
        heeds cancellation); otherwise it is marked canceled at once.
        """
        record = self.store.get(run_id)
        if record.status.is_final:
            return record
        self.store.request_cancel(run_id)
        token = f"cancel-{uuid.uuid4()}"
        if self.store.claim(run_id, token):
            try:
                self._finish_canceled(run_id, token)
            finally:
                self.store.release(run_id, token)
        return self.store.get(run_id)

    # -- driving -----------------------------------------------------------------------------
    def _start_background(self, run_id: str) -> None:
        token = str(uuid.uuid4())
        if not self.store.claim(run_id, token):
            return

        def target() -> None:
            try:
                self._drive(run_id, token, deadline=None)
            finally:
                self.store.release(run_id, token)

        threading.Thread(target=target, name=f"flow-run-{run_id}", daemon=True).start()

    def _drive_or_wait(
        self, run_id: str, *, timeout: float | None, resumed: bool, force: bool
    ) -> RunRecord:
        deadline = None if timeout is None else time.monotonic() + timeout
        token = str(uuid.uuid4())
        logged_resume = False
        while True:
            record = self.store.get(run_id)
            if record.status.is_final:
                return record
            claimed = self.store.claim(run_id, token, force=force)
            force = False  # take over at most once; never fight another forced takeover
            if claimed:
                try:
                    if resumed and not logged_resume:
                        logged_resume = True
                        self.store.append_logs(
                            run_id,
                            [
                                log_entry(
                                    "FlowResumed",
                                    f"The Flow Instance resumed at state {record.current_state}",
                                    {"state_name": record.current_state},
                                )
                            ],
                        )
                    self._drive(run_id, token, deadline=deadline)
                finally:
                    self.store.release(run_id, token)
                record = self.store.get(run_id)
                if record.status.is_final:
                    return record
            if deadline is not None and time.monotonic() >= deadline:
                raise RunWaitTimeout(run_id, float(timeout or 0.0))
            time.sleep(_POLL_S)

    def _drive(self, run_id: str, token: str, *, deadline: float | None) -> None:
        """Execute states until the run ends, the deadline passes or ownership is lost."""
        try:
            while True:
                record = self.store.get(run_id)
                if record.status.is_final:
                    return
                if self.store.cancel_requested(run_id):
                    self._finish_canceled(run_id, token)
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                try:
                    self._step(record, token)
                except RunCanceled:
                    self._finish_canceled(run_id, token)
                    return
                except (OwnershipLost, sqlite3.Error):
                    raise
                except Exception as exc:  # an engine bug: fail the run, never leave it hanging
                    self._commit(
                        record,
                        str(record.current_state),
                        StepOutcome(
                            record.state,
                            None,
                            [],
                            failure={
                                "error": "States.Runtime",
                                "cause": f"local engine error: {type(exc).__name__}: {exc}",
                            },
                        ),
                        token,
                    )
                    raise
        except OwnershipLost:
            return

    def _step(self, record: RunRecord, token: str) -> None:
        name = str(record.current_state)
        outcome = run_step(
            record,
            store=self.store,
            token=token,
            providers=self.providers,
            username=self.username,
            sleep=self.sleep,
        )
        self._commit(record, name, outcome, token)

    def _commit(self, record: RunRecord, name: str, outcome: StepOutcome, token: str) -> None:
        commit_step(self.store, record, name, outcome, token)

    def _finish_canceled(self, run_id: str, token: str) -> None:
        finish_canceled(self.store, run_id, token)
