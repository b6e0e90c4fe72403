"""``xpcs-flows run | status | logs | cancel | list``: output and exit codes
(0 success, 1 run failed, 2 usage/config, 3 wait timed out)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import globus_sdk
import h5py
import numpy as np
import pytest
import responses
from globus_sdk.transport import RetryConfig

from flows.cli import app as cli_module
from flows.cli.run import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    cancel_command,
    list_command,
    logs_command,
    run_command,
    schedule_command,
    status_command,
)
from flows.launch.api import prepare_launch, start_attempt
from flows.local import LocalEngine
from flows.runs.handle import Run
from tests.flows.test_launch_support import make_dataset

FLOWS_API = "https://flows.automate.globus.org"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the commands as the lead will in flows/cli/app.py."""
    for name, command in (
        ("run", run_command),
        ("status", status_command),
        ("logs", logs_command),
        ("cancel", cancel_command),
        ("list", list_command),
        ("schedule", schedule_command),
    ):
        monkeypatch.setitem(cli_module.cli.commands, name, command)


def xf(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``xpcs-flows ARGS``; returns (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli_module.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    raw, qmap = make_dataset(tmp_path / "beamline")
    return {
        "raw": str(raw),
        "qmap": str(qmap),
        "db": str(tmp_path / "state.db"),
        "work": str(tmp_path / "work"),
    }


@pytest.mark.slow
def test_run_wait_succeeds_then_status_logs_list(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    db = ["--db", data["db"]]
    code, out, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--wait", "--json",
        "--mode", "multitau", "--tag", "sample:gel", "--workdir", data["work"], *db,
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    info = json.loads(out)
    assert info["status"] == "SUCCEEDED"
    assert info["facility"] == "local"
    assert info["engine"] == "local"
    assert info["label"] == "A001 @ local"
    assert info["outputs"]["result_path"].endswith("A001_results.hdf")
    assert info["decision"]["chosen"] == "local"
    run_id = info["run_id"]

    code, out, _ = xf(capsys, "status", run_id, *db)
    assert code == EXIT_OK
    assert f"run {run_id}: SUCCEEDED" in out
    assert "facility chosen: local" in out  # where it ran and why
    header = next(line for line in out.splitlines() if "facility" in line and "why" in line)
    assert header.split() == ["rank", "facility", "state", "why"]  # the table has a header
    row = next(line for line in out.splitlines() if "data local" in line)
    assert row.split()[:2] == ["1", "local"]
    assert "result " in out
    assert "catalog " in out

    code, out, _ = xf(capsys, "logs", run_id, *db)
    assert code == EXIT_OK
    lines = out.strip().splitlines()
    assert "FlowStarted" in lines[0]
    assert "FlowSucceeded" in lines[-1]
    assert any("[Correlate]" in line for line in lines)

    code, out, _ = xf(capsys, "list", "--json", *db)
    assert code == EXIT_OK
    (row,) = json.loads(out)
    assert (row["run_id"], row["facility"], row["status"]) == (run_id, "local", "SUCCEEDED")
    assert row["duration_s"] > 0

    code, out, _ = xf(capsys, "list", *db)
    assert run_id in out
    assert "SUCCEEDED" in out

    code, _, err = xf(capsys, "cancel", run_id, *db)
    assert code == EXIT_USAGE
    assert "already ended (SUCCEEDED)" in err


def test_a_failed_run_exits_1_with_the_reason(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    # a data error only the correlation finds (the pre-launch checks read no pixels)
    with h5py.File(data["raw"], "r+") as f:
        frames = f["/entry/data/data"]
        frame = frames[5]
        frame[3, 3] = np.iinfo(frames.dtype).max  # a saturated pixel
        frames[5] = frame
    code, out, _ = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--wait", "--facility", "local",
        "--workdir", data["work"], "--db", data["db"],
    )  # fmt: skip
    assert code == EXIT_FAILED
    assert ": FAILED" in out
    assert "failure in Correlate: ActionFailedException" in out
    assert "FrameFormatError" in out


def test_timeout_exits_3_then_cancel_and_a_canceled_run_exits_1(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    db = ["--db", data["db"]]
    code, _, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--wait", "--timeout", "0",
        "--json", "--workdir", data["work"], *db,
    )  # fmt: skip
    assert code == EXIT_TIMEOUT
    assert "timeout:" in err
    assert "still ACTIVE" in err
    code, out, _ = xf(capsys, "list", "--json", *db)
    (row,) = json.loads(out)
    run_id = row["run_id"]

    code, _, err = xf(capsys, "status", run_id, "--wait", "--timeout", "0", *db)
    assert code == EXIT_TIMEOUT
    assert f"flow run {run_id} still ACTIVE" in err

    code, out, _ = xf(capsys, "cancel", run_id, "--json", *db)
    assert code == EXIT_OK
    assert json.loads(out)["canceled"] is True
    Run.from_id(run_id, db_path=Path(data["db"])).wait(progress=False, timeout=30)

    code, out, _ = xf(capsys, "status", run_id, "--json", *db)
    assert code == EXIT_FAILED
    info = json.loads(out)
    assert info["status"] == "FAILED"
    assert info["failure"]["error"] == "FlowCanceled"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], data: dict[str, str]) -> None:
    db = ["--db", data["db"]]
    code, _, err = xf(capsys, "status", "no-such-run", *db)
    assert code == EXIT_USAGE
    assert "no local flow run with id 'no-such-run'" in err
    code, _, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--facility", "atlantis", *db
    )
    assert code == EXIT_USAGE
    assert "unknown deployment" in err
    assert "local" in err
    code, _, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--option", "stride", *db
    )
    assert code == EXIT_USAGE
    assert "KEY=VALUE" in err
    code, _, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--option", "mood=1", *db
    )
    assert code == EXIT_USAGE
    assert "unknown option(s) ['mood']" in err
    code, _, err = xf(capsys, "run", data["raw"] + ".missing", "--qmap", data["qmap"], *db)
    assert code == EXIT_USAGE


@pytest.fixture
def globus_mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    def flows_client() -> globus_sdk.FlowsClient:
        return globus_sdk.FlowsClient(
            authorizer=globus_sdk.AccessTokenAuthorizer("t"),
            retry_config=RetryConfig(max_retries=0),
        )

    monkeypatch.setattr("flows.runs.handle.globus_flows_client", flows_client)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.mark.parametrize(
    ("status", "exit_code", "message"),
    [
        (404, EXIT_USAGE, "no Globus flow run with id"),
        (403, EXIT_USAGE, "xpcs-flows login"),
        (500, EXIT_FAILED, "Globus answered 500"),
    ],
)
def test_globus_api_errors_have_clear_messages_and_exit_codes(
    capsys: pytest.CaptureFixture[str],
    globus_mock: responses.RequestsMock,
    tmp_path: Path,
    status: int,
    exit_code: int,
    message: str,
) -> None:
    run_id = str(uuid.uuid4())
    globus_mock.add(
        responses.GET,
        f"{FLOWS_API}/runs/{run_id}",
        status=status,
        json={"code": "Canned", "message": f"canned {status}"},
    )
    db = str(tmp_path / "s.db")
    code, out, err = xf(capsys, "status", run_id, "--engine", "globus", "--db", db)
    assert code == exit_code
    assert err.startswith("error: ")
    assert message in err
    assert out == ""
    assert len(globus_mock.calls) == 1


def test_globus_status_of_a_failed_run_exits_1(
    capsys: pytest.CaptureFixture[str], globus_mock: responses.RequestsMock, tmp_path: Path
) -> None:
    run_id = str(uuid.uuid4())
    doc: dict[str, Any] = {
        "run_id": run_id,
        "flow_id": str(uuid.uuid4()),
        "status": "FAILED",
        "label": "A001 @ polaris",
        "tags": [],
        "start_time": "2026-11-25T10:00:00+00:00",
        "completion_time": "2026-11-25T10:01:00+00:00",
        "details": {"code": "FlowFailed", "cause": "ActionUnableToRun: endpoint offline"},
    }
    globus_mock.add(responses.GET, f"{FLOWS_API}/runs/{run_id}", json=doc)
    code, out, _ = xf(capsys, "status", run_id, "--engine", "globus", "--db", str(tmp_path / "s"))
    assert code == EXIT_FAILED
    assert f"run {run_id}: FAILED" in out
    assert "endpoint offline" in out
    assert "duration 60.0 s" in out


@pytest.mark.slow
def test_run_without_wait_returns_and_a_detached_driver_finishes_it(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    code, out, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--json",
        "--workdir", data["work"], "--db", data["db"],
    )  # fmt: skip
    assert code == EXIT_OK, err
    info = json.loads(out)
    assert info["status"] == "ACTIVE"
    assert info["facility"] == "local"
    run = Run.from_id(info["run_id"], db_path=Path(data["db"]))
    assert run.wait(progress=False, timeout=300).status() == "SUCCEEDED"


@pytest.mark.slow
def test_status_of_a_run_without_driver_starts_a_detached_one(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    db = Path(data["db"])
    request = prepare_launch(
        data["raw"], data["qmap"], facility="local", db_path=db, workdir=Path(data["work"])
    )
    run_id = start_attempt(request, "local", decision=None, background=False).run_id
    code, out, _ = xf(capsys, "status", run_id, "--db", data["db"])
    assert code == EXIT_OK
    assert f"run {run_id}: ACTIVE" in out
    # nothing in this process drives the run: only the store is read from here on
    store = LocalEngine(db, providers={}).store
    deadline = time.monotonic() + 300
    while not store.get(run_id).status.is_final and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.get(run_id).status.value == "SUCCEEDED"
