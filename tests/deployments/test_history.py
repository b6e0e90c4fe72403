"""Run history: records, learned rates from priors and runs, one publication per dataset."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from deployments.history import LearnedRates, RunHistory, RunTimings, default_database_path
from tests.deployments.helpers import make_deployment

SITE = make_deployment(
    "site",
    priors={
        "transfer_rate_mb_s": 100,
        "transfer_overhead_s": 10,
        "queue_delay_s": 60,
        "dispatch_latency_s": 2,
        "throughput_mpix_s": 1000,
    },
)


def run(
    h: RunHistory,
    i: int,
    *,
    stage_in: float,
    queue: float,
    compute: float,
    facility: str = "site",
    mb: float = 1000.0,
) -> None:
    h.record_start(
        f"r{i}",
        dataset=f"d{i}",
        facility=facility,
        started_at=100.0 + i,
        bytes_in=int(mb * 1e6),
        frames=10_000,
        pixels=1_000_000,
    )
    h.record_success(
        f"r{i}", finished_at=200.0 + i, timings=RunTimings(stage_in, queue, compute, 5.0)
    )


def test_default_path_is_in_the_user_data_dir(isolated_home: Path) -> None:
    assert default_database_path() == isolated_home / ".local/share/xpcs-flows/state.db"


def test_file_database_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.sqlite"
    with RunHistory(path) as h:
        run(h, 1, stage_in=20, queue=5, compute=10)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM run_history").fetchone()[0] == 1
    with RunHistory(path) as again:  # reopens the same data
        assert [r.run_id for r in again.runs()] == ["r1"]


def test_priors_without_runs() -> None:
    with RunHistory(":memory:") as h:
        rates = h.learned_rates(SITE)
    assert rates == LearnedRates.from_priors(SITE)
    assert rates.samples == 0


def test_rates_move_from_priors_toward_measurements() -> None:
    with RunHistory(":memory:") as h:
        for i in range(3):
            # 1000 MB in 20 s with 10 s overhead -> 100 MB/s... make it 200 MB/s:
            run(h, i, stage_in=15, queue=120, compute=5)
        rates = h.learned_rates(SITE)
        # 3 samples, prior weight 3: halfway between prior and the median
        assert rates.transfer_rate_mb_s == pytest.approx((3 * 100 + 3 * 200) / 6)
        assert rates.queue_delay_s == pytest.approx((3 * 60 + 3 * 120) / 6)
        assert rates.throughput_mpix_s == pytest.approx((3 * 1000 + 3 * 2000) / 6)
        assert rates.samples == 3
        for i in range(3, 40):
            run(h, i, stage_in=15, queue=120, compute=5)
        many = h.learned_rates(SITE, window=20)
        assert many.samples == 20
        assert many.throughput_mpix_s == pytest.approx((3 * 1000 + 20 * 2000) / 23)


def test_failures_and_other_facilities_do_not_teach() -> None:
    with RunHistory(":memory:") as h:
        run(h, 1, stage_in=15, queue=1, compute=1, facility="other")
        h.record_start("f", dataset="d", facility="site", started_at=1.0)
        h.record_failure("f", finished_at=2.0, kind="infrastructure", detail="offline")
        assert h.learned_rates(SITE) == LearnedRates.from_priors(SITE)
        (rec,) = h.runs(facility="site")
        assert (rec.outcome, rec.failure_kind, rec.failure_detail) == (
            "failed",
            "infrastructure",
            "offline",
        )


def test_decision_stored_with_the_run() -> None:
    with RunHistory(":memory:") as h:
        h.record_start(
            "r",
            dataset="d",
            facility="site",
            started_at=1.0,
            attempt=2,
            failover_from="r0",
            decision={"chosen": "site", "candidates": []},
        )
        (rec,) = h.runs(dataset="d")
        assert rec.decision == {"chosen": "site", "candidates": []}
        assert (rec.attempt, rec.failover_from, rec.outcome) == (2, "r0", "running")


def test_finishing_an_unknown_run_is_an_error() -> None:
    with RunHistory(":memory:") as h, pytest.raises(KeyError, match="nope"):
        h.record_failure("nope", finished_at=1.0, kind="data", detail="x")


def test_one_publication_per_dataset_even_under_races() -> None:
    with RunHistory(":memory:") as h:
        wins: list[str] = []
        barrier = threading.Barrier(8)

        def attempt(i: int) -> None:
            barrier.wait(timeout=10)
            if h.claim_publication("key-A", run_id=f"run{i}", facility="site", at=float(i)):
                wins.append(f"run{i}")

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert len(wins) == 1
        assert h.publication("key-A") == (wins[0], "site")
        # the winner may claim again (a retried publish step), others may not
        assert h.claim_publication("key-A", run_id=wins[0], facility="site", at=9.0)
        assert h.publication("key-B") is None


def test_stage_out_overhead_is_learned_from_measured_stage_outs() -> None:
    with RunHistory(":memory:") as h:
        assert h.learned_rates(SITE).stage_out_overhead == 10  # the transfer overhead prior
        assert h.learned_rates(SITE).stage_out_overhead_s is None
        for i in range(3):
            h.record_start(f"o{i}", dataset=f"o{i}", facility="site", started_at=float(i))
            h.record_success(
                f"o{i}",
                finished_at=50.0 + i,
                timings=RunTimings(stage_out_s=4.0),
                bytes_out=100_000_000,  # 100 MB at the prior 100 MB/s: 1 s of moving
            )
        rates = h.learned_rates(SITE)
    # samples of 4 - 1 = 3 s, halfway (3 samples, prior weight 3) from the 10 s prior
    assert rates.stage_out_overhead == pytest.approx((3 * 10 + 3 * 3) / 6)
