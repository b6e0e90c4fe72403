"""Holding a launch client-side past a planned window (``SelectionPolicy(defer_planned=True)``).

Everything runs on an injected clock: a hold "sleeps" by moving it, so
nothing here really waits.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deployments import (
    Deployment,
    FacilityChooser,
    JobRequest,
    NoFacilityAvailable,
    RunHistory,
    SelectionPolicy,
)
from deployments.state import FacilityState, FacilityStatus, Outage
from deployments.status.base import StatusProbe
from flows.errors import LaunchCancelled
from flows.launch import failover as failover_runner
from flows.launch.api import LaunchHold, LaunchRequest, choose_facility
from flows.launch.failover import run_with_failover
from tests.deployments.helpers import make_deployment

NOW = 1_800_000_000.0
WINDOW_END = NOW + 600  # every test window ends here; the guard adds 60 s
DEFER = SelectionPolicy(defer_planned=True)


@dataclass
class Clock:
    """A fake clock; ``sleep`` moves it and records how long it was asked to wait."""

    t: float = NOW
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class Probe(StatusProbe):
    """An endpoint with 4 idle workers; in a planned window until ``WINDOW_END`` if ``window``."""

    kind = "fake"

    def __init__(self, name: str, clock: Clock, *, window: bool = False) -> None:
        super().__init__(name, ttl=0, clock=clock)
        self.window = window

    def fetch(self) -> FacilityStatus:
        now = self.clock()
        outages = (Outage(NOW - 60, WINDOW_END, True, "maintenance"),) if self.window else ()
        inside = self.window and now < WINDOW_END
        return FacilityStatus(
            self.facility,
            self.kind,
            FacilityState.DOWN if inside else FacilityState.UP,
            now,
            "planned maintenance" if inside else "endpoint online",
            outages,
            idle_workers=4,
            total_workers=4,
            outstanding_tasks=0,
        )


def _site(name: str, mpix: float) -> Deployment:
    # 1000 frames x 1 Mpix: mpix=100 -> 10 s of compute, mpix=0.1 -> 10 000 s
    return make_deployment(
        name,
        priors={"throughput_mpix_s": mpix, "queue_delay_s": 0},
        paths={"allowed_roots": ["/"]},
    )


def _setup(
    tmp_path: Path, sites: dict[str, tuple[float, bool]], clock: Clock
) -> tuple[LaunchRequest, FacilityChooser]:
    """``sites``: name -> (throughput Mpix/s, in a planned window now)."""
    deployments = {n: _site(n, mpix) for n, (mpix, _) in sites.items()}
    chooser = FacilityChooser(
        list(deployments.values()),
        policy=DEFER,
        clock=clock,
        probes={n: [Probe(n, clock, window=w)] for n, (_, w) in sites.items()},
    )
    job = JobRequest(dataset="A001", bytes_in=2_000_000_000, frames=1000, pixels=1_000_000)
    launch_id = str(uuid.uuid4())
    request = LaunchRequest(
        raw=tmp_path / "A001.h5",
        qmap=tmp_path / "qmap.h5",
        dataset="A001",
        options={},
        engine="globus",
        facility="auto",
        label=None,
        tags=(),
        db_path=tmp_path / "state.db",
        workdir=tmp_path / "work",
        launch_id=launch_id,
        publication_key=f"key-{launch_id}",
        job=job,
        deployments=deployments,
    )
    return request, chooser


def test_the_launch_is_held_until_the_window_is_over_then_decided_again(tmp_path: Path) -> None:
    clock = Clock()
    # a is in its window but fast; b is up but takes hours: waiting for a wins
    request, chooser = _setup(tmp_path, {"a": (100, True), "b": (0.1, False)}, clock)
    said: list[str] = []
    hold = LaunchHold(clock=clock, sleep=clock.sleep, notify=said.append, poll_s=100)
    facility, decision = choose_facility(request, chooser=chooser, hold=hold)
    assert facility == "a"
    assert clock.t == pytest.approx(WINDOW_END + 60)  # the window end + the outage guard
    assert sum(clock.slept) == pytest.approx(660)
    assert max(clock.slept) <= 100  # the cancel event is checked between short waits
    # the decision returned is the fresh one, taken once the window was over
    assert decision is not None
    assert decision.decided_at == pytest.approx(WINDOW_END + 60)
    assert decision.start_after is None
    (line,) = said
    assert line.startswith("holding 'A001' for a until ")
    assert "(660 s, after its planned window)" in line
    assert "nothing is sent before then" in line


def test_without_defer_planned_nothing_waits(tmp_path: Path) -> None:
    clock = Clock()
    request, chooser = _setup(tmp_path, {"a": (100, True), "b": (0.1, False)}, clock)
    chooser.policy = SelectionPolicy()
    hold = LaunchHold(clock=clock, sleep=clock.sleep, notify=pytest.fail)
    facility, decision = choose_facility(request, chooser=chooser, hold=hold)
    assert facility == "b"  # a is simply excluded by its window
    assert clock.slept == []
    assert decision is not None
    assert decision.start_after is None


def test_a_hold_longer_than_the_limit_passes_over_to_the_next_best(tmp_path: Path) -> None:
    clock = Clock()
    request, chooser = _setup(tmp_path, {"a": (100, True), "b": (0.1, False)}, clock)
    said: list[str] = []
    hold = LaunchHold(max_hold_s=300, clock=clock, sleep=clock.sleep, notify=said.append)
    facility, decision = choose_facility(request, chooser=chooser, hold=hold)
    assert facility == "b"
    assert clock.slept == []
    assert decision is not None
    assert decision.chosen == "a"
    assert said == [
        "passing over a for 'A001': free only at 2027-01-15T08:11:00+00:00, "
        "beyond the 300 s hold limit"
    ]


def test_no_facility_within_the_hold_limit(tmp_path: Path) -> None:
    clock = Clock()
    request, chooser = _setup(tmp_path, {"a": (100, True)}, clock)
    hold = LaunchHold(max_hold_s=300, clock=clock, sleep=clock.sleep, notify=lambda _: None)
    with pytest.raises(NoFacilityAvailable, match="within the 300 s hold limit"):
        choose_facility(request, chooser=chooser, hold=hold)
    assert clock.slept == []


def test_the_hold_is_cancellable(tmp_path: Path) -> None:
    clock = Clock()
    request, chooser = _setup(tmp_path, {"a": (100, True)}, clock)
    cancel = threading.Event()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        cancel.set()  # someone cancels during the first wait

    hold = LaunchHold(clock=clock, sleep=sleep, cancel=cancel, poll_s=30, notify=lambda _: None)
    with pytest.raises(LaunchCancelled, match="cancelled before anything was sent") as err:
        choose_facility(request, chooser=chooser, hold=hold)
    assert clock.slept == [30]
    assert (err.value.facility, err.value.start_after) == ("a", pytest.approx(WINDOW_END + 60))


def test_the_default_wait_returns_at_once_when_cancelled(tmp_path: Path) -> None:
    """Without an injected sleep the hold waits on the cancel event: setting it ends the wait."""
    clock = Clock()
    request, chooser = _setup(tmp_path, {"a": (100, True)}, clock)
    cancel = threading.Event()
    cancel.set()
    hold = LaunchHold(clock=clock, cancel=cancel, notify=lambda _: None)
    with pytest.raises(LaunchCancelled):
        choose_facility(request, chooser=chooser, hold=hold)


@dataclass
class FakeRun:
    run_id: str
    facility: str
    ok: bool
    attempts: tuple[str, ...] = ()

    @property
    def failure(self) -> dict[str, Any] | None:
        return None if self.ok else {"code": "ActionUnableToRun", "state": "Correlate"}

    def wait(self, **_: Any) -> None:
        pass

    def status(self) -> str:
        return "SUCCEEDED" if self.ok else "FAILED"


def _fake_starts(
    monkeypatch: pytest.MonkeyPatch, clock: Clock, failing: set[str]
) -> list[tuple[str, float]]:
    """Replace start_attempt: record (facility, time) and the start in the history."""
    started: list[tuple[str, float]] = []

    def start_attempt(request: LaunchRequest, facility: str, **kw: Any) -> FakeRun:
        started.append((facility, clock.t))
        run_id = f"run-{len(started)}"
        with RunHistory(request.db_path) as history:
            history.record_start(
                run_id,
                dataset=request.dataset,
                facility=facility,
                started_at=clock.t,
                attempt=kw["attempt"],
            )
        return FakeRun(run_id, facility, ok=facility not in failing)

    monkeypatch.setattr(failover_runner, "start_attempt", start_attempt)
    return started


def test_failover_to_a_deferred_facility_is_held_until_its_window_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    # a ranks first (up now), b second (waiting for its window beats c's hours)
    sites = {"a": (100, False), "b": (100, True), "c": (0.1, False)}
    request, chooser = _setup(tmp_path, sites, clock)
    started = _fake_starts(monkeypatch, clock, failing={"a"})
    said: list[str] = []
    hold = LaunchHold(clock=clock, sleep=clock.sleep, notify=said.append)
    run = run_with_failover(request, chooser=chooser, hold=hold, progress=False)
    assert run.status() == "SUCCEEDED"
    assert started == [("a", NOW), ("b", pytest.approx(WINDOW_END + 60))]
    assert len(said) == 1
    assert "to relaunch it" in said[0]


def test_failover_passes_over_a_deferred_facility_beyond_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    sites = {"a": (100, False), "b": (100, True), "c": (0.1, False)}
    request, chooser = _setup(tmp_path, sites, clock)
    started = _fake_starts(monkeypatch, clock, failing={"a"})
    hold = LaunchHold(max_hold_s=300, clock=clock, sleep=clock.sleep, notify=lambda _: None)
    run = run_with_failover(request, chooser=chooser, hold=hold, progress=False)
    assert run.status() == "SUCCEEDED"
    assert started == [("a", NOW), ("c", NOW)]
    assert clock.slept == []


def test_a_cancelled_launch_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    request, chooser = _setup(tmp_path, {"a": (100, True), "b": (0.1, False)}, clock)
    started = _fake_starts(monkeypatch, clock, failing=set())
    cancel = threading.Event()
    cancel.set()
    hold = LaunchHold(clock=clock, sleep=clock.sleep, cancel=cancel, notify=lambda _: None)
    with pytest.raises(LaunchCancelled):
        run_with_failover(request, chooser=chooser, hold=hold, progress=False)
    assert started == []
