"""launch(..., live=True): the live flow follows a file a real writer process is appending
to, shows the g2 so far while it runs, and publishes once, the offline answer, when the
file is complete; the live run's Globus payload; refusals where no facility can follow."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import numpy as np
import pytest
import responses
from globus_sdk.testing import load_response

from flows.cli import main as cli_main
from flows.launch.api import launch, prepare_launch
from flows.local import LocalCatalog
from flows.runs.handle import Run
from tests.flows.test_launch_support import config_dir, write_deploy_state, write_polaris
from xpcs_kernel.errors import UsageError
from xpcs_kernel.live.progress import ResultProgress
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.result import read_result
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

ROOT = Path(__file__).resolve().parents[2]
N_FRAMES = 300
ARRAYS = ("g2", "g2_err", "G2_static", "IP_static", "IF_static", "saxs_2d", "saxs_1d")


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("live-launch")
    spec = SyntheticSpec(
        n_frames=N_FRAMES,
        shape=(32, 40),
        beta=0.25,
        mean_count=0.8,
        n_dynamic_q=3,
        n_static_q=9,
        tau_c_range=(2.0, 20.0),
        frame_time=1e-3,
        seed=7,
        dtype="uint16",
    )
    truth, stack = synthesize(spec)
    write_qmap(tmp / "qmap_B001.h5", truth.qmap)
    np.save(tmp / "frames.npy", stack)
    return {"qmap": tmp / "qmap_B001.h5", "npy": tmp / "frames.npy"}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # only the processes this test started, by their handle
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def _start_writer(frames: dict[str, Path], raw: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xpcs_kernel.live.detector",
            "swmr",
            str(frames["npy"]),
            str(raw),
            "--per-write",
            "10",
            "--interval",
            "0.05",
            "--frame-time",
            "1e-3",
            "--done-marker",
            ".done",
            "--log",
            str(log),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _written(log: Path) -> int:
    words = log.read_text().split() if log.exists() else []
    return int(words[-2]) if len(words) >= 2 else 0


def _until(what: str, check: Any, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_live_launch_follows_the_writer_shows_g2_so_far_and_publishes_once(
    frames: dict[str, Path],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    beamline = tmp_path / "beamline"
    beamline.mkdir()
    raw, log, db = beamline / "B001.h5", tmp_path / "writer.log", tmp_path / "state.db"
    writer = _start_writer(frames, raw, log)
    processes.append(writer)
    _until("the first frames", lambda: _written(log) >= 60)
    writer.send_signal(signal.SIGSTOP)  # mid-file: the run starts while the file is partial
    paused_at = _written(log)
    assert paused_at < N_FRAMES

    run = launch(
        raw,
        frames["qmap"],
        live=True,
        engine="local",
        db_path=db,
        workdir=tmp_path / "work",
        follow={"update": 0.2, "idle": 600},
    )
    assert run.facility == "local"
    assert run.decision is not None
    assert run.decision["request"]["live"] is True

    # point 4: the g2 so far, from the partial result the follower replaces
    progress: ResultProgress = _until("a partial result", run.live_progress)
    assert not progress.complete
    assert 2 <= progress.frames <= paused_at
    assert len(progress.g2_first) == 3
    assert all(np.isfinite(progress.g2_first))
    assert run.status() == "ACTIVE"
    info = run.to_dict()
    assert info["live_progress"]["frames"] == progress.frames
    capsys.readouterr()
    assert cli_main(["status", run.run_id, "--db", str(db)]) == 0
    shown = capsys.readouterr().out
    assert "frames in" in shown
    assert "so far (live)" in shown
    assert "bin 2: g2" in shown
    assert cli_main(["catalog", "list", "--db", str(db)]) == 0
    listed = capsys.readouterr().out
    assert f"(live, run {run.run_id})  B001" in listed
    assert "frames so far" in listed
    assert "bin 0: g2" in listed
    index = run.local_engine.get_run(run.run_id).input["input"]["search_index"]
    assert LocalCatalog(db).list(index) == []  # nothing published before the file is complete

    writer.send_signal(signal.SIGCONT)
    assert writer.wait(timeout=120) == 0
    assert Path(str(raw) + ".done").exists()
    assert run.wait(progress=False, timeout=300).status() == "SUCCEEDED"

    out = run.outputs
    assert out.result_path is not None
    live = read_result(out.result_path)
    assert live.metadata.parameters["follow"]["complete"] is True
    assert live.metadata.end == N_FRAMES
    offline = read_result(correlate_file(raw, frames["qmap"], tmp_path / "offline.h5").output)
    for name in ARRAYS:
        np.testing.assert_allclose(
            getattr(live, name), getattr(offline, name), rtol=1e-6, atol=1e-9, err_msg=name
        )
    np.testing.assert_array_equal(live.delay_list, offline.delay_list)
    for name in ("beta", "gamma", "baseline"):
        np.testing.assert_allclose(live.fit[name], offline.fit[name], rtol=1e-6, err_msg=name)
    entries = LocalCatalog(db).list(index)
    assert [e.subject for e in entries] == [out.catalog_subject]  # one publication
    assert entries[0].version == 1
    final = Run.from_id(run.run_id, db_path=db).live_progress()
    assert final is not None
    assert final.complete
    assert final.frames == N_FRAMES


def test_live_launch_refusals(frames: dict[str, Path], tmp_path: Path) -> None:
    raw = tmp_path / "B001.h5"
    raw.write_bytes(b"")  # the writer has just created it
    with pytest.raises(UsageError, match="multi-tau only") as info:
        prepare_launch(raw, frames["qmap"], live=True, options={"mode": "both"})
    assert info.value.argument == "mode"
    with pytest.raises(UsageError, match="unknown follow setting") as info:
        prepare_launch(raw, frames["qmap"], live=True, follow={"idel": 3})
    with pytest.raises(UsageError, match="live run"):
        prepare_launch(raw, frames["qmap"], follow={"idle": 3})
    request = prepare_launch(raw, frames["qmap"], live=True, follow={"idle": 5})
    assert request.live
    assert request.job.live
    assert dict(request.follow) == {"idle": 5}
    assert request.job.pixels == 32 * 40  # sized from the q-map: the file has no frame yet

    write_polaris()  # a Globus facility whose endpoint does not read the beamline storage
    with pytest.raises(UsageError, match="reads_beamline_storage") as info:
        prepare_launch(raw, frames["qmap"], live=True, facility="polaris", engine="globus")
    assert info.value.argument == "facility"


def test_cli_live_run_with_no_facility_that_can_follow_exits_2(
    frames: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "B001.h5"
    raw.write_bytes(b"")
    (config_dir() / "local.toml").write_text("[capabilities]\nreads_beamline_storage = false\n")
    argv = ["run", str(raw), "--qmap", str(frames["qmap"]), "--live", "--db"]
    code = cli_main([*argv, str(tmp_path / "state.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot read the beamline storage" in err
    assert "reads_beamline_storage = true" in err
    assert cli_main(["run", str(raw), "--qmap", str(frames["qmap"]), "--idle", "3"]) == 2
    assert "--idle is for a live run" in capsys.readouterr().err


def test_globus_live_payload_carries_live_and_the_beamline_paths(
    frames: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "B001.h5"
    raw.write_bytes(b"")
    ids = write_polaris()
    with (config_dir() / "polaris.toml").open("a") as handle:
        handle.write("[capabilities]\nreads_beamline_storage = true\n")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        canned = load_response(globus_sdk.SpecificFlowClient.run_flow, requests_mock=mock)
        flow_id = canned.metadata["flow_id"]
        deployed = write_deploy_state("xpcs-live", flow_id=flow_id)
        live_fn = "0b1d9a1e-5d6f-4a57-9f1e-6f0d3c2b4a11"
        deployed_functions = {**deployed, "xpcs_correlate_live_function_id": live_fn}
        from flows.globus.deploy import default_state_path

        state = json.loads(default_state_path().read_text())
        state["flows"]["xpcs-live"]["functions"]["xpcs_correlate_live_function_id"] = {
            "name": "xpcs_correlate_live_function_id",
            "function_id": live_fn,
            "checksum": "x",
        }
        default_state_path().write_text(json.dumps(state))
        monkeypatch.setattr(
            "flows.launch.engines.globus_run_client",
            lambda fid: globus_sdk.SpecificFlowClient(
                fid, authorizer=globus_sdk.AccessTokenAuthorizer("run-token")
            ),
        )
        launch(
            raw,
            frames["qmap"],
            live=True,
            facility="polaris",
            engine="globus",
            db_path=tmp_path / "state.db",
            follow={"idle": 30, "update": 5},
        )
        (call,) = mock.calls
    assert call.request.url.endswith(f"/flows/{flow_id}/run")
    body = json.loads(call.request.body)["body"]["input"]
    assert body["live"] is True
    assert body["beamline"] == {"raw": str(raw.resolve()), "qmap": str(frames["qmap"].resolve())}
    assert body["follow"] == {"idle": 30, "update": 5}
    assert body["raw"] == {"id": ids["source"], "path": str(raw.resolve())}
    assert body["compute_endpoint"] == ids["endpoint"]
    for key, function_id in deployed_functions.items():
        if key != "flow_id":
            assert body[key] == function_id


@pytest.mark.slow
def test_cli_run_live_on_a_file_already_done_succeeds_with_one_publication(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.flows.test_launch_support import make_dataset

    raw, qmap = make_dataset(tmp_path / "beamline")
    Path(str(raw) + ".done").touch()
    db = tmp_path / "state.db"
    argv = ["run", str(raw), "--qmap", str(qmap), "--live", "--idle", "5", "--wait", "--json"]
    code = cli_main([*argv, "--db", str(db), "--workdir", str(tmp_path / "work")])
    info = json.loads(capsys.readouterr().out)
    assert code == 0
    assert info["status"] == "SUCCEEDED"
    assert info["live_progress"]["complete"] is True
    assert info["live_progress"]["frames"] == 160  # make_dataset writes 160 frames
    run = Run.from_id(info["run_id"], db_path=db)
    body = run.local_engine.get_run(run.run_id).input["input"]
    assert body["live"] is True
    assert body["follow"] == {"idle": 5.0}
    assert body["beamline"]["raw"] == str(raw.resolve())
    assert len(LocalCatalog(db).list(body["search_index"])) == 1
