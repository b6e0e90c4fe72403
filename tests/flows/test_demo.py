"""The README's first quick-start command: the demo runs the whole flow locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli.app import main as cli_main
from flows.cli.demo import run_demo
from flows.local.providers.catalog import LocalCatalog


@pytest.mark.slow
def test_demo_runs_the_flow_and_recovers_the_truth(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    report = run_demo(tmp_path / "work", frames=600, shape=(48, 48), seed=1, db_path=db)
    assert report["status"] == "SUCCEEDED"
    assert report["facility"]["chosen"] == "local"
    assert Path(report["result"]).is_file()
    assert report["plots"]
    assert all(Path(p).is_file() for p in report["plots"])
    # the published copy and its catalog entry exist, once
    assert (Path(report["published_dir"]) / "metadata.json").is_file()
    assert report["published"]
    entry = report["catalog_entry"]
    assert entry["subject"] == report["catalog_subject"]
    subjects = [e.subject for e in LocalCatalog(db).list(entry["index"])]
    assert subjects == [report["catalog_subject"]]
    # fitted correlation times within 10 % where the series spans >= 20 tau_c
    n_frames = report["summary"]["n_frames"]
    checked = 0
    for row in report["comparison"]:
        if n_frames >= 20 * row["tau_c_true_frames"]:
            assert abs(row["relative_error"]) < 0.10, row
            assert abs(row["contrast_fit"] - row["contrast_true"]) < 0.02, row
            checked += 1
    assert checked >= 3


@pytest.mark.slow
def test_demo_command_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        [
            "demo",
            "--workdir",
            str(tmp_path / "w"),
            "--frames",
            "300",
            "--shape",
            "32",
            "32",
            "--db",
            str(tmp_path / "s.db"),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "SUCCEEDED"
    assert len(report["comparison"]) == 6
    assert report["facility"]["skipped"]["polaris"] == "not configured"
    assert isinstance(report["first_run_compile"], bool)
    # the demo's run is listed, and a prefix of its id finds it
    db = str(tmp_path / "s.db")
    assert cli_main(["list", "--json", "--db", db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["run_id"] for row in listed] == [report["run_id"]]
    assert listed[0]["status"] == "SUCCEEDED"
    assert cli_main(["status", report["run_id"][:8], "--db", db]) == 0
    assert f"run {report['run_id']}: SUCCEEDED" in capsys.readouterr().out
