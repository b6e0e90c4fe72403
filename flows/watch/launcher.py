"""What the watcher needs from a launcher, the default one, and the reconciliation of launches.

A :class:`Launcher` starts one run for a data file, finds the run started
with a given idempotency tag (so that a launch interrupted by a crash is
neither repeated nor lost), and reports a run's status. Tests inject fakes;
:class:`FlowsLauncher` is the real one (:func:`flows.launch.api.launch`, imported
lazily, so the watcher and its ledger import without the launch API).
:class:`Reconciler` settles the LAUNCHING rows of the ledger with
:meth:`Launcher.find` (the protocol is in :mod:`flows.watch.watcher`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from flows.watch.config import WatchConfig
from flows.watch.ledger import FileState, Ledger, LedgerEntry
from xpcs_kernel.errors import XPCSFlowsError

__all__ = [
    "KEY_TAG_PREFIX",
    "LOOKUP_MARGIN",
    "FlowsLauncher",
    "LaunchedRun",
    "Launcher",
    "Reconciler",
    "RunLookupDeferred",
    "RunLookupUnavailable",
    "find_launched",
    "key_tag",
]

_log = logging.getLogger("flows.watch.watcher")

#: Run tags of the form ``xpcs-watch:<key>`` carry the watcher's idempotency key.
KEY_TAG_PREFIX = "xpcs-watch:"
#: A Globus look-up reads runs back to this long before the launch began (clock skew).
LOOKUP_MARGIN = timedelta(minutes=10)
_RETRY_HINT = "check `xpcs-flows list` and use `xpcs-flows retry FILE` if no run was started"


def key_tag(key: str) -> str:
    """The run tag that carries the idempotency ``key``."""
    return f"{KEY_TAG_PREFIX}{key}"


class RunLookupUnavailable(XPCSFlowsError):
    """The launcher cannot tell whether a run with the idempotency tag ``tag`` exists."""

    def __init__(self, message: str, *, tag: str, engine: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.engine = engine


class RunLookupDeferred(RunLookupUnavailable):
    """The launcher cannot tell *now* (service unreachable or failing): ask again later."""


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

    def find(self, tag: str, *, started_after: datetime | None = None) -> LaunchedRun | None:
        """The run started with ``tag``, ``None`` if there is none.

        ``started_after`` is when the launch began (the ledger's launch time):
        the run cannot have started before it, which bounds the search.
        Raises :class:`RunLookupUnavailable` when that cannot be known, and
        :class:`RunLookupDeferred` when it cannot be known now.
        """
        ...

    def status(self, run_id: str) -> str:
        """``ACTIVE``, ``SUCCEEDED`` or ``FAILED`` (``INACTIVE``/``ENDED`` on Globus)."""
        ...


def _transient(http_status: int | None) -> bool:
    """Whether a failed Globus request may succeed later (not reached, 408, 429, 5xx)."""
    return http_status is None or http_status in (408, 429) or http_status >= 500


def find_launched(
    launcher: Launcher, tag: str, *, started_after: datetime | None
) -> LaunchedRun | None:
    """``launcher.find(tag, started_after=...)``; a launcher whose ``find`` takes only the
    tag (one written before ``started_after`` existed) is called with the tag alone."""
    try:
        params = inspect.signature(launcher.find).parameters.values()
    except (TypeError, ValueError):  # no signature to read: assume the current protocol
        return launcher.find(tag, started_after=started_after)
    if any(p.name == "started_after" or p.kind is p.VAR_KEYWORD for p in params):
        return launcher.find(tag, started_after=started_after)
    find: Callable[[str], LaunchedRun | None] = launcher.find
    return find(tag)


def _launch_api() -> Any:
    """:mod:`flows.launch.api`, imported on first use (it pulls in the whole flow stack)."""
    return importlib.import_module("flows.launch.api")


class FlowsLauncher:
    """Launch with :func:`flows.launch.api.launch`; follow with :meth:`Run.from_id`.

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
    flow_id, flows_client
        Globus look-ups: the flow whose runs are searched (``None``: the deployed
        XPCS flow) and the :class:`~globus_sdk.FlowsClient` (``None``: the
        logged-in user's).
    lookup_margin, max_lookup_pages
        Globus look-ups read runs started up to ``lookup_margin`` before the
        launch began, in at most ``max_lookup_pages`` pages.
    """

    def __init__(
        self,
        *,
        engine: str = "local",
        facility: str = "auto",
        options: Any = None,
        db_path: Path | None = None,
        workdir: Path | None = None,
        flow_id: str | None = None,
        flows_client: Any = None,
        lookup_margin: timedelta = LOOKUP_MARGIN,
        max_lookup_pages: int = 10,
    ) -> None:
        self.engine = engine
        self.facility = facility
        self.options = options
        self.db_path = db_path
        self.workdir = workdir
        self.flow_id = flow_id
        self.flows_client = flows_client
        self.lookup_margin = lookup_margin
        self.max_lookup_pages = max_lookup_pages
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

    def find(self, tag: str, *, started_after: datetime | None = None) -> LaunchedRun | None:
        """Look the tag up in the local engine's runs, or in the Globus flow's runs.

        On Globus, ``started_after`` (less :attr:`lookup_margin`) bounds the
        search; without it the search cannot prove that no run exists.
        """
        if self.engine != "local":
            return self._find_globus(tag, started_after)
        from flows.local.store import RunStore, default_state_db

        store = RunStore(self.db_path or default_state_db())
        for record in store.list_runs():
            if tag in record.tags:
                return LaunchedRun(run_id=record.run_id, facility=self._facility_of(record.run_id))
        return None

    def _find_globus(self, tag: str, started_after: datetime | None) -> LaunchedRun | None:
        from flows.errors import GlobusPermissionError, GlobusServiceError
        from flows.globus.deploy import deployed_flow
        from flows.globus.runs import find_globus_run_by_tag
        from flows.launch.engines import GLOBUS_FLOW_NAME

        def unavailable(why: str) -> RunLookupUnavailable:
            text = f"cannot look up Globus runs by tag {tag!r}: {why}; {_RETRY_HINT}"
            return RunLookupUnavailable(text, tag=tag, engine=self.engine)

        if started_after is None:
            raise unavailable("the launch time is unknown")
        try:
            bound = started_after - self.lookup_margin
            flow_ids: tuple[str, ...]
            if self.flow_id is not None:
                flow_ids = (self.flow_id,)
            else:
                record = deployed_flow(GLOBUS_FLOW_NAME)
                if record is None:
                    raise unavailable("the XPCS flow is not deployed")
                # a flow recreated since the launch: its run is under the earlier id
                flow_ids = record.flow_ids_since(bound)
            if self.flows_client is None:
                from flows.runs.handle import globus_flows_client

                self.flows_client = globus_flows_client()
            run = find_globus_run_by_tag(
                flow_ids,
                tag,
                started_after=bound,
                client=self.flows_client,
                max_pages=self.max_lookup_pages,
            )
        except GlobusServiceError as exc:
            if isinstance(exc, GlobusPermissionError) or not _transient(exc.http_status):
                raise unavailable(str(exc)) from exc
            text = f"Globus cannot be asked about runs tagged {tag!r} now: {exc}"
            raise RunLookupDeferred(text, tag=tag, engine=self.engine) from exc
        except RunLookupUnavailable:
            raise
        except XPCSFlowsError as exc:  # several runs with the tag, not logged in ...
            raise unavailable(str(exc)) from exc
        if run is None:
            return None
        facility = next((t[9:] for t in run.tags if t.startswith("facility:")), self.facility)
        return LaunchedRun(run_id=run.run_id, facility=facility)

    def _handle(self, run_id: str) -> Any:
        """The :class:`~flows.runs.handle.Run` of ``run_id``, kept while the run is followed.

        Keeping one handle per run matters for local runs: a handle resumes a
        run whose driver is gone (e.g. after a watcher restart) exactly once.
        """
        handle = self._handles.get(run_id)
        if handle is None:
            # engine="globus" also reaches a run that a look-up found but the index lacks
            handle = _launch_api().Run.from_id(run_id, db_path=self.db_path, engine=self.engine)
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


class Reconciler:
    """Settles LAUNCHING rows of the ledger: adopt the run found, requeue, or fail.

    A row whose look-up is :class:`RunLookupDeferred` stays LAUNCHING and is
    looked up again once its back-off (``retry_interval``, doubled after each
    failure, at most ``max_interval``) has passed; after ``max_tries`` failed
    look-ups in a row the file FAILS with the reason. The failure counts live
    in memory: a restart looks every LAUNCHING row up again at once.

    Parameters
    ----------
    ledger
        The watcher's ledger.
    max_tries
        Interrupted launches, and look-ups in a row that could not be made,
        before the file FAILS (``WatchConfig.max_launch_tries``).
    retry_interval, max_interval
        Seconds before the first look-up again, and the most between two.
    clock
        The watcher's monotonic clock.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_tries: int,
        retry_interval: float,
        clock: Callable[[], float],
        max_interval: float = 300.0,
    ) -> None:
        self.ledger = ledger
        self.max_tries = max_tries
        self.retry_interval = retry_interval
        self.max_interval = max_interval
        self.clock = clock
        self.deferred: dict[str, tuple[int, float]] = {}  # path -> (failed look-ups, next try)

    @classmethod
    def for_config(
        cls, ledger: Ledger, config: WatchConfig, *, clock: Callable[[], float]
    ) -> Reconciler:
        """The reconciler of a watcher: ``max_launch_tries``, first retry after a status check."""
        return cls(
            ledger,
            max_tries=config.max_launch_tries,
            retry_interval=max(config.monitor_interval, config.poll_interval),
            clock=clock,
        )

    def defer(self, path: str, exc: RunLookupDeferred) -> bool:
        """Count a look-up of ``path`` that could not be made; FAIL the file at ``max_tries``.

        Returns whether the file FAILED.
        """
        tries = self.deferred.get(path, (0, 0.0))[0] + 1
        if tries >= self.max_tries:
            self.deferred.pop(path, None)
            reason = (
                f"interrupted while launching; {tries} look-ups of its run failed, the last:"
                f" {exc}; {_RETRY_HINT}"
            )
            self.ledger.record_failed(path, reason, from_states=[FileState.LAUNCHING])
            _log.warning("%s: %s", path, reason)
            return True
        delay = min(self.max_interval, self.retry_interval * 2 ** (tries - 1))
        self.deferred[path] = (tries, self.clock() + delay)
        _log.warning(
            "%s: run look-up deferred %.0f s (%d/%d): %s", path, delay, tries, self.max_tries, exc
        )
        return False

    def settle(self, entry: LedgerEntry, launcher: Launcher) -> bool:
        """Settle one LAUNCHING row with ``launcher``; ``False``: the look-up was deferred."""
        key = str(entry.launch_key)
        started = None if entry.launch_time is None else datetime.fromisoformat(entry.launch_time)
        try:
            found = find_launched(launcher, key_tag(key), started_after=started)
        except RunLookupDeferred as exc:
            return self.defer(entry.path, exc)
        except RunLookupUnavailable as exc:
            self.deferred.pop(entry.path, None)
            reason = f"interrupted while launching; {exc}"
            self.ledger.record_failed(entry.path, reason, from_states=[FileState.LAUNCHING])
            _log.warning("%s: launch interrupted and not verifiable: %s", entry.path, exc)
            return True
        self.deferred.pop(entry.path, None)
        if found is not None:
            self.ledger.record_launched(entry.path, key, found.run_id, found.facility)
            _log.info("%s: interrupted launch had started run %s", entry.path, found.run_id)
        elif entry.launch_tries >= self.max_tries:
            reason = (
                f"the launch was interrupted {entry.launch_tries} times without starting a run"
            )
            self.ledger.record_failed(entry.path, reason, from_states=[FileState.LAUNCHING])
        else:
            self.ledger.requeue(entry.path, key)
            _log.info("%s: interrupted launch had started no run; launching again", entry.path)
        return True

    def run(
        self, entries: Sequence[LedgerEntry], launcher: Launcher, *, due_only: bool = False
    ) -> list[str]:
        """Settle ``entries`` (LAUNCHING rows); with ``due_only`` only deferred ones now due.

        Returns the paths settled (deferred ones are not).
        """
        now = self.clock()
        settled = []
        if due_only:  # forget rows settled elsewhere (e.g. failed and retried by hand)
            for path in self.deferred.keys() - {e.path for e in entries}:
                del self.deferred[path]
        for entry in entries:
            pending = self.deferred.get(entry.path)
            if due_only and (pending is None or pending[1] > now):
                continue
            if self.settle(entry, launcher):
                settled.append(entry.path)
        return settled
