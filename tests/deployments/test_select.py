"""The selector: estimates, exclusions with reasons, ranking, failover inputs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deployments.errors import NoFacilityAvailable
from deployments.history import LearnedRates
from deployments.model import Deployment, parse_deployment
from deployments.select import JobRequest, SelectionPolicy, rank_facilities, select_facility
from deployments.state import FacilityState, FacilityStatus, Outage
from tests.deployments.helpers import STAGE, make_deployment

NOW = 1_800_000_000.0
GB = 1_000_000_000


def site(
    name: str,
    *,
    rate: float = 200,
    mpix: float = 1000,
    queue: float = 60,
    gpu: bool = True,
    memory: float = 256,
    kernel: str = "0.1.0",
) -> Deployment:
    return make_deployment(
        name,
        priors={
            "transfer_rate_mb_s": rate,
            "throughput_mpix_s": mpix,
            "queue_delay_s": queue,
            "transfer_overhead_s": 10,
            "dispatch_latency_s": 2,
        },
        capabilities={"gpu": gpu, "memory_gb": memory, "kernel_version": kernel, "slots": 4},
    )


def local() -> Deployment:
    data = {
        "facility": "local",
        "engine": "local",
        "compute": {},
        "paths": {"allowed_roots": ["/"]},
        "capabilities": {
            "gpu": False,
            "memory_gb": 16,
            "kernel_version": "0.1.0",
            "reads_beamline_storage": True,
        },
        "priors": {
            "transfer_rate_mb_s": 500,
            "throughput_mpix_s": 50,
            "queue_delay_s": 0,
            "dispatch_latency_s": 0.5,
            "transfer_overhead_s": 0.5,
        },
    }
    return parse_deployment("local", data, source="local.toml")


def up(
    name: str,
    *,
    idle: int | None = 4,
    total: int | None = 4,
    outstanding: int | None = 0,
    outages: tuple[Outage, ...] = (),
    state: FacilityState = FacilityState.UP,
    age: float = 0.0,
) -> FacilityStatus:
    return FacilityStatus(
        name,
        "combined",
        state,
        NOW - age,
        "test",
        outages,
        idle_workers=idle,
        total_workers=total,
        outstanding_tasks=outstanding,
    )


REQ = JobRequest(dataset="A001", bytes_in=2 * GB, frames=10_000, pixels=1_000_000)


def test_estimate_is_the_sum_of_the_phases() -> None:
    d = site("alpha", rate=200, mpix=1000)
    decision = select_facility(REQ, [d], {"alpha": up("alpha")}, {}, now=NOW)
    (row,) = decision.candidates
    est = row.estimate
    assert est.stage_in_s == pytest.approx(10 + 2000 / 200)
    assert est.queue_s == pytest.approx(2)  # idle workers: dispatch latency only
    assert est.compute_s == pytest.approx(10_000 * 1_000_000 / 1e6 / 1000)
    assert est.stage_out_s == pytest.approx(10 + 20 / 200)
    assert est.total_s == pytest.approx(20 + 2 + 10 + 10.1)
    assert decision.chosen == "alpha"
    assert row.rank == 1
    assert "4 idle worker(s), 0 outstanding task(s)" in row.reasons


def test_fastest_wins_and_every_row_has_reasons() -> None:
    slow, fast = site("slow", mpix=100), site("fast", mpix=2000)
    decision = select_facility(
        REQ, [slow, fast], {"slow": up("slow"), "fast": up("fast")}, {}, now=NOW
    )
    assert [c.facility for c in decision.ranked] == ["fast", "slow"]
    assert [c.rank for c in decision.ranked] == [1, 2]
    assert all(c.reasons for c in decision.candidates)
    table = decision.to_dict()
    assert table["chosen"] == "fast"
    assert (
        table["candidates"][0]["estimate"]["total_s"]
        < table["candidates"][1]["estimate"]["total_s"]
    )


def test_backlog_counts_outstanding_tasks() -> None:
    a, b = site("a"), site("b")
    busy = up("a", idle=0, total=4, outstanding=12)  # 8 queued behind 4 running
    decision = select_facility(REQ, [a, b], {"a": busy, "b": up("b")}, {}, now=NOW)
    assert decision.chosen == "b"
    row_a = next(c for c in decision.candidates if c.facility == "a")
    # (8 pending + 1) / 4 workers * 10 s compute, less the 20 s of staging that overlaps
    assert row_a.estimate.queue_s == pytest.approx(2 + (9 / 4 * 10 - 20))


def test_inflight_runs_count_as_queued() -> None:
    a = site("a")
    status = {"a": up("a", idle=2, total=4, outstanding=2)}
    free = rank_facilities(REQ, [a], status, {}, now=NOW)
    loaded = rank_facilities(REQ, [a], status, {}, now=NOW, inflight={"a": 40})
    assert free.candidates[0].estimate.queue_s == pytest.approx(2)
    assert loaded.candidates[0].estimate.queue_s > 50
    assert "40 of ours staging in" in loaded.candidates[0].reasons[-1]


def test_no_worker_info_uses_learned_queue_delay() -> None:
    a = site("a", queue=300)
    decision = rank_facilities(
        REQ, [a], {"a": up("a", idle=None, total=None, outstanding=None)}, {}, now=NOW
    )
    assert decision.candidates[0].estimate.queue_s == pytest.approx(302)


def test_all_down_is_a_clear_error_with_the_table() -> None:
    a, b = site("a"), site("b")
    statuses = {"a": up("a", state=FacilityState.DOWN), "b": up("b", state=FacilityState.DOWN)}
    with pytest.raises(NoFacilityAvailable) as info:
        select_facility(REQ, [a, b], statuses, {}, now=NOW)
    err = info.value
    assert [row["facility"] for row in err.table] == ["a", "b"]
    assert all(not row["eligible"] for row in err.table)
    assert "down: test" in str(err)
    assert err.to_dict()["type"] == "NoFacilityAvailable"


def test_all_down_falls_back_to_local_when_allowed() -> None:
    a = site("a")
    statuses = {"a": up("a", state=FacilityState.DOWN)}
    decision = select_facility(REQ, [a, local()], statuses, {}, now=NOW)
    assert decision.chosen == "local"
    assert decision.candidates[0].data_local
    with pytest.raises(NoFacilityAvailable, match="local runs not allowed"):
        select_facility(replace(REQ, allow_local=False), [a, local()], statuses, {}, now=NOW)


def test_outage_starting_mid_job_excludes_the_facility() -> None:
    a, b = site("a", mpix=2000), site("b", mpix=500)
    # a would finish in ~47 s; its planned outage starts in 40 s
    soon = Outage(NOW + 40, NOW + 3600, True, "PM")
    statuses = {"a": up("a", outages=(soon,)), "b": up("b")}
    decision = select_facility(REQ, [a, b], statuses, {}, now=NOW)
    assert decision.chosen == "b"
    row_a = next(c for c in decision.candidates if c.facility == "a")
    assert not row_a.eligible
    assert "planned outage 'PM'" in row_a.reasons[0]
    assert "overlaps the estimated completion" in row_a.reasons[0]


def test_outage_after_completion_with_margin_is_fine() -> None:
    a = site("a")
    later = Outage(NOW + 3 * 3600, NOW + 4 * 3600, True, "PM")
    decision = select_facility(REQ, [a], {"a": up("a", outages=(later,))}, {}, now=NOW)
    assert decision.chosen == "a"
    # the guard is part of the policy: a huge guard excludes it
    with pytest.raises(NoFacilityAvailable):
        select_facility(
            REQ,
            [a],
            {"a": up("a", outages=(later,))},
            {},
            now=NOW,
            policy=SelectionPolicy(outage_guard_s=4 * 3600),
        )


def test_ongoing_unplanned_outage_without_end_excludes() -> None:
    a = site("a")
    ongoing = Outage(NOW - 600, None, False, "filesystem")
    with pytest.raises(NoFacilityAvailable, match=r"unplanned outage 'filesystem'.*until further"):
        select_facility(REQ, [a], {"a": up("a", outages=(ongoing,))}, {}, now=NOW)


def test_past_outage_is_ignored() -> None:
    a = site("a")
    past = Outage(NOW - 7200, NOW - 3600, True, "done")
    assert select_facility(REQ, [a], {"a": up("a", outages=(past,))}, {}, now=NOW).chosen == "a"


def test_stale_status_is_unknown_and_ranked_after_known() -> None:
    fast, slow = site("fast", mpix=5000), site("slow", mpix=200)
    statuses = {"fast": up("fast", age=3600), "slow": up("slow")}
    decision = select_facility(REQ, [fast, slow], statuses, {}, now=NOW)
    assert [c.facility for c in decision.ranked] == ["slow", "fast"]
    row = decision.ranked[1]
    assert row.state is FacilityState.UNKNOWN
    assert "status stale (3600 s old)" in row.reasons
    strict = SelectionPolicy(exclude_unknown=True)
    decision = select_facility(REQ, [fast, slow], statuses, {}, now=NOW, policy=strict)
    assert [c.facility for c in decision.ranked] == ["slow"]


def test_missing_status_is_unknown_never_up() -> None:
    a = site("a")
    decision = select_facility(REQ, [a], {}, {}, now=NOW)
    assert decision.candidates[0].state is FacilityState.UNKNOWN
    assert "no status" in decision.candidates[0].reasons


@pytest.mark.parametrize(
    ("request_changes", "site_changes", "reason"),
    [
        ({"needs_gpu": True}, {"gpu": False}, "no GPU"),
        ({"memory_gb": 512.0}, {"memory": 256}, "needs 512 GB memory, has 256"),
        ({"min_kernel_version": "0.10.0"}, {"kernel": "0.9.9"}, "kernel 0.9.9 older than 0.10.0"),
        ({"source_path": "/elsewhere/a.h5"}, {}, "outside the allowed roots"),
        ({"exclude": frozenset({"a"})}, {}, "already tried"),
    ],
)
def test_capability_and_path_mismatch(
    request_changes: dict, site_changes: dict, reason: str
) -> None:  # type: ignore[type-arg]
    a = site("a", **site_changes)
    b = make_deployment(
        "b",
        paths={"allowed_roots": ["/"]},
        capabilities={"gpu": True, "memory_gb": 1024, "kernel_version": "1.0.0"},
        priors={"throughput_mpix_s": 10},
    )
    request = replace(REQ, **request_changes)
    decision = select_facility(request, [a, b], {"a": up("a"), "b": up("b")}, {}, now=NOW)
    assert decision.chosen == "b"
    row_a = next(c for c in decision.candidates if c.facility == "a")
    assert not row_a.eligible
    assert any(reason in r for r in row_a.reasons)


def test_live_runs_go_only_where_the_endpoint_reads_the_beamline_storage() -> None:
    fast = site("fast", mpix=5000)
    live = replace(REQ, live=True)
    decision = select_facility(live, [fast, local()], {"fast": up("fast")}, {}, now=NOW)
    assert select_facility(REQ, [fast, local()], {"fast": up("fast")}, {}, now=NOW).chosen == (
        "fast"
    )
    assert decision.chosen == "local"
    row = next(c for c in decision.candidates if c.facility == "fast")
    assert not row.eligible
    why = "live run: its Compute endpoint cannot read the beamline storage"
    assert why in row.reasons
    assert any(
        why in r for r in next(t for t in decision.table() if t["facility"] == "fast")["reasons"]
    )
    with pytest.raises(NoFacilityAvailable, match="cannot read the beamline storage"):
        select_facility(live, [fast], {"fast": up("fast")}, {}, now=NOW)


def test_kernel_version_compares_numerically() -> None:
    a = site("a", kernel="0.10.0")
    request = replace(REQ, min_kernel_version="0.9.1")
    assert select_facility(request, [a], {"a": up("a")}, {}, now=NOW).chosen == "a"


def test_degraded_inflates_compute() -> None:
    a = site("a")
    plain = rank_facilities(REQ, [a], {"a": up("a")}, {}, now=NOW).candidates[0]
    slow = rank_facilities(
        REQ, [a], {"a": up("a", state=FacilityState.DEGRADED)}, {}, now=NOW
    ).candidates[0]
    assert slow.estimate.compute_s == pytest.approx(plain.estimate.compute_s * 1.5)
    assert "degraded" in slow.reasons


def test_ties_prefer_data_locality_then_name() -> None:
    b = site("b")
    a = site("a")
    local_data = replace(REQ, source_collection=STAGE)
    # both stage to the same collection: same estimate, both local -> by name
    decision = select_facility(local_data, [b, a], {"a": up("a"), "b": up("b")}, {}, now=NOW)
    assert [c.facility for c in decision.ranked] == ["a", "b"]
    assert all(c.data_local and c.estimate.stage_in_s == 0 for c in decision.ranked)
    # equal totals, only b local -> b first
    far = make_deployment(
        "a",
        collections={"staging": {"id": "dddddddd-0000-4000-8000-000000000000", "path": "/s"}},
        priors={
            "transfer_rate_mb_s": 1e12,
            "transfer_overhead_s": 0,
            "throughput_mpix_s": 1000,
            "queue_delay_s": 60,
            "dispatch_latency_s": 2,
        },
    )
    near = make_deployment(
        "b",
        priors={
            "transfer_rate_mb_s": 1e12,
            "transfer_overhead_s": 0,
            "throughput_mpix_s": 1000,
            "queue_delay_s": 60,
            "dispatch_latency_s": 2,
        },
    )
    decision = select_facility(local_data, [far, near], {"a": up("a"), "b": up("b")}, {}, now=NOW)
    totals = {c.facility: round(c.estimate.total_s, 3) for c in decision.candidates}
    assert totals["a"] == totals["b"]
    assert decision.chosen == "b"


def test_learned_rates_change_the_choice() -> None:
    a, b = site("a", mpix=1000), site("b", mpix=900)
    statuses = {"a": up("a"), "b": up("b")}
    assert select_facility(REQ, [a, b], statuses, {}, now=NOW).chosen == "a"
    learned = {"a": replace(LearnedRates.from_priors(a), throughput_mpix_s=100.0, samples=20)}
    assert select_facility(REQ, [a, b], statuses, learned, now=NOW).chosen == "b"


def test_decision_next_after_for_failover() -> None:
    ds = [site("a", mpix=3000), site("b", mpix=2000), site("c", mpix=1000)]
    decision = select_facility(REQ, ds, {d.name: up(d.name) for d in ds}, {}, now=NOW)
    assert decision.next_after(["a"]).facility == "b"  # type: ignore[union-attr]
    assert decision.next_after(["a", "b", "c"]) is None


def test_selector_reads_no_clock() -> None:
    a = site("a")
    one = rank_facilities(REQ, [a], {"a": up("a")}, {}, now=NOW)
    two = rank_facilities(REQ, [a], {"a": up("a")}, {}, now=NOW)
    assert one == two
    assert one.to_dict()["decided_at"] == "2027-01-15T08:00:00+00:00"


def test_history_learning_moves_runs_away_from_a_slow_site() -> None:
    """Priors favour a; measured runs there are slow; the chooser learns and picks b."""
    from deployments.chooser import FacilityChooser
    from deployments.history import RunHistory, RunTimings

    a, b = site("a", mpix=1000), site("b", mpix=800)
    statuses = {"a": up("a"), "b": up("b")}
    with RunHistory(":memory:") as history:
        chooser = FacilityChooser([a, b], history=history, probes={}, clock=lambda: NOW)
        assert chooser.decide(REQ, statuses=statuses).chosen == "a"
        for i in range(6):  # a actually computes at 100 Mpix/s
            history.record_start(
                f"r{i}",
                dataset=f"d{i}",
                facility="a",
                started_at=NOW + i,
                bytes_in=2 * GB,
                frames=10_000,
                pixels=1_000_000,
            )
            history.record_success(
                f"r{i}", finished_at=NOW + 200 + i, timings=RunTimings(20.0, 2.0, 100.0, 10.0)
            )
        learned = chooser.rates()["a"]
        assert learned.samples == 6
        assert learned.throughput_mpix_s == pytest.approx((3 * 1000 + 6 * 100) / 9)
        decision = chooser.decide(REQ, statuses=statuses)
        assert decision.chosen == "b"
        row_a = next(c for c in decision.candidates if c.facility == "a")
        assert row_a.estimate.compute_s == pytest.approx(10_000 / learned.throughput_mpix_s)


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"bytes_in": -1}, "bytes_in"),
        ({"frames": 0}, "frames"),
        ({"pixels": 2.5}, "pixels"),
        ({"bytes_out": -5}, "bytes_out"),
        ({"memory_gb": -1.0}, "memory_gb"),
        ({"min_kernel_version": "latest"}, "min_kernel_version"),
    ],
)
def test_requests_are_validated(changes: dict, argument: str) -> None:  # type: ignore[type-arg]
    from xpcs_kernel.errors import UsageError

    with pytest.raises(UsageError) as info:
        replace(REQ, **changes)
    assert info.value.argument == argument


def test_endpoint_without_workers_waits_for_a_batch_job() -> None:
    a = site("a", queue=300)
    cold = rank_facilities(REQ, [a], {"a": up("a", idle=0, total=0, outstanding=0)}, {}, now=NOW)
    # queue delay 300 s, nothing pending, minus the 20 s of staging that overlaps
    assert cold.candidates[0].estimate.queue_s == pytest.approx(2 + 300 - 20)


def test_transfer_streams_make_our_staging_runs_delay_a_new_one() -> None:
    caps = {"gpu": True, "memory_gb": 256, "kernel_version": "0.1.0", "transfer_streams": 4}
    a = make_deployment("a", capabilities=caps)
    assert a.capabilities.transfer_streams == 4
    status = {"a": up("a")}
    base = rank_facilities(REQ, [a], status, {}, now=NOW).candidates[0].estimate.stage_in_s
    below = rank_facilities(REQ, [a], status, {}, now=NOW, inflight={"a": 3})
    at = rank_facilities(REQ, [a], status, {}, now=NOW, inflight={"a": 7})
    assert below.candidates[0].estimate.stage_in_s == pytest.approx(base)
    # 7 staging on 4 streams: the new one waits for a stream (4 / 4 of a transfer) first
    assert at.candidates[0].estimate.stage_in_s == pytest.approx(2 * base)
    assert "7 transfers in flight on 4 streams" in at.candidates[0].reasons


# -- deferred submission past a planned window (SelectionPolicy.defer_planned) ----------

DEFER = SelectionPolicy(defer_planned=True)
WINDOW = Outage(NOW - 60, NOW + 600, True, "maintenance")


def test_planned_window_excludes_without_deferral() -> None:
    a = site("a")
    decision = rank_facilities(REQ, [a], {"a": up("a", outages=(WINDOW,))}, {}, now=NOW)
    (row,) = decision.candidates
    assert not row.eligible
    assert row.start_after is None
    assert decision.start_after is None
    assert "planned outage 'maintenance'" in row.reasons[0]


@pytest.mark.parametrize("state", [FacilityState.UP, FacilityState.DOWN])
def test_deferred_candidate_is_held_until_the_window_ends(state: FacilityState) -> None:
    a = site("a", mpix=100)  # 100 s of compute
    status = up("a", idle=0, outstanding=9, outages=(WINDOW,), state=state)
    decision = select_facility(REQ, [a], {"a": status}, {}, now=NOW, policy=DEFER)
    (row,) = decision.ranked
    assert row.start_after == pytest.approx(NOW + 600 + 60)  # window end + outage guard
    assert decision.start_after == row.start_after
    est = row.estimate
    assert est.hold_s == pytest.approx(660)
    # after the window all 4 workers are idle and the 5 queued tasks go first:
    # (5 - 4 + 1) / 4 * 100 s, less the 20 s of staging
    assert est.queue_s == pytest.approx(2 + 2 / 4 * 100 - 20)
    assert est.total_s == pytest.approx(660 + 20 + 32 + 100 + 10.1)
    assert "held client-side until" in row.reasons[0]
    assert decision.to_dict()["start_after"].startswith("2027-01-15T08:")
    assert row.to_dict()["estimate"]["hold_s"] == pytest.approx(660)


def test_window_about_to_start_is_deferred_too() -> None:
    a = site("a", mpix=2000)
    soon = Outage(NOW + 40, NOW + 3600, True, "PM")  # starts before a would finish
    row = rank_facilities(REQ, [a], {"a": up("a", outages=(soon,))}, {}, now=NOW, policy=DEFER)
    assert row.candidates[0].start_after == pytest.approx(NOW + 3600 + 60)


def test_deferral_competes_on_the_estimated_total() -> None:
    a = site("a")
    statuses = {"a": up("a", outages=(WINDOW,)), "b": up("b")}
    slow = select_facility(REQ, [a, site("b", mpix=1)], statuses, {}, now=NOW, policy=DEFER)
    assert slow.chosen == "a"  # 10 000 s of compute on b: waiting for a is faster
    assert slow.start_after == pytest.approx(NOW + 660)
    fast = select_facility(REQ, [a, site("b", mpix=100)], statuses, {}, now=NOW, policy=DEFER)
    assert fast.chosen == "b"
    assert fast.start_after is None
    assert [c.facility for c in fast.ranked] == ["b", "a"]  # a stays as a deferred fallback


def test_runs_already_held_queue_ahead_after_the_window() -> None:
    a = site("a", mpix=100)  # 100 s of compute
    statuses = {"a": up("a", outages=(WINDOW,))}
    alone = rank_facilities(REQ, [a], statuses, {}, now=NOW, policy=DEFER)
    crowd = rank_facilities(REQ, [a], statuses, {}, now=NOW, policy=DEFER, inflight={"a": 8})
    assert alone.candidates[0].estimate.queue_s == pytest.approx(2)
    # 8 held runs on 4 workers: (8 - 4 + 1) / 4 * 100 s, less the 20 s of staging
    assert crowd.candidates[0].estimate.queue_s == pytest.approx(2 + 5 / 4 * 100 - 20)


def test_back_to_back_windows_defer_past_both() -> None:
    a = site("a")
    second = Outage(NOW + 700, NOW + 1000, True, "second")
    statuses = {"a": up("a", outages=(second, WINDOW))}
    row = rank_facilities(REQ, [a], statuses, {}, now=NOW, policy=DEFER).candidates[0]
    assert row.eligible
    assert row.start_after == pytest.approx(NOW + 1060)


@pytest.mark.parametrize(
    "outage",
    [
        Outage(NOW - 60, NOW + 600, False, "crash"),  # unplanned: no promise it ends
        Outage(NOW - 60, None, True, "open-ended"),  # planned but no end
    ],
)
def test_only_planned_windows_with_an_end_are_deferred(outage: Outage) -> None:
    a = site("a")
    with pytest.raises(NoFacilityAvailable, match="overlaps the estimated completion"):
        select_facility(REQ, [a], {"a": up("a", outages=(outage,))}, {}, now=NOW, policy=DEFER)


def test_down_without_a_planned_window_is_never_deferred() -> None:
    a = site("a")
    statuses = {"a": up("a", state=FacilityState.DOWN)}
    with pytest.raises(NoFacilityAvailable, match="down: test"):
        select_facility(REQ, [a], statuses, {}, now=NOW, policy=DEFER)
    past = Outage(NOW - 7200, NOW - 3600, True, "done")  # a window that is over explains nothing
    down = {"a": up("a", state=FacilityState.DOWN, outages=(past,))}
    with pytest.raises(NoFacilityAvailable, match="down: test"):
        select_facility(REQ, [a], down, {}, now=NOW, policy=DEFER)


def test_stage_out_uses_the_learned_stage_out_overhead() -> None:
    a = site("a")
    learned = replace(LearnedRates.from_priors(a), stage_out_overhead_s=3.0)
    row = rank_facilities(REQ, [a], {"a": up("a")}, {"a": learned}, now=NOW).candidates[0]
    assert row.estimate.stage_out_s == pytest.approx(3 + 20 / 200)
