"""The watcher as a separate process: killed with SIGKILL and restarted, and drained by signals.

The watcher process runs a launcher that "starts a run" by appending one line
(one ``write``: all or nothing) to a log; the log is the ground truth of what
was launched, independent of the ledger under test.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

from flows.watch.launcher import key_tag
from flows.watch.ledger import FileState, Ledger
from tests.flows.test_watch_fakes import write_h5
from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

REPO = Path(__file__).resolve().parents[2]

WATCHER_SCRIPT = r"""
import json, logging, os, signal, sys, time, uuid
from pathlib import Path

from flows.errors import RunNotFound
from flows.watch.watcher import WatchConfig, Watcher
from flows.watch.launcher import LaunchedRun
from flows.watch.ledger import Ledger


class LogLauncher:
    def __init__(self, log, run_seconds, crash):
        self.log = Path(log)
        self.run_seconds = run_seconds
        self.crash = crash  # ("before"|"after", n): SIGKILL ourselves around the n-th launch
        self.launches = 0
        self._offset = 0
        self._cache = {}

    def _maybe_crash(self, when):
        if self.crash and self.crash[0] == when and self.launches == self.crash[1]:
            os.kill(os.getpid(), signal.SIGKILL)

    def _runs(self):
        # every run in the log, read incrementally (only new complete lines are parsed)
        if self.log.exists():
            with open(self.log, "rb") as f:
                f.seek(self._offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
            for line in data[:end].splitlines():
                run = json.loads(line)
                self._cache[run["run_id"]] = run
        return self._cache.values()

    def launch(self, raw, qmap, *, tags):
        self.launches += 1
        self._maybe_crash("before")
        time.sleep(0.002)
        run = {"run_id": str(uuid.uuid4()), "path": str(raw), "tags": list(tags), "t": time.time()}
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(run) + "\n").encode())
        finally:
            os.close(fd)
        self._maybe_crash("after")
        time.sleep(0.01)  # the window between "run started" and "ledger written"
        return LaunchedRun(run["run_id"], "log")

    def find(self, tag):
        for run in self._runs():
            if tag in run["tags"]:
                return LaunchedRun(run["run_id"], "log")
        return None

    def status(self, run_id):
        self._runs()
        if run_id not in self._cache:
            raise RunNotFound(run_id)
        age = time.time() - self._cache[run_id]["t"]
        return "SUCCEEDED" if age > self.run_seconds else "ACTIVE"


mode, beam, qmap, db, log = sys.argv[1:6]
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
crash = os.environ.get("WATCH_TEST_CRASH")
when, _, nth = (crash or "").partition(":")
launcher = LogLauncher(log, 0.3, (when, int(nth)) if crash else None)
if mode == "cli":
    from flows.cli.watch import watch_command

    watch_command.main(
        [beam, "--qmap", qmap, "--db", db, "--settle", "0.2"],
        obj={"watch_launcher": launcher},
        standalone_mode=False,
    )
else:
    config = WatchConfig(
        directory=Path(beam), qmap=Path(qmap), settle=0.2, max_active=32, poll_interval=0.05,
        monitor_interval=0.1, rescan_interval=2.0, open_timeout=30.0,
    )

    class ReadyWatcher(Watcher):
        def start(self):  # called by run() once the lock and the signal handlers are in place
            super().start()
            Path(db + ".ready-" + str(os.getpid())).touch()

    def accept(raw):
        return None

    watcher = ReadyWatcher(config, launcher=launcher, ledger=Ledger(Path(db)), validator=accept)
    watcher.run()
print("drained", flush=True)
"""


def _start(
    tmp_path: Path, mode: str, beam: Path, qmap: Path, *, crash: str | None = None
) -> subprocess.Popen[str]:
    script = tmp_path / "watcher_proc.py"
    script.write_text(WATCHER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("WATCH_TEST_CRASH", None)
    if crash is not None:
        env["WATCH_TEST_CRASH"] = crash
    args = [str(beam), str(qmap), str(tmp_path / "state.db"), str(tmp_path / "runs.log")]
    errors = open(tmp_path / "watcher.stderr", "a")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    errors.close()
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc`` (if it still runs) and reap it, closing its pipe."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def _launch_log(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "runs.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def _wait_for(condition: object, *, limit: float = 60.0) -> None:
    """Poll ``condition`` (a callable) until true; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the watcher did not get there"
        time.sleep(0.05)


def _write_files(beam: Path, n: int, seed: int) -> None:
    """Create ``n`` HDF5 files over a few seconds; every 4th in several appends."""
    rng = random.Random(seed)
    for i in range(n):
        path = beam / f"scan_{i:03d}.h5"
        if i % 4 == 0:
            with h5py.File(path, "w") as f:
                f.create_dataset(
                    "entry/data/data",
                    data=np.zeros((1, 8, 8), np.uint16),
                    maxshape=(None, 8, 8),
                    chunks=(1, 8, 8),
                )
            for k in range(2, 5):
                time.sleep(0.02)
                with h5py.File(path, "a") as f:
                    data = f["entry/data/data"]
                    data.resize((k, 8, 8))
                    data[k - 1] = k
        else:
            write_h5(path, (8, 8), frames=2)
        time.sleep(rng.uniform(0.0, 0.03))


@pytest.mark.slow
def test_sigkill_at_random_points_launches_every_file_exactly_once(tmp_path: Path) -> None:
    n_files, seed = 200, 20261125
    beam = tmp_path / "beam"
    beam.mkdir()
    qmap = tmp_path / "qmap.h5"
    qmap.write_bytes(b"q")
    writer = threading.Thread(target=_write_files, args=(beam, n_files, seed))
    rng = random.Random(seed)
    writer.start()
    kills = 0
    proc = _start(tmp_path, "direct", beam, qmap, crash="before:3")
    try:
        # two crashes at chosen points: inside the launcher before it starts the run and
        # after it started it (before the ledger knows), then SIGKILLs at random points
        for crash in ("after:4", None):
            proc.wait(timeout=60)
            assert proc.returncode == -signal.SIGKILL
            _kill(proc)
            proc = _start(tmp_path, "direct", beam, qmap, crash=crash)
        for _ in range(6):
            time.sleep(rng.uniform(0.8, 2.5))
            _kill(proc)
            kills += 1
            proc = _start(tmp_path, "direct", beam, qmap)
        writer.join()
        ledger = Ledger(tmp_path / "state.db")

        def all_launched() -> bool:
            done = ledger.entries(states=[FileState.LAUNCHED, FileState.SUCCEEDED])
            return len(done) == n_files

        _wait_for(all_launched)
        ready = tmp_path / f"state.db.ready-{proc.pid}"
        _wait_for(ready.exists)  # a SIGTERM before the handlers are in place would just kill it
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert out.strip() == "drained"
    finally:
        _kill(proc)
        writer.join()
    assert kills == 6
    log = (tmp_path / "watcher.stderr").read_text()
    assert "interrupted launch had started no run; launching again" in log
    assert "interrupted launch had started run" in log
    launches = _launch_log(tmp_path)
    counts = Counter(str(run["path"]) for run in launches)
    expected = {str(beam / f"scan_{i:03d}.h5") for i in range(n_files)}
    assert set(counts) == expected  # none missed
    assert [p for p, c in counts.items() if c != 1] == []  # none twice
    by_path = {str(run["path"]): run for run in launches}
    entries = Ledger(tmp_path / "state.db").entries()
    assert len(entries) == n_files
    for entry in entries:
        run = by_path[entry.path]
        assert entry.run_id == run["run_id"]
        assert key_tag(str(entry.launch_key)) in run["tags"]  # type: ignore[operator]
        assert entry.state in (FileState.LAUNCHED, FileState.SUCCEEDED)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_drains_the_watcher_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    beam = tmp_path / "beam"
    beam.mkdir()
    qmap = tmp_path / "qmap.h5"
    spec = SyntheticSpec(n_frames=20, shape=(24, 24), n_dynamic_q=2, n_static_q=4)
    for name in ("a", "b"):
        write_synthetic(beam / f"{name}.h5", qmap, spec)
    write_h5(beam / "wrong.h5", (10, 10))
    proc = _start(tmp_path, "cli", beam, qmap)
    ledger = Ledger(tmp_path / "state.db")
    try:

        def settled() -> bool:
            states = [e.state for e in ledger.entries()]
            return sorted(states) == [FileState.FAILED, FileState.LAUNCHED, FileState.LAUNCHED]

        _wait_for(settled)
        write_synthetic(beam / "c.h5", qmap, spec)  # arrives while running: the observer sees it
        _wait_for(lambda: len(_launch_log(tmp_path)) == 3)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        _kill(proc)
    assert proc.returncode == 0
    assert out.strip() == "drained"
    entries = {Path(e.path).name: e for e in ledger.entries()}
    assert {n: e.state for n, e in entries.items()} == {
        "a.h5": FileState.LAUNCHED,
        "b.h5": FileState.LAUNCHED,
        "c.h5": FileState.LAUNCHED,
        "wrong.h5": FileState.FAILED,
    }
    runs = {str(r["path"]): r["run_id"] for r in _launch_log(tmp_path)}
    assert {e.path: e.run_id for e in entries.values() if e.run_id} == runs
    assert "q-map" in str(entries["wrong.h5"].reason)
    with ledger.watch_lock(beam):  # the lock was released
        pass
