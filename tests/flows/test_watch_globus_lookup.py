"""Interrupted launches on Globus: the watcher finds the run by its key tag (canned responses).

The launcher is :class:`~flows.watch.launcher.FlowsLauncher` on the Globus
engine with a fixed flow id and a FlowsClient without retries; only its
``launch`` is replaced (it records the call, so a second launch would show).
The ledger row is put in LAUNCHING as a watcher killed between "the launcher
was called" and "the ledger recorded the run id" leaves it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import globus_sdk
import pytest
import requests
import responses
from globus_sdk.transport import RetryConfig
from responses import matchers

from flows.errors import GlobusServiceError
from flows.globus.deploy import default_state_path
from flows.watch.launcher import (
    LOOKUP_MARGIN,
    FlowsLauncher,
    LaunchedRun,
    RunLookupDeferred,
    RunLookupUnavailable,
    find_launched,
    key_tag,
)
from flows.watch.ledger import FileState, Ledger, launch_key
from flows.watch.scan import canonical_dir
from flows.watch.watcher import WatchConfig, Watcher
from tests.flows.test_launch_support import write_deploy_state
from tests.flows.test_watch_fakes import FakeClock, write_h5

FLOWS_API = "https://flows.automate.globus.org"
FLOW_ID = str(uuid.uuid4())
QUERY = {"filter_flow_id": FLOW_ID, "filter_roles": "run_owner", "orderby": "start_time DESC"}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def _flows_client() -> globus_sdk.FlowsClient:
    return globus_sdk.FlowsClient(
        authorizer=globus_sdk.AccessTokenAuthorizer("flows-token"),
        retry_config=RetryConfig(max_retries=0),
    )


@pytest.fixture(autouse=True)
def _run_handles_use_the_test_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("flows.runs.handle.globus_flows_client", _flows_client)


class RecordingLauncher(FlowsLauncher):
    """The Globus launcher whose launches are recorded (and fail with ``launch_error``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(engine="globus", flow_id=FLOW_ID, flows_client=_flows_client(), **kwargs)
        self.launches: list[Path] = []
        self.launch_error: Exception | None = None

    def launch(self, raw: Path, qmap: Path, *, tags: Sequence[str]) -> LaunchedRun:
        self.launches.append(raw)
        if self.launch_error is not None:
            raise self.launch_error
        return LaunchedRun(f"new-{len(self.launches)}", "polaris")


def _run(n: int, started: datetime, tags: Sequence[str] = ("facility:polaris",)) -> dict[str, Any]:
    run_id = str(uuid.UUID(int=n))
    return {
        "run_id": run_id,
        "action_id": run_id,
        "flow_id": FLOW_ID,
        "status": "ACTIVE",
        "label": f"run {n}",
        "tags": list(tags),
        "start_time": started.isoformat(),
        "completion_time": None,
    }


def _list_runs(mock: responses.RequestsMock, pages: Sequence[Sequence[dict[str, Any]]]) -> None:
    """``GET /runs`` answers ``pages``, each only with the query (and marker) we must send."""
    for i, runs in enumerate(pages):
        last = i == len(pages) - 1
        mock.add(
            responses.GET,
            f"{FLOWS_API}/runs",
            json={"runs": list(runs), "has_next_page": not last, "marker": f"m{i + 1}"},
            match=[matchers.query_param_matcher({**QUERY, **({"marker": f"m{i}"} if i else {})})],
        )


def _list_calls(mock: responses.RequestsMock) -> list[dict[str, list[str]]]:
    urls = [urlsplit(str(call.request.url)) for call in mock.calls]
    return [parse_qs(url.query) for url in urls if url.path == "/runs"]


def _status(mock: responses.RequestsMock, run: dict[str, Any], status: str) -> None:
    mock.add(responses.GET, f"{FLOWS_API}/runs/{run['run_id']}", json={**run, "status": status})


class Setup:
    """A beamline directory with one data file and the ledger."""

    def __init__(self, tmp_path: Path) -> None:
        self.beam = Path(canonical_dir(tmp_path)) / "beam"
        self.beam.mkdir()
        self.qmap = tmp_path / "qmap.h5"
        self.qmap.write_bytes(b"q")
        self.path = str(write_h5(self.beam / "a.h5"))
        self.ledger = Ledger(tmp_path / "state.db")
        self.clock = FakeClock()
        assert self.ledger.observe(self.path, str(self.beam))
        assert self.ledger.mark_ready(self.path)
        self.key = launch_key(self.ledger.get(self.path))
        self.tag = key_tag(self.key)

    def interrupted(self) -> datetime:
        """LAUNCHING, as left by a kill after the launcher was called; returns the launch time."""
        assert self.ledger.begin_launch(self.path, self.key)
        return datetime.fromisoformat(str(self.ledger.get(self.path).launch_time))

    def watcher(self, launcher: FlowsLauncher, **config: Any) -> Watcher:
        settings: dict[str, Any] = {"settle": 1.0, "monitor_interval": 5.0, **config}
        watcher = Watcher(
            WatchConfig(directory=self.beam, qmap=self.qmap, **settings),
            launcher=launcher,
            ledger=self.ledger,
            validator=lambda raw: None,
            clock=self.clock,
        )
        watcher.start()
        return watcher


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    yield s
    s.ledger.close()


def test_restart_adopts_the_globus_run_tagged_with_the_key(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    launched = setup.interrupted()
    ours = _run(
        7, launched + timedelta(seconds=2), ["facility:polaris", "engine:globus", setup.tag]
    )
    _list_runs(
        mock,
        [
            [_run(9, launched + timedelta(minutes=3)), _run(8, launched + timedelta(minutes=1))],
            [ours, _run(6, launched - timedelta(minutes=4))],  # within the margin: still read
            [_run(5, launched - LOOKUP_MARGIN - timedelta(seconds=1))],  # the scan ends here
            [_run(4, launched - timedelta(days=1), [setup.tag])],  # never asked for
        ],
    )
    launcher = RecordingLauncher()
    watcher = setup.watcher(launcher)

    entry = setup.ledger.get(setup.path)
    assert (entry.state, entry.run_id, entry.facility) == (
        FileState.LAUNCHED,
        ours["run_id"],
        "polaris",
    )
    base = {k: [v] for k, v in QUERY.items()}
    assert _list_calls(mock) == [base, {**base, "marker": ["m1"]}, {**base, "marker": ["m2"]}]

    # followed on Globus (the run index never heard of it), and never launched again
    _status(mock, ours, "ACTIVE")
    watcher.run_pass()
    assert setup.ledger.get(setup.path).state is FileState.LAUNCHED
    _status(mock, ours, "SUCCEEDED")
    setup.clock.advance(5.0)
    assert watcher.run_pass().finished == [setup.path]
    assert setup.ledger.get(setup.path).state is FileState.SUCCEEDED
    assert launcher.launches == []


def test_restart_relaunches_when_no_run_since_the_launch_has_the_key(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    launched = setup.interrupted()
    _list_runs(
        mock,
        [
            [_run(3, launched + timedelta(minutes=1), [key_tag("other")])],
            [_run(2, launched - timedelta(hours=1)), _run(1, launched - timedelta(hours=2))],
            [_run(0, launched - timedelta(days=3), [setup.tag])],  # older than the bound
        ],
    )
    launcher = RecordingLauncher()
    watcher = setup.watcher(launcher)
    assert setup.ledger.get(setup.path).state is FileState.READY
    assert len(_list_calls(mock)) == 2  # stopped at the first run older than the bound
    assert watcher.run_pass().launched == [setup.path]
    assert launcher.launches == [Path(setup.path)]
    entry = setup.ledger.get(setup.path)
    assert (entry.state, entry.run_id, entry.launch_tries) == (FileState.LAUNCHED, "new-1", 2)


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "json": {"error": {"code": "UNAVAILABLE", "detail": "maintenance"}}},
        {"body": requests.ConnectionError("connection refused")},
    ],
    ids=["503", "network"],
)
def test_unreachable_globus_keeps_the_row_launching_and_asks_again(
    mock: responses.RequestsMock, setup: Setup, failure: dict[str, Any]
) -> None:
    setup.interrupted()
    mock.add(responses.GET, f"{FLOWS_API}/runs", **failure)
    launcher = RecordingLauncher()
    watcher = setup.watcher(launcher, max_launch_tries=3, max_active=1)
    assert setup.ledger.get(setup.path).state is FileState.LAUNCHING
    assert len(_list_calls(mock)) == 1

    watcher.run_pass()  # too early: the back-off (monitor_interval) has not passed
    assert len(_list_calls(mock)) == 1
    setup.clock.advance(5.0)
    watcher.run_pass()
    assert len(_list_calls(mock)) == 2
    assert setup.ledger.get(setup.path).state is FileState.LAUNCHING
    setup.clock.advance(5.0)
    watcher.run_pass()  # the back-off doubled
    assert len(_list_calls(mock)) == 2
    setup.clock.advance(5.0)
    assert watcher.run_pass().failed == []
    assert len(_list_calls(mock)) == 3

    entry = setup.ledger.get(setup.path)  # max_launch_tries look-ups failed in a row
    assert entry.state is FileState.FAILED
    assert "3 look-ups of its run failed" in str(entry.reason)
    assert "xpcs-flows retry" in str(entry.reason)
    setup.clock.advance(600.0)
    watcher.run_pass()
    assert len(_list_calls(mock)) == 3  # no more look-ups
    assert launcher.launches == []


def test_a_lookup_that_succeeds_later_settles_the_row(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    launched = setup.interrupted()
    mock.add(responses.GET, f"{FLOWS_API}/runs", status=502, json={"error": {"code": "BAD"}})
    launcher = RecordingLauncher()
    watcher = setup.watcher(launcher)
    assert setup.ledger.get(setup.path).state is FileState.LAUNCHING
    mock.reset()
    ours = _run(1, launched, [setup.tag])
    _list_runs(mock, [[ours, _run(0, launched - timedelta(hours=1))]])
    setup.clock.advance(5.0)
    watcher.run_pass()
    entry = setup.ledger.get(setup.path)
    assert (entry.state, entry.run_id) == (FileState.LAUNCHED, ours["run_id"])
    assert launcher.launches == []


def test_a_refused_lookup_fails_the_file_with_the_reason(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    setup.interrupted()
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs",
        status=403,
        json={"error": {"code": "FORBIDDEN", "detail": "missing consent"}},
    )
    launcher = RecordingLauncher()
    watcher = setup.watcher(launcher)
    entry = setup.ledger.get(setup.path)
    assert entry.state is FileState.FAILED
    reason = str(entry.reason)
    assert reason.startswith("interrupted while launching; cannot look up Globus runs")
    assert "refused (403 FORBIDDEN): missing consent" in reason
    assert "xpcs-flows retry" in reason
    setup.clock.advance(600.0)
    watcher.run_pass()
    assert len(_list_calls(mock)) == 1
    assert launcher.launches == []


def test_two_runs_with_the_key_fail_the_file_naming_both(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    launched = setup.interrupted()
    first = _run(2, launched + timedelta(seconds=1), [setup.tag])
    second = _run(1, launched, [setup.tag])
    _list_runs(mock, [[first], [second, _run(0, launched - timedelta(hours=1))]])
    launcher = RecordingLauncher()
    watcher = setup.watcher(launcher)
    watcher.run_pass()
    entry = setup.ledger.get(setup.path)
    assert entry.state is FileState.FAILED
    assert first["run_id"] in str(entry.reason)
    assert second["run_id"] in str(entry.reason)
    assert launcher.launches == []


def test_a_failed_globus_launch_adopts_the_run_it_started(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    now = datetime.now().astimezone()
    ours = _run(1, now, ["facility:polaris", setup.tag])
    _list_runs(mock, [[ours, _run(0, now - timedelta(hours=1))]])
    launcher = RecordingLauncher()
    launcher.launch_error = GlobusServiceError("read timed out", operation="run_flow")
    watcher = setup.watcher(launcher)
    assert watcher.run_pass().launched == [setup.path]
    entry = setup.ledger.get(setup.path)
    assert (entry.state, entry.run_id) == (FileState.LAUNCHED, ours["run_id"])
    assert launcher.launches == [Path(setup.path)]


def test_a_failed_globus_launch_with_globus_unreachable_stays_launching(
    mock: responses.RequestsMock, setup: Setup
) -> None:
    mock.add(responses.GET, f"{FLOWS_API}/runs", status=503, json={"error": {"code": "DOWN"}})
    launcher = RecordingLauncher()
    launcher.launch_error = GlobusServiceError("read timed out", operation="run_flow")
    watcher = setup.watcher(launcher)
    report = watcher.run_pass()
    assert (report.launched, report.failed) == ([], [])
    assert setup.ledger.get(setup.path).state is FileState.LAUNCHING
    mock.reset()
    _list_runs(mock, [[]])  # Globus is back: no run was started
    launcher.launch_error = None
    setup.clock.advance(5.0)
    assert watcher.run_pass().launched == [setup.path]  # requeued, then launched again
    entry = setup.ledger.get(setup.path)
    assert (entry.state, entry.run_id, entry.launch_tries) == (FileState.LAUNCHED, "new-2", 2)
    assert launcher.launches == [Path(setup.path)] * 2


def test_find_uses_the_deployed_flow_and_the_margin(mock: responses.RequestsMock) -> None:
    flow_id = write_deploy_state()["flow_id"]
    launched = datetime.now().astimezone()
    ours = _run(1, launched - timedelta(minutes=9), ["facility:aurora", "xpcs-watch:k"])
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs",
        json={"runs": [ours, _run(0, launched - timedelta(minutes=11))], "has_next_page": True},
        match=[matchers.query_param_matcher({**QUERY, "filter_flow_id": flow_id})],
    )
    launcher = FlowsLauncher(engine="globus", flows_client=_flows_client())
    found = launcher.find("xpcs-watch:k", started_after=launched)
    assert found == LaunchedRun(ours["run_id"], "aurora")
    narrow = FlowsLauncher(
        engine="globus", flows_client=_flows_client(), lookup_margin=timedelta()
    )
    assert narrow.find("xpcs-watch:k", started_after=launched) is None
    assert len(mock.calls) == 2


def test_find_searches_a_flow_recreated_since_the_launch(mock: responses.RequestsMock) -> None:
    """The flow was recreated under a new id after the launch (the old one was gone):
    the run started under the old id is still found, so the file is not launched twice."""
    old_id = write_deploy_state()["flow_id"]
    new_id = str(uuid.uuid4())
    launched = datetime.now().astimezone()
    path = default_state_path()
    state = json.loads(path.read_text())
    entry = state["flows"]["xpcs"]
    entry["flow_id"] = new_id
    replaced_at = (launched + timedelta(minutes=1)).isoformat()
    entry["replaced_flows"] = [{"flow_id": old_id, "replaced_at": replaced_at}]
    path.write_text(json.dumps(state))
    ours = _run(1, launched + timedelta(seconds=5), ["facility:polaris", "xpcs-watch:k"])
    both = {**QUERY, "filter_flow_id": f"{new_id},{old_id}"}
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs",
        json={"runs": [ours], "has_next_page": False},
        match=[matchers.query_param_matcher(both)],
    )
    launcher = FlowsLauncher(engine="globus", flows_client=_flows_client())
    assert launcher.find("xpcs-watch:k", started_after=launched) == LaunchedRun(
        ours["run_id"], "polaris"
    )
    # replaced long before this launch: only the current flow is listed
    entry["replaced_flows"] = [
        {"flow_id": old_id, "replaced_at": (launched - timedelta(days=1)).isoformat()}
    ]
    path.write_text(json.dumps(state))
    mock.add(
        responses.GET,
        f"{FLOWS_API}/runs",
        json={"runs": [], "has_next_page": False},
        match=[matchers.query_param_matcher({**QUERY, "filter_flow_id": new_id})],
    )
    assert launcher.find("xpcs-watch:k", started_after=launched) is None
    assert len(mock.calls) == 2


def test_find_on_globus_needs_the_launch_time(mock: responses.RequestsMock) -> None:
    launcher = FlowsLauncher(engine="globus", flow_id=FLOW_ID, flows_client=_flows_client())
    with pytest.raises(RunLookupUnavailable, match="launch time is unknown") as info:
        launcher.find("xpcs-watch:k")
    assert not isinstance(info.value, RunLookupDeferred)
    assert len(mock.calls) == 0


@pytest.mark.parametrize(("status", "deferred"), [(500, True), (429, True), (400, False)])
def test_find_on_globus_tells_passing_failures_apart(
    mock: responses.RequestsMock, status: int, deferred: bool
) -> None:
    mock.add(responses.GET, f"{FLOWS_API}/runs", status=status, json={"error": {"code": "E"}})
    launcher = FlowsLauncher(engine="globus", flow_id=FLOW_ID, flows_client=_flows_client())
    with pytest.raises(RunLookupUnavailable) as info:
        launcher.find("xpcs-watch:k", started_after=datetime.now().astimezone())
    assert isinstance(info.value, RunLookupDeferred) is deferred
    assert (info.value.tag, info.value.engine) == ("xpcs-watch:k", "globus")


def test_find_launched_calls_older_launchers_with_the_tag_alone() -> None:
    calls: list[tuple[str, ...]] = []

    class Old:
        def find(self, tag: str) -> LaunchedRun | None:
            calls.append((tag,))
            return None

    class New:
        def find(self, tag: str, *, started_after: datetime | None = None) -> LaunchedRun | None:
            calls.append((tag, str(started_after)))
            return LaunchedRun("r", "f")

    when = datetime.now().astimezone()
    assert find_launched(Old(), "t", started_after=when) is None  # type: ignore[arg-type]
    assert find_launched(New(), "t", started_after=when) == LaunchedRun("r", "f")  # type: ignore[arg-type]
    assert calls == [("t",), ("t", str(when))]
