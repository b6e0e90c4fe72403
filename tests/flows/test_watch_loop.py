"""The watcher's passes, driven with a fake clock and a fake launcher (no observer, no sleeps)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from flows.errors import WatcherAlreadyRunning
from flows.watch.launcher import key_tag
from flows.watch.ledger import FileState, Ledger
from flows.watch.watcher import WatchConfig, Watcher, launch_key
from tests.flows.test_watch_fakes import FakeClock, FakeLauncher, write_h5
from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic


def _no_check(raw: Path) -> None:
    return None


@pytest.fixture
def beam(tmp_path: Path) -> Path:
    directory = tmp_path / "beam"
    directory.mkdir()
    return directory


def _watcher(
    tmp_path: Path,
    beam: Path,
    launcher: FakeLauncher,
    clock: FakeClock,
    *,
    validator: Callable[[Path], None] | None = _no_check,
    qmap: Path | None = None,
    **config: object,
) -> Watcher:
    if qmap is None:
        qmap = tmp_path / "qmap.h5"
        qmap.write_bytes(b"q")
    settings: dict[str, object] = {
        "settle": 1.0,
        "monitor_interval": 0.0,
        "rescan_interval": 0.0,
        "open_timeout": 10.0,
        **config,
    }
    watcher = Watcher(
        WatchConfig(directory=beam, qmap=qmap, **settings),  # type: ignore[arg-type]
        launcher=launcher,
        ledger=Ledger(tmp_path / "state.db"),
        validator=validator,
        clock=clock,
    )
    watcher.start()
    return watcher


def _states(watcher: Watcher) -> dict[str, FileState]:
    return {Path(e.path).name: e.state for e in watcher.ledger.entries()}


def test_a_file_still_growing_is_not_launched_until_it_settles(tmp_path: Path, beam: Path) -> None:
    launcher, clock = FakeLauncher(), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock)
    raw = beam / "growing.h5"
    write_h5(raw)
    full = raw.read_bytes()
    raw.write_bytes(full[: len(full) // 2])  # half written: neither settled nor openable
    watcher.run_pass()
    assert _states(watcher) == {"growing.h5": FileState.SEEN}
    for _ in range(5):  # grows a little every 0.5 s: never 1 s unchanged
        clock.advance(0.5)
        with open(raw, "ab") as f:
            f.write(b"\0" * 16)
        assert watcher.run_pass().launched == []
    clock.advance(1.5)  # unchanged long enough, but the HDF5 file does not open
    watcher.run_pass()
    assert launcher.runs == {}
    assert _states(watcher) == {"growing.h5": FileState.SEEN}
    raw.write_bytes(full)  # the writer finishes
    watcher.run_pass()
    clock.advance(0.9)
    assert watcher.run_pass().launched == []
    clock.advance(0.2)
    assert watcher.run_pass().launched == [str(raw)]
    assert launcher.launched_names() == ["growing.h5"]
    entry = watcher.ledger.get(str(raw))
    assert entry.state is FileState.LAUNCHED
    assert entry.run_id in launcher.runs
    assert key_tag(str(entry.launch_key)) in launcher.runs[str(entry.run_id)].tags


def test_invalid_files_fail_with_a_reason_and_block_nothing(tmp_path: Path, beam: Path) -> None:
    spec = SyntheticSpec(n_frames=20, shape=(24, 24), n_dynamic_q=2, n_static_q=4)
    write_synthetic(beam / "good1.h5", tmp_path / "qmap.h5", spec)
    write_synthetic(beam / "good2.h5", tmp_path / "qmap.h5", spec)
    write_h5(beam / "wrong-shape.h5", shape=(16, 20))
    (beam / "garbage.h5").write_bytes(b"not hdf5 at all" * 10)
    (beam / "notes.txt").write_text("not matched by the pattern")
    launcher, clock = FakeLauncher(), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock, validator=None, qmap=tmp_path / "qmap.h5")
    watcher.run_pass()
    clock.advance(1.1)
    report = watcher.run_pass()
    assert sorted(Path(p).name for p in report.launched) == ["good1.h5", "good2.h5"]
    assert [Path(p).name for p in report.failed] == ["wrong-shape.h5"]
    clock.advance(10.0)  # garbage stays unopenable past open_timeout
    watcher.run_pass()
    states = _states(watcher)
    assert states == {
        "good1.h5": FileState.LAUNCHED,
        "good2.h5": FileState.LAUNCHED,
        "wrong-shape.h5": FileState.FAILED,
        "garbage.h5": FileState.FAILED,
    }
    wrong = watcher.ledger.get(str(beam / "wrong-shape.h5"))
    assert "q-map" in str(wrong.reason)
    assert "(16, 20)" in str(wrong.reason)
    garbage = watcher.ledger.get(str(beam / "garbage.h5"))
    assert "not a complete data file after 10 s" in str(garbage.reason)
    assert launcher.launched_names() == ["good1.h5", "good2.h5"]


def test_max_active_runs_the_rest_wait_ready(tmp_path: Path, beam: Path) -> None:
    for i in range(5):
        write_h5(beam / f"f{i}.h5")
    launcher, clock = FakeLauncher(), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock, max_active=2)
    watcher.run_pass()
    clock.advance(1.1)
    assert [Path(p).name for p in watcher.run_pass().launched] == ["f0.h5", "f1.h5"]
    assert watcher.run_pass().launched == []
    assert sorted(_states(watcher).values()).count(FileState.READY) == 3
    launcher.end_all("SUCCEEDED")
    report = watcher.run_pass()
    assert sorted(Path(p).name for p in report.finished) == ["f0.h5", "f1.h5"]
    assert [Path(p).name for p in report.launched] == ["f2.h5", "f3.h5"]
    launcher.end_all("FAILED")
    report = watcher.run_pass()
    assert [Path(p).name for p in report.launched] == ["f4.h5"]
    states = _states(watcher)
    assert states["f0.h5"] is FileState.SUCCEEDED
    assert states["f2.h5"] is FileState.FAILED
    assert states["f4.h5"] is FileState.LAUNCHED
    run_id = watcher.ledger.get(str(beam / "f2.h5")).run_id
    assert watcher.ledger.get(str(beam / "f2.h5")).reason == f"run {run_id} ended FAILED"
    assert len(launcher.runs) == 5


def test_a_launch_error_fails_that_file_only(tmp_path: Path, beam: Path) -> None:
    write_h5(beam / "a.h5")
    write_h5(beam / "b.h5")
    launcher, clock = FakeLauncher(fail_for={"a.h5"}), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock)
    watcher.run_pass()
    clock.advance(1.1)
    watcher.run_pass()
    entry = watcher.ledger.get(str(beam / "a.h5"))
    assert entry.state is FileState.FAILED
    assert "launch failed" in str(entry.reason)
    assert "refused" in str(entry.reason)
    assert launcher.launched_names() == ["b.h5"]


def test_done_marker_decides_completeness(tmp_path: Path, beam: Path) -> None:
    write_h5(beam / "a.h5")
    launcher, clock = FakeLauncher(), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock, done_marker=".done")
    watcher.run_pass()
    clock.advance(100.0)
    assert watcher.run_pass().launched == []
    (beam / "a.h5.done").touch()
    assert watcher.run_pass().launched == [str(beam / "a.h5")]
    assert _states(watcher) == {"a.h5": FileState.LAUNCHED}  # the marker is not a data file


def test_a_file_removed_before_completion_vanishes_and_can_come_back(
    tmp_path: Path, beam: Path
) -> None:
    raw = write_h5(beam / "a.h5")
    launcher, clock = FakeLauncher(), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock)
    watcher.run_pass()
    raw.unlink()
    watcher.run_pass()
    assert _states(watcher) == {"a.h5": FileState.VANISHED}
    write_h5(raw)
    watcher.run_pass()
    clock.advance(1.1)
    assert watcher.run_pass().launched == [str(raw)]


def _crash_while_launching(tmp_path: Path, beam: Path, launcher: FakeLauncher) -> str:
    """Leave a LAUNCHING row as a process killed inside the launcher call would."""
    write_h5(beam / "a.h5")
    clock = FakeClock()
    first = _watcher(tmp_path, beam, launcher, clock)
    first.run_pass()
    clock.advance(1.1)
    first.launcher = FakeLauncher()  # a launcher that is never called
    first._launch_ready = lambda report: None  # type: ignore[method-assign]
    first.run_pass()
    path = str(beam / "a.h5")
    entry = first.ledger.get(path)
    assert entry.state is FileState.READY
    assert first.ledger.begin_launch(path, launch_key(entry))
    return path


def test_restart_adopts_the_run_an_interrupted_launch_started(tmp_path: Path, beam: Path) -> None:
    launcher = FakeLauncher()
    path = _crash_while_launching(tmp_path, beam, launcher)
    entry = Ledger(tmp_path / "state.db").get(path)
    run = launcher.launch(Path(path), tmp_path / "qmap.h5", tags=(key_tag(str(entry.launch_key)),))
    watcher = _watcher(tmp_path, beam, launcher, FakeClock())
    assert watcher.ledger.get(path).state is FileState.LAUNCHED
    assert watcher.ledger.get(path).run_id == run.run_id
    watcher.run_pass()
    assert len(launcher.runs) == 1  # not launched a second time


def test_restart_relaunches_when_the_interrupted_launch_started_nothing(
    tmp_path: Path, beam: Path
) -> None:
    launcher = FakeLauncher()
    path = _crash_while_launching(tmp_path, beam, launcher)
    watcher = _watcher(tmp_path, beam, launcher, FakeClock())
    assert watcher.ledger.get(path).state is FileState.READY
    assert watcher.run_pass().launched == [path]
    assert len(launcher.runs) == 1
    entry = watcher.ledger.get(path)
    assert entry.launch_tries == 2
    assert launcher.runs[str(entry.run_id)].tags == (key_tag(str(entry.launch_key)),)


def test_restart_without_lookup_fails_the_file_rather_than_launch_twice(
    tmp_path: Path, beam: Path
) -> None:
    launcher = FakeLauncher(lookup_available=False)
    path = _crash_while_launching(tmp_path, beam, launcher)
    watcher = _watcher(tmp_path, beam, launcher, FakeClock())
    entry = watcher.ledger.get(path)
    assert entry.state is FileState.FAILED
    assert "interrupted while launching" in str(entry.reason)
    assert launcher.runs == {}


def test_repeatedly_interrupted_launches_end_failed(tmp_path: Path, beam: Path) -> None:
    launcher = FakeLauncher()
    path = _crash_while_launching(tmp_path, beam, launcher)
    watcher = _watcher(tmp_path, beam, launcher, FakeClock(), max_launch_tries=1)
    entry = watcher.ledger.get(path)
    assert entry.state is FileState.FAILED
    assert entry.reason == "the launch was interrupted 1 times without starting a run"


def test_retry_requeues_a_failed_file_with_a_new_key(tmp_path: Path, beam: Path) -> None:
    write_h5(beam / "a.h5")
    launcher, clock = FakeLauncher(), FakeClock()
    watcher = _watcher(tmp_path, beam, launcher, clock)
    watcher.run_pass()
    clock.advance(1.1)
    watcher.run_pass()
    path = str(beam / "a.h5")
    first = watcher.ledger.get(path)
    launcher.end_all("FAILED")
    watcher.run_pass()
    assert watcher.ledger.get(path).state is FileState.FAILED
    again = watcher.ledger.retry(path)
    assert (again.state, again.attempt, again.run_id, again.reason) == (
        FileState.SEEN,
        2,
        None,
        None,
    )
    watcher.run_pass()
    clock.advance(1.1)
    assert watcher.run_pass().launched == [path]
    second = watcher.ledger.get(path)
    assert second.launch_key != first.launch_key
    assert second.run_id != first.run_id
    assert len(launcher.runs) == 2


def test_a_second_watcher_on_the_same_directory_is_refused(tmp_path: Path, beam: Path) -> None:
    ledger = Ledger(tmp_path / "state.db")
    with ledger.watch_lock(beam) as lock:
        assert lock.exists()
        with pytest.raises(WatcherAlreadyRunning) as info, ledger.watch_lock(beam):
            pass
        assert info.value.directory == str(beam)
    with ledger.watch_lock(beam):  # released: may be taken again
        pass
    assert os.path.exists(lock)


def test_recursive_watching_and_the_qmap_is_never_a_data_file(tmp_path: Path, beam: Path) -> None:
    (beam / "sub").mkdir()
    write_h5(beam / "top.h5")
    write_h5(beam / "sub" / "deep.h5")
    qmap = write_h5(beam / "qmap.h5")
    launcher, clock = FakeLauncher(), FakeClock()
    flat = _watcher(tmp_path, beam, launcher, clock, qmap=qmap)
    flat.run_pass()
    assert _states(flat) == {"top.h5": FileState.SEEN}
    deep = _watcher(tmp_path, beam, launcher, clock, qmap=qmap, recursive=True)
    deep.run_pass()
    clock.advance(1.1)
    deep.run_pass()
    assert launcher.launched_names() == ["deep.h5", "top.h5"]


def test_run_in_a_thread_sees_new_files_through_the_observer_and_stops(
    tmp_path: Path, beam: Path
) -> None:
    qmap = tmp_path / "qmap.h5"
    qmap.write_bytes(b"q")
    launcher = FakeLauncher()
    watcher = Watcher(
        WatchConfig(
            directory=beam, qmap=qmap, settle=0.05, poll_interval=0.02, rescan_interval=None
        ),
        launcher=launcher,
        ledger=Ledger(tmp_path / "state.db"),
        validator=_no_check,
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while watcher._next_rescan != float("inf"):  # the one start-up scan is over
            assert time.monotonic() < deadline
            time.sleep(0.01)
        write_h5(beam / "new.h5")  # only the observer can report it now
        while not launcher.runs and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert launcher.launched_names() == ["new.h5"]
    assert watcher.ledger.get(str(beam / "new.h5")).state is FileState.LAUNCHED
