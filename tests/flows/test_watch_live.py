"""The watcher's live mode: a follower process shows the g2 of a file while a real
SWMR writer process is still writing it; the run is launched once, when complete."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flows.cli import main as cli_main
from flows.watch import WatchConfig, Watcher
from flows.watch.ledger import FileState, Ledger
from flows.watch.live import live_result_path
from tests.flows.test_watch_fakes import FakeClock, FakeLauncher
from xpcs_kernel.errors import XPCSFlowsError
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.result import read_result
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

ROOT = Path(__file__).resolve().parents[2]


def _no_check(raw: Path) -> None:
    return None


def _live_frames(path: Path) -> int | None:
    try:
        return int(read_result(path).metadata.end)
    except (XPCSFlowsError, OSError):
        return None  # not written yet


def test_live_watch_follows_while_writing_and_launches_once(tmp_path: Path) -> None:
    truth, frames = synthesize(
        SyntheticSpec(n_frames=240, shape=(24, 24), n_dynamic_q=2, n_static_q=4, seed=2)
    )
    qmap = tmp_path / "qmap.h5"
    write_qmap(qmap, truth.qmap)
    np.save(tmp_path / "frames.npy", frames)
    beam = tmp_path / "beam"
    beam.mkdir()
    raw, log = beam / "A.h5", tmp_path / "writes.log"
    launcher = FakeLauncher()
    config = WatchConfig(
        directory=beam,
        qmap=qmap,
        done_marker=".done",
        monitor_interval=0.0,
        rescan_interval=0.0,
        live=True,
        live_dir=tmp_path / "live",
    )
    watcher = Watcher(
        config,
        launcher=launcher,
        ledger=Ledger(tmp_path / "state.db"),
        validator=_no_check,
        clock=FakeClock(),
    )
    watcher.start()
    command = [sys.executable, "-m", "xpcs_kernel.live.detector", "swmr"]
    command += [str(tmp_path / "frames.npy"), str(raw), "--per-write", "4", "--interval", "0.05"]
    writer = subprocess.Popen([*command, "--done-marker", ".done", "--log", str(log)], cwd=ROOT)
    live = live_result_path(tmp_path / "live", raw)
    partial: list[int] = []
    paused = False
    try:
        deadline = time.monotonic() + 120
        while not launcher.runs and time.monotonic() < deadline:
            if not paused and log.exists() and len(log.read_text().splitlines()) >= 10:
                # hold the writer mid-file until the follower has shown a partial result
                writer.send_signal(signal.SIGSTOP)
                paused = True
            report = watcher.run_pass()
            if not (beam / "A.h5.done").exists():
                assert report.launched == []  # never before the file is complete
                frames_so_far = _live_frames(live)
                if frames_so_far is not None:
                    partial.append(frames_so_far)
                    writer.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        assert writer.wait(timeout=60) == 0
        assert launcher.launched_names() == ["A.h5"]
        assert partial, "no live result while the file was written"
        assert min(partial) < 240
        while watcher.live is not None and watcher.live.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.live is not None
        assert watcher.live.running() == {}
        assert (tmp_path / "live" / "plots" / "A_live_g2.png").exists()  # drawn while live
        final = read_result(live)
        assert final.metadata.end == 240
        assert final.metadata.parameters["follow"]["complete"] is True
        for _ in range(3):  # more passes launch nothing more
            watcher.run_pass()
        assert len(launcher.runs) == 1
        assert {e.state for e in watcher.ledger.entries()} == {FileState.LAUNCHED}
    finally:
        if watcher.live is not None:
            watcher.live.close()
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=30)
        watcher.ledger.close()


def test_watch_command_offers_live_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["watch", "--help"]) == 0
    assert "--live" in capsys.readouterr().out
    assert WatchConfig(directory=Path("/d"), qmap=Path("/q")).live is False
