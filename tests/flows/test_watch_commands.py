"""``xpcs-flows watch --status`` and ``xpcs-flows retry`` through click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli.watch import retry_command, watch_command
from flows.errors import WatchLedgerEntryNotFound
from flows.watch.ledger import FileState, Ledger
from xpcs_kernel.errors import UsageError


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A ledger with one file in each interesting state."""
    book = Ledger(tmp_path / "state.db")
    beam = str(tmp_path / "beam")
    for name in ("ok", "bad", "busy", "waiting", "broken"):
        book.observe(f"{beam}/{name}.h5", beam)
    book.observe(str(tmp_path / "other" / "x.h5"), str(tmp_path / "other"))
    for name in ("ok", "busy", "broken"):
        book.mark_ready(f"{beam}/{name}.h5")
        assert book.begin_launch(f"{beam}/{name}.h5", f"key-{name}")
        book.record_launched(f"{beam}/{name}.h5", f"key-{name}", f"run-{name}", "polaris")
    book.record_succeeded(f"{beam}/ok.h5", "run-ok")
    book.record_failed(f"{beam}/bad.h5", "invalid: the frame shape differs from the q-map's")
    book.record_failed(f"{beam}/broken.h5", "run run-broken ended FAILED")
    book.record_failed(str(tmp_path / "other" / "x.h5"), "invalid: empty")
    return book


def test_status_json_counts_every_state(ledger: Ledger, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        watch_command,
        ["--status", "--json", "--db", str(ledger.db_path), str(tmp_path / "beam")],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["total"] == 5
    assert summary["counts"] == {
        "SEEN": 1,
        "READY": 0,
        "LAUNCHING": 0,
        "LAUNCHED": 1,
        "SUCCEEDED": 1,
        "FAILED": 2,
        "VANISHED": 0,
    }
    assert {Path(e["path"]).name: e["reason"] for e in summary["failed"]} == {
        "bad.h5": "invalid: the frame shape differs from the q-map's",
        "broken.h5": "run run-broken ended FAILED",
    }
    assert [(e["run_id"], e["facility"]) for e in summary["active"]] == [("run-busy", "polaris")]


def test_status_text_names_failures_and_active_runs(ledger: Ledger) -> None:
    result = CliRunner().invoke(watch_command, ["--status", "--db", str(ledger.db_path)])
    assert result.exit_code == 0, result.output
    assert "6 files" in result.output
    assert "failed 3" in result.output
    assert "succeeded 1" in result.output
    assert "busy.h5  run run-busy on polaris" in result.output
    assert "x.h5: invalid: empty" in result.output


def test_watch_needs_a_directory_and_a_qmap(tmp_path: Path) -> None:
    result = CliRunner().invoke(watch_command, ["--db", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert "DIRECTORY and --qmap are required" in result.output


def test_retry_named_files(ledger: Ledger, tmp_path: Path) -> None:
    bad = tmp_path / "beam" / "bad.h5"
    result = CliRunner().invoke(retry_command, [str(bad), "--db", str(ledger.db_path), "--json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    assert (entry["path"], entry["state"], entry["attempt"]) == (str(bad), "SEEN", 2)
    assert ledger.get(str(bad)).reason is None


def test_retry_all_failed_of_one_directory(ledger: Ledger, tmp_path: Path) -> None:
    beam = tmp_path / "beam"
    result = CliRunner().invoke(
        retry_command, ["--all-failed", "--dir", str(beam), "--db", str(ledger.db_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"{beam / 'bad.h5'}: re-queued (attempt 2)" in result.output
    assert f"{beam / 'broken.h5'}: re-queued (attempt 2)" in result.output
    assert ledger.get(str(tmp_path / "other" / "x.h5")).state is FileState.FAILED
    assert ledger.get(str(beam / "broken.h5")).run_id is None


def test_retry_refuses_unknown_and_unfailed_files(ledger: Ledger, tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(ledger.db_path)
    unknown = runner.invoke(retry_command, [str(tmp_path / "nope.h5"), "--db", db])
    assert isinstance(unknown.exception, WatchLedgerEntryNotFound)
    assert unknown.exit_code != 0
    busy = tmp_path / "beam" / "busy.h5"
    bad = tmp_path / "beam" / "bad.h5"
    refused = runner.invoke(retry_command, [str(bad), str(busy), "--db", db])
    assert isinstance(refused.exception, UsageError)
    assert "busy.h5 is LAUNCHED; only FAILED files are retried" in str(refused.exception)
    assert ledger.get(str(bad)).state is FileState.FAILED  # all or none
    both = runner.invoke(retry_command, [str(bad), "--all-failed", "--db", db])
    assert both.exit_code == 2


def test_retry_through_the_console_entry_point_exit_codes(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli.app import cli, main

    monkeypatch.setitem(cli.commands, "retry", retry_command)  # the lead registers it
    db = str(ledger.db_path)
    assert main(["retry", str(tmp_path / "nope.h5"), "--db", db]) == 1
    assert main(["retry", str(tmp_path / "beam" / "busy.h5"), "--db", db]) == 2
    assert main(["retry", str(tmp_path / "beam" / "bad.h5"), "--db", db]) == 0
