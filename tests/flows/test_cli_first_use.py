"""What a new user trips on at the command line: each wrong file, option or facility
is one line naming what was wrong and what was expected, with the README's exit code;
``catalog --json``; run-id prefixes; ``list`` shows runs started without ``launch``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.local.records import RunRecord, RunStatus
from flows.local.store import RunStore
from flows.runs.index import RunIndex, RunIndexEntry
from flows.runs.lookup import AmbiguousRunId, recent_runs, resolve_run_id
from tests.flows.test_launch_support import make_dataset
from tests.flows.test_run_commands import xf
from xpcs_kernel.errors import UsageError
from xpcs_kernel.options import CorrelationOptions

EXIT_USAGE = 2


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    raw, qmap = make_dataset(tmp_path / "beamline")
    return {"raw": str(raw), "qmap": str(qmap), "db": str(tmp_path / "state.db")}


def test_a_missing_input_file_is_one_line(
    capsys: pytest.CaptureFixture[str], data: dict[str, str], tmp_path: Path
) -> None:
    missing = str(tmp_path / "nope.h5")
    code, out, err = xf(capsys, "run", missing, "--qmap", data["qmap"], "--db", data["db"])
    assert code == EXIT_USAGE
    assert out == ""
    line = one_line(err)
    assert "nope.h5" in line
    assert "does not exist" in line
    assert "xpcs-flows run --help" in line
    code, _, err = xf(capsys, "run", data["raw"], "--qmap", data["qmap"], "--bogus")
    assert code == EXIT_USAGE
    assert "--bogus" in one_line(err)


def test_a_truncated_raw_file_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    raw = Path(data["raw"])
    content = raw.read_bytes()
    raw.write_bytes(content[: len(content) // 3])
    code, out, err = xf(capsys, "run", data["raw"], "--qmap", data["qmap"], "--db", data["db"])
    assert code == EXIT_USAGE
    assert "started run" not in out
    line = one_line(err)
    assert str(raw) in line
    assert "truncated or corrupt" in line


def test_a_non_integer_option_names_the_option_and_the_type(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    code, _, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--option", "stride=abc",
        "--db", data["db"],
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert one_line(err) == "error: stride: must be an integer, not 'abc'"


@pytest.mark.parametrize(
    ("values", "argument"),
    [
        ({"stride": "abc"}, "stride"),
        ({"begin": 1.5}, "begin"),
        ({"end": True}, "end"),
        ({"frame_time": "1ms"}, "frame_time"),
        ({"fit": "yes"}, "fit"),
        ({"twotime_bins": "0,1"}, "twotime_bins"),
        ({"twotime_bins": ["a"]}, "twotime_bins"),
    ],
)
def test_options_of_the_wrong_type_are_usage_errors(
    values: dict[str, object], argument: str
) -> None:
    with pytest.raises(UsageError) as info:
        CorrelationOptions.from_dict(values)
    assert info.value.argument == argument
    assert CorrelationOptions.from_dict({"twotime_bins": [0, 2]}).twotime_bins == (0, 2)


def test_globus_with_nothing_configured_says_so(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    code, out, err = xf(
        capsys, "run", data["raw"], "--qmap", data["qmap"], "--engine", "globus",
        "--db", data["db"],
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert out == ""
    line = one_line(err)
    assert "no Globus facility is configured" in line
    assert "polaris" in line  # a packaged descriptor still holding placeholders
    assert "`xpcs-flows facilities`" in line
    assert "deployments" in line


def test_catalog_takes_json_like_every_listing_command(
    capsys: pytest.CaptureFixture[str], data: dict[str, str]
) -> None:
    code, out, _ = xf(capsys, "catalog", "--json", "--db", data["db"])
    assert code == 0
    assert json.loads(out) == []
    code, out, _ = xf(capsys, "catalog", "--db", data["db"])
    assert code == 0
    assert "the local catalog is empty" in out


def _index(db: Path, run_id: str, started_at: float) -> None:
    RunIndex(db).add(
        RunIndexEntry(
            run_id, "local", None, "local", "A001", "A001 @ local", run_id, 1, "", started_at
        )
    )


def _local_run(db: Path, run_id: str, start: datetime) -> None:
    """A local-engine run that no ``launch`` indexed (as the demo's)."""
    RunStore(db).create(
        RunRecord(
            run_id=run_id,
            status=RunStatus.ACTIVE,
            flow_id=None,
            label="demo_raw @ local",
            tags=("demo",),
            start_time=start.isoformat(),
            completion_time=None,
            input={"input": {"facility": "local", "dataset": {"name": "demo_raw"}}},
            state={},
            current_state="Correlate",
            details={},
        ),
        [],
    )


def test_run_id_prefixes(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    assert resolve_run_id("abc", db) == "abc"  # no database yet: unchanged
    _index(db, "aaaa1111-0000", 10.0)
    _index(db, "aaaa2222-0000", 20.0)
    _local_run(db, "bbbb3333-0000", datetime.now(UTC))
    assert resolve_run_id("aaaa1", db) == "aaaa1111-0000"
    assert resolve_run_id("bbbb", db) == "bbbb3333-0000"  # the local store counts too
    assert resolve_run_id("aaaa1111-0000", db) == "aaaa1111-0000"
    assert resolve_run_id("zzzz", db) == "zzzz"  # unknown: the caller says so
    assert resolve_run_id("a_a", db) == "a_a"  # LIKE wildcards are literal
    with pytest.raises(AmbiguousRunId) as info:
        resolve_run_id("aaaa", db)
    assert info.value.candidates == ("aaaa1111-0000", "aaaa2222-0000")


def test_status_takes_a_unique_prefix_and_names_the_candidates_of_an_ambiguous_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    _local_run(db, "cafe0001-aaaa", datetime.now(UTC))
    _local_run(db, "cafe0002-bbbb", datetime.now(UTC))
    code, out, _ = xf(capsys, "status", "cafe0001", "--db", str(db))
    assert code == 0
    assert "run cafe0001-aaaa: ACTIVE" in out
    code, _, err = xf(capsys, "status", "cafe", "--db", str(db))
    assert code == EXIT_USAGE
    line = one_line(err)
    assert "'cafe' matches 2 runs: cafe0001-aaaa, cafe0002-bbbb" in line


def test_list_shows_local_runs_that_launch_did_not_index(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    now = datetime.now(UTC)
    _local_run(db, "launched-1", now - timedelta(hours=1))  # launched: in both tables
    _index(db, "launched-1", (now - timedelta(hours=1)).timestamp())
    _local_run(db, "demo-run-1", now)
    assert [r.run_id for r in recent_runs(db, 10)] == ["demo-run-1", "launched-1"]
    assert [r.run_id for r in recent_runs(db, 1)] == ["demo-run-1"]
    code, out, _ = xf(capsys, "list", "--json", "--db", str(db))
    assert code == 0
    rows = json.loads(out)
    assert [r["run_id"] for r in rows] == ["demo-run-1", "launched-1"]
    assert rows[0]["dataset"] == "demo_raw"
    assert rows[0]["status"] == "ACTIVE"


def test_watch_of_a_missing_directory_is_one_line(
    capsys: pytest.CaptureFixture[str], data: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "not-there"
    code, _, err = xf(capsys, "watch", str(missing), "--qmap", data["qmap"], "--db", data["db"])
    assert code == EXIT_USAGE
    line = one_line(err)
    assert f"'{missing}' does not exist" in line
    assert "DIRECTORY" in line
    code, _, err = xf(capsys, "watch", str(tmp_path), "--qmap", str(missing / "q.h5"))
    assert code == EXIT_USAGE
    assert "q.h5' does not exist" in one_line(err)
