"""The crash-safe new-file trigger: launch one flow run per complete data file, exactly once.

A :class:`Watcher` watches a directory (a watchdog observer, a full scan at
start-up for files that arrived while it was down, and a periodic rescan
as a safety net for file systems that drop events), waits until each file
is complete (:mod:`flows.watch.scan`), validates it against the q-map, and
launches a run for it through an injected :class:`~flows.watch.launcher.Launcher`,
keeping at most ``max_active`` runs in flight. Every step is recorded in
the durable ledger (:mod:`flows.watch.ledger`), which is the only source of
truth: the observer merely inserts SEEN rows, and every pass works from
the rows.

Exactly-once protocol
---------------------
1. A file enters the ledger as SEEN (an upsert that changes nothing when the
   file is already known, whether seen again by an event or a scan).
2. Complete and valid: SEEN -> READY. Invalid: SEEN -> FAILED with the reason
   (it blocks nothing else).
3. Before the launcher is called, one transaction moves READY -> LAUNCHING
   and stores the idempotency key ``sha256(path, attempt, seen time)``.
4. The launcher starts the run with the run tag ``xpcs-watch:<key>``
   (:func:`~flows.watch.launcher.key_tag`); creating the run and recording the
   tag are one step on the engine's side.
5. One transaction moves LAUNCHING -> LAUNCHED with the run id (guarded by the key).

A crash before 3 leaves READY (launched after restart); between 3 and 5
it leaves LAUNCHING, and the restart *reconciles*
(:class:`~flows.watch.launcher.Reconciler`): it asks the launcher for the run
tagged with the key that started since the row's launch time (on Globus: the
user's runs of the deployed flow, newest first, back to that time less a
margin for clock skew); if there is one, the row becomes LAUNCHED with that
run (no second launch); if there is none, no run was started and the row
goes back to READY (no miss). A look-up that cannot be made now (Globus
unreachable or failing, :class:`~flows.watch.launcher.RunLookupDeferred`)
leaves the row LAUNCHING (still counted in ``max_active``), asked again on a
later pass after a doubling back-off; ``max_launch_tries`` such failures in a
row fail the file. A launcher that cannot look the run up at all
(:class:`~flows.watch.launcher.RunLookupUnavailable`: 401/403, several runs
with the key ...) leaves the row FAILED with the reason, never launching
twice; ``xpcs-flows retry`` relaunches it. A launch that raises is looked up
the same way (the run may have started before the error).
Launches interrupted ``max_launch_tries`` times fail the file, so a launcher
that crashes the process cannot make the watcher loop forever. A lock file
next to the ledger (``flock``, released by the kernel when the process dies,
even by ``kill -9``) keeps a second watcher off the same directory.

Each transaction is committed to the WAL before the next step, so a killed
process loses none of them (only a power cut may lose the last instants).

LAUNCHED rows are followed (``launcher.status``) until their run ends, also
after a restart. SIGTERM and SIGINT drain: the observer stops, the pass in
progress finishes its ledger writes, runs already launched keep running,
and :meth:`Watcher.run` returns.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from flows.errors import GlobusServiceError, RunNotFound
from flows.watch.config import PassReport, WatchConfig
from flows.watch.launcher import (
    LaunchedRun,
    Launcher,
    Reconciler,
    RunLookupDeferred,
    RunLookupUnavailable,
    find_launched,
    key_tag,
)
from flows.watch.ledger import ACTIVE_STATES, FileState, Ledger, LedgerEntry, launch_key
from flows.watch.live import live_followers
from flows.watch.scan import (
    Completeness,
    CompletionTracker,
    EventCollector,
    canonical_dir,
    canonical_file,
    matches,
    scan,
)
from flows.xpcs.dataset_check import check_against_qmap, qmap_shape
from xpcs_kernel.errors import UsageError, XPCSFlowsError

__all__ = ["PassReport", "WatchConfig", "Watcher", "launch_key"]  # some re-exported

_log = logging.getLogger("flows.watch.watcher")

#: Run statuses that end a run, per engine (Globus adds ENDED).
_SUCCEEDED = frozenset({"SUCCEEDED"})
_FAILED = frozenset({"FAILED", "ENDED"})

Validator = Callable[[Path], None]


class Watcher:
    """Watch ``config.directory`` and launch one run per complete file (see module docs).

    Parameters
    ----------
    config
        What to watch.
    launcher
        Starts and follows runs (:class:`~flows.watch.launcher.FlowsLauncher` in use).
    ledger
        The durable ledger (default: the per-user state database, closed when
        :meth:`run` returns).
    validator
        Called with each complete file before launch; raises an
        :class:`~xpcs_kernel.errors.XPCSFlowsError` to fail it. Default: the
        frames open and match the q-map's detector shape.
    clock
        Monotonic clock (tests drive :meth:`run_pass` with a fake one).
    """

    def __init__(
        self,
        config: WatchConfig,
        *,
        launcher: Launcher,
        ledger: Ledger | None = None,
        validator: Validator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.directory = Path(canonical_dir(config.directory))
        self.qmap = Path(canonical_file(config.qmap))
        self.launcher = launcher
        self._owns_ledger = ledger is None
        self.ledger = ledger if ledger is not None else Ledger()
        self.clock = clock
        self._validator = validator
        self.tracker = CompletionTracker(
            settle=config.settle,
            done_marker=config.done_marker,
            open_timeout=config.open_timeout,
            clock=clock,
        )
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._known: set[str] = set()
        self._next_monitor = float("-inf")
        self._next_rescan = float("-inf")
        self._stop = threading.Event()
        self._signalled = 0
        self.watch_dir = str(self.directory)
        self._reconciler = Reconciler.for_config(self.ledger, config, clock=clock)
        self.live = live_followers(config, self.directory, self.qmap)

    # -- set-up ------------------------------------------------------------------------------
    def _default_validator(self) -> Validator:
        shape = qmap_shape(self.qmap)

        def validate(raw: Path) -> None:
            check_against_qmap(raw, shape)

        return validate

    def start(self) -> None:
        """Check the directory and q-map, and reconcile interrupted launches.

        The first :meth:`run_pass` afterwards scans the directory.
        """
        if not self.directory.is_dir():
            raise UsageError(f"{self.directory} is not a directory", argument="directory")
        if not self.qmap.is_file():
            raise UsageError(f"{self.qmap} is not a file", argument="qmap")
        if self._validator is None:
            self._validator = self._default_validator()
        self._known = {
            e.path
            for e in self.ledger.entries(watch_dir=self.watch_dir)
            if e.state is not FileState.VANISHED
        }
        self.reconcile()

    def reconcile(self, *, due_only: bool = False) -> list[str]:
        """Settle LAUNCHING rows (see the module docs); returns the paths settled.

        With ``due_only``, only rows whose look-up was deferred and is due again.
        """
        if due_only and not self._reconciler.deferred:
            return []
        rows = self.ledger.entries(watch_dir=self.watch_dir, states=[FileState.LAUNCHING])
        return self._reconciler.run(rows, self.launcher, due_only=due_only)

    # -- one pass ----------------------------------------------------------------------------
    def _observe(self, path: str, report: PassReport) -> None:
        if path in self._known:
            return
        p = Path(path)
        if not p.is_absolute() or not p.is_relative_to(self.directory):
            return
        if not self.config.recursive and p.parent != self.directory:
            return
        if not matches(
            p, self.config.pattern, done_marker=self.config.done_marker, qmap=self.qmap
        ):
            return
        self._known.add(path)
        if self.ledger.observe(path, self.watch_dir):
            report.seen.append(path)

    def _take_events(self, report: PassReport) -> None:
        now = self.clock()
        if now >= self._next_rescan:
            interval = self.config.rescan_interval
            self._next_rescan = float("inf") if interval is None else now + interval
            for path in scan(
                self.directory,
                self.config.pattern,
                recursive=self.config.recursive,
                done_marker=self.config.done_marker,
                qmap=self.qmap,
            ):
                self._observe(str(path), report)
        while True:
            try:
                event_path = self._events.get_nowait()
            except queue.Empty:
                break
            self._observe(event_path, report)

    def _check_seen(self, report: PassReport) -> None:
        assert self._validator is not None, "start() first"
        for entry in self.ledger.entries(watch_dir=self.watch_dir, states=[FileState.SEEN]):
            self._known.add(entry.path)  # retried files come back as SEEN
            if self.live is not None:  # live mode: follow it while it is written
                self.live.ensure(entry.path)
            verdict = self.tracker.check(entry.path)
            if verdict.state is Completeness.WAITING:
                continue
            self.tracker.forget(entry.path)
            if verdict.state is Completeness.VANISHED:
                self.ledger.mark_vanished(entry.path)
                self._known.discard(entry.path)
                continue
            reason = verdict.reason
            if reason is None:
                try:
                    self._validator(Path(entry.path))
                except XPCSFlowsError as exc:
                    reason = f"invalid: {exc}"
            if reason is None:
                self.ledger.mark_ready(entry.path)
                report.ready.append(entry.path)
            else:
                self.ledger.record_failed(entry.path, reason, from_states=[FileState.SEEN])
                report.failed.append(entry.path)
                _log.warning("%s: %s", entry.path, reason)

    def _monitor(self, report: PassReport) -> None:
        now = self.clock()
        if now < self._next_monitor:
            return
        self._next_monitor = now + self.config.monitor_interval
        for entry in self.ledger.entries(watch_dir=self.watch_dir, states=[FileState.LAUNCHED]):
            run_id = str(entry.run_id)
            try:
                status = self.launcher.status(run_id)
            except RunNotFound as exc:
                self.ledger.record_failed(
                    entry.path, f"run {run_id} disappeared: {exc}", from_states=[entry.state]
                )
                report.failed.append(entry.path)
                continue
            except GlobusServiceError as exc:  # transient: asked again at the next check
                _log.warning("%s: status of run %s unknown for now: %s", entry.path, run_id, exc)
                continue
            if status in _SUCCEEDED:
                self.ledger.record_succeeded(entry.path, run_id)
                report.finished.append(entry.path)
            elif status in _FAILED:
                self.ledger.record_failed(
                    entry.path, f"run {run_id} ended {status}", from_states=[entry.state]
                )
                report.failed.append(entry.path)
                _log.warning("%s: run %s ended %s", entry.path, run_id, status)

    def _launch_ready(self, report: PassReport) -> None:
        active = self.ledger.count(watch_dir=self.watch_dir, states=ACTIVE_STATES)
        if active >= self.config.max_active:
            return
        ready = self.ledger.entries(watch_dir=self.watch_dir, states=[FileState.READY])
        for entry in ready[: self.config.max_active - active]:
            if self._stopping():
                return
            self._launch_one(entry, report)

    def _launch_one(self, entry: LedgerEntry, report: PassReport) -> None:
        key = launch_key(entry)
        began = datetime.now(UTC)  # not after the ledger's launch time
        if not self.ledger.begin_launch(entry.path, key):
            return
        tag = key_tag(key)
        try:
            run: LaunchedRun | None = self.launcher.launch(
                Path(entry.path), self.qmap, tags=(*self.config.tags, tag)
            )
            error: Exception | None = None
        except (XPCSFlowsError, OSError) as exc:
            run, error = None, exc
        if error is not None:
            try:  # the launcher may have started the run before it failed
                run = find_launched(self.launcher, tag, started_after=began)
            except RunLookupDeferred as exc:  # stays LAUNCHING: looked up again later
                if self._reconciler.defer(entry.path, exc):
                    report.failed.append(entry.path)
                return
            except RunLookupUnavailable:
                run = None
        if run is None:
            reason = f"launch failed: {error}"
            self.ledger.record_failed(entry.path, reason, from_states=[FileState.LAUNCHING])
            report.failed.append(entry.path)
            _log.warning("%s: %s", entry.path, reason)
            return
        self.ledger.record_launched(entry.path, key, run.run_id, run.facility)
        report.launched.append(entry.path)
        _log.info("%s: launched run %s on %s", entry.path, run.run_id, run.facility)

    def run_pass(self) -> PassReport:
        """One pass: retry look-ups, take new files, check SEEN files, follow runs, launch."""
        report = PassReport()
        self.reconcile(due_only=True)
        self._take_events(report)
        self._check_seen(report)
        self._monitor(report)
        self._launch_ready(report)
        return report

    # -- the loop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to drain and return (from another thread)."""
        self._stop.set()

    def _stopping(self) -> bool:
        return self._signalled != 0 or self._stop.is_set()

    def _observer(self) -> BaseObserver:
        observer: BaseObserver = PollingObserver() if self.config.polling else Observer()
        observer.schedule(
            EventCollector(self._events), str(self.directory), recursive=self.config.recursive
        )
        return observer

    def run(self, *, handle_signals: bool = True) -> None:
        """Watch until :meth:`stop` (or SIGTERM/SIGINT with ``handle_signals``), then drain.

        Raises
        ------
        WatcherAlreadyRunning
            Another process watches this directory with this ledger.
        """
        with self.ledger.watch_lock(self.directory):
            previous: dict[signal.Signals, Any] = {}
            if handle_signals and threading.current_thread() is threading.main_thread():

                def on_signal(signum: int, frame: FrameType | None) -> None:
                    # only a flag: taking a lock here could deadlock with the interrupted code
                    self._signalled = signum

                for signum in (signal.SIGTERM, signal.SIGINT):
                    previous[signum] = signal.signal(signum, on_signal)
            try:
                observer = self._observer()
                observer.start()  # before the scan: nothing arrives unobserved in between
                try:
                    self.start()
                    while not self._stopping():
                        self.run_pass()
                        self._stop.wait(self.config.poll_interval)
                    if self._signalled:
                        _log.info("signal %d: drained", self._signalled)
                finally:
                    observer.stop()
                    observer.join()
                    if self.live is not None:
                        self.live.close()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
                if self._owns_ledger:
                    self.ledger.close()
        _log.info("watcher on %s stopped", self.directory)
