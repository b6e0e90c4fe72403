"""Choosing the facility of a launch, and holding it client-side past a planned window.

:func:`choose_facility` asks the facility chooser where a launch goes. A
chooser whose policy has ``SelectionPolicy(defer_planned=True)`` may answer
"this facility, but not before ``Candidate.start_after``": the facility is
in (or about to enter) a planned maintenance window with a known end, and
waiting for it still beats queueing elsewhere. The submission is then held
here, client-side, and nothing is sent (not even the stage-in) until that
time; then the choice is made again with fresh status (the window may have
ended early or been extended, another facility may have freed up), and the
run goes where that decision says.

The hold is

* bounded: a facility that can only be sent to more than
  ``LaunchHold.max_hold_s`` from the first decision is passed over for the
  next best (with a message); when every eligible facility is like that,
  :class:`~deployments.NoFacilityAvailable` says so;
* reported: one line through ``LaunchHold.notify`` (stderr by default) when
  it starts, saying where, until when and why;
* cancellable: setting ``LaunchHold.cancel`` (a :class:`threading.Event`,
  checked at least every ``poll_s`` seconds) or Ctrl-C ends it with
  :class:`~flows.errors.LaunchCancelled`, nothing sent.

Failover (:func:`flows.launch.failover.run_with_failover`) honours a
deferred candidate the same way (:func:`hold_failover`) before relaunching
on it. With the default policy (``defer_planned=False``) no candidate is
ever deferred and nothing here waits.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from deployments import (
    Candidate,
    Decision,
    FacilityChooser,
    NoFacilityAvailable,
    RunHistory,
)
from flows.errors import LaunchCancelled
from flows.launch.request import LaunchRequest

__all__ = ["LaunchHold", "choose_facility", "hold_failover", "too_late"]

#: Decisions taken at most per launch (each but the last one after a hold).
_MAX_ROUNDS = 8


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class LaunchHold:
    """How a launch is held until a deferred facility may be sent to.

    Attributes
    ----------
    max_hold_s
        At most this many seconds of holding per launch (or per failover).
    poll_s
        The cancel event is checked at least this often.
    clock
        POSIX time source (injectable; the chooser should use the same).
    sleep
        Waits the given seconds (injectable, so tests do not really wait);
        default: waits on ``cancel`` when given (so setting it ends the wait
        at once), else :func:`time.sleep`.
    cancel
        Set it (from another thread) to cancel the hold.
    notify
        Receives one line when a hold starts or a facility is passed over.
    """

    max_hold_s: float = 6 * 3600.0
    poll_s: float = 30.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] | None = None
    cancel: threading.Event | None = None
    notify: Callable[[str], None] = _stderr

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (or less, when cancelled)."""
        if self.sleep is not None:
            self.sleep(seconds)
        elif self.cancel is not None:
            self.cancel.wait(seconds)
        else:
            time.sleep(seconds)

    def wait_until(self, dataset: str, candidate: Candidate) -> None:
        """Hold until ``candidate.start_after``.

        Raises
        ------
        LaunchCancelled
            When ``cancel`` is set first.
        """
        when = candidate.start_after
        if when is None:
            return
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise LaunchCancelled(dataset, facility=candidate.facility, start_after=when)
            left = when - self.clock()
            if left <= 0:
                return
            self.pause(min(left, self.poll_s))


def too_late(decision: Decision, *, now: float, budget_s: float) -> list[str]:
    """Deferred candidates that may only be sent more than ``budget_s`` after ``now``."""
    return [
        c.facility
        for c in decision.ranked
        if c.start_after is not None and c.start_after - now > budget_s
    ]


def _announce(hold: LaunchHold, dataset: str, c: Candidate, now: float, retry: str = "") -> None:
    assert c.start_after is not None
    hold.notify(
        f"holding {dataset!r} for {c.facility} until {_when(c.start_after)} "
        f"({c.start_after - now:.0f} s, after its planned window){retry}: nothing is sent "
        f"before then; the choice is made again at that time (cancel to give up)"
    )


def _passed_over(hold: LaunchHold, dataset: str, decision: Decision, late: Iterable[str]) -> None:
    for name in late:
        c = next(c for c in decision.ranked if c.facility == name)
        assert c.start_after is not None
        hold.notify(
            f"passing over {name} for {dataset!r}: free only at {_when(c.start_after)}, "
            f"beyond the {hold.max_hold_s:.0f} s hold limit"
        )


def _decide(request: LaunchRequest, chooser: FacilityChooser | None) -> Decision:
    if chooser is not None:
        return chooser.decide(request.job)
    with RunHistory(request.db_path) as history:
        return FacilityChooser(history=history).decide(request.job)


def choose_facility(
    request: LaunchRequest,
    *,
    chooser: FacilityChooser | None = None,
    hold: LaunchHold | None = None,
) -> tuple[str, Decision | None]:
    """The facility to run on first, and the decision (``None`` when one was named).

    With ``facility="auto"`` the chooser ranks every deployment; the run goes
    to the best one that runs on the request's engine (a local engine run
    therefore goes to a local deployment even when a remote one ranks first;
    the decision is reported anyway). When that one is deferred (only with a
    chooser whose policy has ``defer_planned=True``), this returns only once
    it may be sent: see the module docstring.

    Raises
    ------
    NoFacilityAvailable
        No deployment of the request's engine is eligible (within the hold limit).
    LaunchCancelled
        The hold was cancelled (nothing was sent).
    """
    if request.facility != "auto":
        return request.facility, None
    how = hold or LaunchHold()
    others = [n for n in request.deployments if n not in request.engine_deployments()]
    first = how.clock()
    for _ in range(_MAX_ROUNDS):
        decision = _decide(request, chooser)
        now = how.clock()
        late = too_late(decision, now=now, budget_s=how.max_hold_s - (now - first))
        best = decision.next_after([*others, *late])
        if best is None:
            why = f" within the {how.max_hold_s:.0f} s hold limit" if late else ""
            raise NoFacilityAvailable(
                f"no {request.engine}-engine facility can run {request.dataset!r}{why}",
                table=decision.table(),
            )
        _passed_over(how, request.dataset, decision, [n for n in late if n not in others])
        if best.start_after is None or best.start_after <= now:
            return best.facility, decision
        _announce(how, request.dataset, best, now)
        how.wait_until(request.dataset, best)
    raise NoFacilityAvailable(
        f"{request.dataset!r} was held {_MAX_ROUNDS - 1} times and is still deferred",
        table=decision.table(),
    )


def hold_failover(
    request: LaunchRequest, decision: Decision, facility: str, hold: LaunchHold
) -> None:
    """Before a relaunch on ``facility``: hold while its candidate is deferred.

    Raises
    ------
    LaunchCancelled
        The hold was cancelled (the relaunch was not sent).
    """
    row = next((c for c in decision.ranked if c.facility == facility), None)
    if row is None or row.start_after is None or row.start_after <= hold.clock():
        return
    _announce(hold, request.dataset, row, hold.clock(), retry=" to relaunch it")
    hold.wait_until(request.dataset, row)
