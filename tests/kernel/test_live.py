"""Following a raw file while a real writer process appends to it: partial
results along the way, the offline answer at the end, resume after SIGKILL,
and a truncated last frame never read."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows.cli import main as cli_main
from xpcs_kernel.errors import UsageError
from xpcs_kernel.io import write_hdf5_frames, write_imm, write_rigaku
from xpcs_kernel.live import FollowConfig, FollowUpdate, follow_file
from xpcs_kernel.live.checkpoint import checkpoint_path
from xpcs_kernel.live.growing import GrowingImm, GrowingRigaku
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.result import ResultFile, read_result
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

ROOT = Path(__file__).resolve().parents[2]
FRAME_TIME = 1e-3
ARRAYS = (
    "g2",
    "g2_err",
    "G2_static",
    "IP_static",
    "IF_static",
    "saxs_2d",
    "saxs_1d",
    "saxs_1d_segments",
    "intensity_vs_time",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("live")
    spec = SyntheticSpec(
        n_frames=300,
        shape=(32, 40),
        beta=0.25,
        mean_count=0.8,
        n_dynamic_q=3,
        n_static_q=9,
        tau_c_range=(2.0, 20.0),
        frame_time=FRAME_TIME,
        seed=5,
        dtype="uint16",
    )
    truth, frames = synthesize(spec)
    write_qmap(tmp / "qmap.h5", truth.qmap)
    np.save(tmp / "frames.npy", frames)
    return {"qmap": tmp / "qmap.h5", "npy": tmp / "frames.npy", "frames": frames}


def _writer(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "xpcs_kernel.live.detector", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _swmr_writer(
    data: dict[str, Any], raw: Path, *, per_write: int, interval: float, log: Path | None = None
) -> Any:
    return _writer(
        "swmr",
        str(data["npy"]),
        str(raw),
        "--per-write",
        str(per_write),
        "--interval",
        str(interval),
        "--frame-time",
        str(FRAME_TIME),
        "--done-marker",
        ".done",
        *(["--log", str(log)] if log is not None else []),
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # only the processes this test started, by their handle
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _frames_written(log: Path) -> int:
    lines = log.read_text().split()
    return int(lines[-2]) if len(lines) >= 2 else 0


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"the writer never created {path}"
        time.sleep(0.02)


def _assert_same(live: ResultFile, offline: ResultFile) -> None:
    for name in ARRAYS:
        got, want = getattr(live, name), getattr(offline, name)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=name)
    np.testing.assert_array_equal(live.delay_list, offline.delay_list)
    for name in ("beta", "gamma", "baseline"):
        np.testing.assert_allclose(live.fit[name], offline.fit[name], rtol=1e-6, err_msg=name)


def test_follow_swmr_writer_gives_partials_then_the_offline_result(
    data: dict[str, Any], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    raw, out = tmp_path / "A.h5", tmp_path / "A_result.h5"
    processes.append(_swmr_writer(data, raw, per_write=10, interval=0.1))
    seen: list[tuple[FollowUpdate, int, int]] = []

    def check(update: FollowUpdate) -> None:
        # the file on disk at this moment is a complete result of update.frames frames
        res = read_result(out)
        seen.append((update, res.metadata.end, res.intensity_vs_time.shape[1]))

    summary = follow_file(
        raw, data["qmap"], out, config=FollowConfig(update=0.1, idle=30), on_update=check
    )
    assert processes[0].wait(timeout=60) == 0
    assert summary.n_frames == 300
    partial = [(u, end, n) for u, end, n in seen if not u.complete]
    assert partial, "no partial result while the writer was writing"
    assert all(end == u.frames == n for u, end, n in partial)
    assert partial[0][0].frames < 300
    assert [u.frames for u, _, _ in seen] == sorted(u.frames for u, _, _ in seen)
    assert seen[-1][0].complete
    assert seen[-1][1] == 300

    offline = tmp_path / "offline.h5"
    correlate_file(raw, data["qmap"], offline)
    live = read_result(out)
    _assert_same(live, read_result(offline))
    assert live.metadata.parameters["follow"] == {
        "frames": 300,
        "complete": True,
        "resumed_from": 0,
    }
    assert not checkpoint_path(out).exists()


def test_sigkill_then_restart_resumes_to_the_same_result(
    data: dict[str, Any], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    raw, out, log = tmp_path / "B.h5", tmp_path / "B_result.h5", tmp_path / "writes.log"
    writer = _swmr_writer(data, raw, per_write=5, interval=0.05, log=log)
    processes.append(writer)
    _wait_for(log)
    deadline = time.monotonic() + 60
    while _frames_written(log) < 50:
        assert time.monotonic() < deadline, "the writer wrote nothing"
        time.sleep(0.02)
    # pause the writer mid-file, so that the kill surely comes before the file is complete
    writer.send_signal(signal.SIGSTOP)
    command = [
        sys.executable,
        "-m",
        "xpcs_kernel",
        "correlate",
        str(raw),
        "--qmap",
        str(data["qmap"]),
        "-o",
        str(out),
        "--follow",
        "--update",
        "0.1",
        "--checkpoint",
        "0",
        "--idle",
        "30",
        "--quiet",
    ]
    follower = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
    processes.append(follower)
    state = checkpoint_path(out)
    while not state.exists() and follower.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists(), "the follower saved no checkpoint"
    follower.send_signal(signal.SIGKILL)
    assert follower.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / "B.h5.done").exists()
    writer.send_signal(signal.SIGCONT)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr.decode()
    assert writer.wait(timeout=60) == 0
    offline = tmp_path / "offline.h5"
    correlate_file(raw, data["qmap"], offline)
    live = read_result(out)
    _assert_same(live, read_result(offline))
    follow = live.metadata.parameters["follow"]
    assert follow["frames"] == 300
    assert follow["complete"] is True
    assert 0 < follow["resumed_from"] < 300  # resumed, not recomputed
    assert not state.exists()


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_imm_truncated_last_frame_is_never_read(
    data: dict[str, Any], tmp_path: Path, processes: list[subprocess.Popen[bytes]], sparse: bool
) -> None:
    ref, raw, out = tmp_path / "ref.imm", tmp_path / "C.imm", tmp_path / "C_result.h5"
    write_imm(ref, data["frames"][:80], sparse=sparse)
    size = ref.stat().st_size
    # pieces that cut headers and data anywhere; the writer stops 100 bytes short
    proc = _writer(
        "bytes", str(ref), str(raw), "--piece", "1999", "--interval", "0.005",
        "--stop-at", str(size - 100), "--done-marker", ".done",
    )  # fmt: skip
    processes.append(proc)
    _wait_for(raw)
    options = CorrelationOptions(frame_time=FRAME_TIME)
    summary = follow_file(raw, data["qmap"], out, options=options, config=FollowConfig(idle=30))
    assert proc.wait(timeout=60) == 0
    assert summary.n_frames == 79
    offline = tmp_path / "offline.h5"
    correlate_file(
        ref, data["qmap"], offline, options=CorrelationOptions(frame_time=FRAME_TIME, end=79)
    )
    _assert_same(read_result(out), read_result(offline))


def test_rigaku_growing_by_cut_words_gives_the_offline_result(
    data: dict[str, Any], tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    ref, raw, out = tmp_path / "ref.bin", tmp_path / "D.bin", tmp_path / "D_result.h5"
    write_rigaku(ref, data["frames"][:120])
    proc = _writer(
        "bytes", str(ref), str(raw), "--piece", "1001", "--interval", "0.005",
        "--done-marker", ".done",
    )  # fmt: skip
    processes.append(proc)
    _wait_for(raw)
    options = CorrelationOptions(frame_time=FRAME_TIME)
    summary = follow_file(raw, data["qmap"], out, options=options, config=FollowConfig(idle=30))
    assert proc.wait(timeout=60) == 0
    assert summary.n_frames == 120
    offline = tmp_path / "offline.h5"
    correlate_file(ref, data["qmap"], offline, options=options)
    _assert_same(read_result(out), read_result(offline))


def test_growing_readers_count_whole_frames_only(data: dict[str, Any], tmp_path: Path) -> None:
    frames = data["frames"][:3]
    ref = tmp_path / "ref.imm"
    write_imm(ref, frames, sparse=False)
    whole = ref.read_bytes()
    frame_bytes = len(whole) // 3
    raw = tmp_path / "g.imm"
    raw.write_bytes(whole[: frame_bytes + 1024 + 10])  # frame 1: header and 10 data bytes
    with GrowingImm(raw) as source:
        assert source.poll() == 1
        assert source.poll(final=True) == 1  # a partial frame never counts
        with open(raw, "ab") as handle:
            handle.write(whole[frame_bytes + 1024 + 10 :])
        assert source.poll() == 3
        np.testing.assert_array_equal(source.read(1, 3), frames[1:3])

    words = np.array([(0 << 40) | (5 << 16) | 2, (2 << 40) | (7 << 16) | 1], dtype="<u8")
    bin_path = tmp_path / "g.bin"
    bin_path.write_bytes(words.tobytes()[:12])  # one word and half of the next
    with GrowingRigaku(bin_path, frame_shape=(32, 40)) as rig:
        assert rig.poll() == 0  # frame 0 may still receive events
        assert rig.poll(final=True) == 1
        with open(bin_path, "ab") as handle:
            handle.write(words.tobytes()[12:])
        assert rig.poll() == 2  # frames 0 and 1 (empty) are closed by frame 2's word
        assert rig.poll(final=True) == 3
        dense = rig.read(0, 3).to_dense()
        assert dense[0].reshape(-1)[5] == 2
        assert dense[1].sum() == 0
        assert dense[2].reshape(-1)[7] == 1


def test_cli_follow_on_a_finished_file_and_refusals(
    data: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, out = tmp_path / "E.h5", tmp_path / "E_result.h5"
    write_hdf5_frames(raw, data["frames"][:100])
    base = ["correlate", str(raw), "--qmap", str(data["qmap"]), "-o", str(out)]
    base += ["--frame-time", str(FRAME_TIME)]
    assert cli_main([*base, "--follow", "--idle", "0.3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_frames"] == 100
    offline = tmp_path / "offline.h5"
    correlate_file(raw, data["qmap"], offline, options=CorrelationOptions(frame_time=FRAME_TIME))
    _assert_same(read_result(out), read_result(offline))
    assert cli_main([*base, "--follow", "--mode", "both"]) == 2
    assert "multi-tau only" in capsys.readouterr().err
    assert cli_main([*base, "--follow", "--stride", "2"]) == 2


def test_follow_config_and_options_are_validated() -> None:
    with pytest.raises(UsageError, match="idle"):
        FollowConfig(idle=-1)
    with pytest.raises(UsageError, match="every frame"):
        follow_file("x.h5", "q.h5", "o.h5", options=CorrelationOptions(begin=3))


def test_live_saxs_equals_the_fixed_count_accumulator_dense_and_sparse(
    data: dict[str, Any],
) -> None:
    from xpcs_kernel.io import dense_to_sparse
    from xpcs_kernel.live import LiveSaxs
    from xpcs_kernel.qmap import read_qmap
    from xpcs_kernel.saxs import saxs

    qm = read_qmap(data["qmap"])
    frames = data["frames"][:97]
    dense, sparse = LiveSaxs(qm), LiveSaxs(qm)
    for lo in range(0, 97, 20):  # chunks that do not line up with the 10 segments
        dense.feed(frames[lo : lo + 20])
        sparse.feed_sparse(dense_to_sparse(frames[lo : lo + 20]))
    want = saxs(frames, qm)
    for live in (dense, sparse, LiveSaxs.from_state(qm, dense.state())):
        got = live.result()
        for name in ("saxs_2d", "saxs_1d", "saxs_1d_segments", "intensity_vs_time"):
            np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12)


def test_a_file_without_a_whole_frame_is_a_clear_error(
    data: dict[str, Any], tmp_path: Path
) -> None:
    from xpcs_kernel.errors import FrameFormatError

    ref, raw = tmp_path / "ref.imm", tmp_path / "short.imm"
    write_imm(ref, data["frames"][:2], sparse=False)
    raw.write_bytes(ref.read_bytes()[:1500])  # a header and part of frame 0's data
    Path(str(raw) + ".done").touch()
    options = CorrelationOptions(frame_time=FRAME_TIME)
    with pytest.raises(FrameFormatError, match="no whole frame to follow") as info:
        follow_file(raw, data["qmap"], tmp_path / "o.h5", options=options)
    assert info.value.path == str(raw)


def test_saturated_frames_fail_as_offline_unless_allowed(
    data: dict[str, Any], tmp_path: Path
) -> None:
    from xpcs_kernel.errors import FrameFormatError

    frames = data["frames"][:40].copy()
    frames[17, 3, 4] = np.iinfo(np.uint16).max
    raw = tmp_path / "sat.h5"
    write_hdf5_frames(raw, frames)
    config = FollowConfig(idle=0.3)
    strict = CorrelationOptions(frame_time=FRAME_TIME)
    with pytest.raises(FrameFormatError, match="saturated") as info:
        follow_file(raw, data["qmap"], tmp_path / "o.h5", options=strict, config=config)
    assert info.value.key == "frame 17"
    with pytest.raises(FrameFormatError, match="saturated"):
        correlate_file(raw, data["qmap"], tmp_path / "off.h5", options=strict)
    allowed = CorrelationOptions(frame_time=FRAME_TIME, allow_saturated=True)
    summary = follow_file(raw, data["qmap"], tmp_path / "o.h5", options=allowed, config=config)
    assert summary.n_frames == 40


def test_a_checkpoint_resumes_only_its_own_identity(data: dict[str, Any], tmp_path: Path) -> None:
    from xpcs_kernel.live import LiveSaxs
    from xpcs_kernel.live.checkpoint import Checkpoint
    from xpcs_kernel.multitau import MultiTauCorrelator
    from xpcs_kernel.qmap import read_qmap

    qm = read_qmap(data["qmap"])
    corr = MultiTauCorrelator(qm.shape[0] * qm.shape[1], pixel_index=qm.pixel_index)
    live = LiveSaxs(qm)
    corr.feed(data["frames"][:30])
    live.feed(data["frames"][:30])
    path = tmp_path / "state.npz"
    Checkpoint(path, {"raw": "/a.h5", "first": "x"}).save(30, corr, live)
    assert Checkpoint(path, {"raw": "/a.h5", "first": "y"}).load(qm) is None
    resumed = Checkpoint(path, {"raw": "/a.h5", "first": "x"}).load(qm)
    assert resumed is not None
    assert resumed.frames == 30
    assert resumed.correlator.n_frames == 30
    assert not list(tmp_path.glob("*partial*"))  # the temporary file was renamed
    path.write_bytes(b"not a checkpoint")  # a torn or foreign file: recompute
    assert Checkpoint(path, {"raw": "/a.h5", "first": "x"}).load(qm) is None
