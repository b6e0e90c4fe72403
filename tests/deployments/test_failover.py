"""Failover policy: classification, next facility, limits, one publication, history record."""

from __future__ import annotations

import json

import globus_sdk
import pytest

from deployments.failover import (
    FailoverPolicy,
    FailureKind,
    classify_failure,
    failover_request,
    plan_failover,
    publication_key,
    record_failure,
)
from deployments.history import RunHistory
from deployments.select import JobRequest, select_facility
from deployments.state import FacilityState, FacilityStatus
from tests.deployments.helpers import make_deployment
from xpcs_kernel.errors import ConfigurationError, FrameFormatError, QMapError

NOW = 1_800_000_000.0
REQ = JobRequest(dataset="A001", bytes_in=10**9, frames=1000, pixels=10**6)
SITES = [
    make_deployment(n, priors={"throughput_mpix_s": t})
    for n, t in (("a", 3000), ("b", 2000), ("c", 1000))
]
STATUS = {d.name: FacilityStatus(d.name, "x", FacilityState.UP, NOW) for d in SITES}
DECISION = select_facility(REQ, SITES, STATUS, {}, now=NOW)


@pytest.mark.parametrize(
    "report",
    [
        {"code": "ActionUnableToRun", "description": "endpoint is not reachable"},
        {"Error": "ActionTimeout", "Cause": "no result within 300 s"},
        {"code": "ActionFailedException", "details": {"nice_status": "GC_NOT_CONNECTED"}},
        {"state_name": "TransferIn", "details": {"fatal_error": {"code": "CONNECTION_FAILED"}}},
        {"status": "FAILED", "details": {"nice_status": "ENDPOINT_ERROR"}},
        {"code": "ActionFailedException", "details": {"exception": "ManagerLost: node died"}},
        {"details": {"endpoint_status": {"status": "offline"}}},
        "ActionTimeout",
        "QUOTA_EXCEEDED",
    ],
)
def test_infrastructure_failures(report: object) -> None:
    got = classify_failure(report)  # type: ignore[arg-type]
    assert got.kind is FailureKind.INFRASTRUCTURE
    assert got.retryable


@pytest.mark.parametrize(
    "report",
    [
        {
            "code": "ActionFailedException",
            "details": {
                "exception": "Traceback ...\nxpcs_kernel.errors.FrameFormatError: truncated"
            },
        },
        {
            "Error": "ActionFailedException",
            "Cause": "QMapError: q-map shape (512, 512) does not fit frames (1024, 1024)",
        },
        {"code": "ActionUnableToRun", "details": {"exception_type": "InputDataError"}},
        {"details": {"nice_status": "FILE_NOT_FOUND"}},
        "FitError",
    ],
)
def test_data_failures_win_over_wrappers(report: object) -> None:
    got = classify_failure(report)  # type: ignore[arg-type]
    assert got.kind is FailureKind.DATA
    assert not got.retryable


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (FrameFormatError("bad frame", path="/x.imm"), FailureKind.DATA),
        (QMapError("bad qmap"), FailureKind.DATA),
        (FileNotFoundError("/raw/a.h5"), FailureKind.DATA),
        (TimeoutError("slow"), FailureKind.INFRASTRUCTURE),
        (ConnectionResetError("reset"), FailureKind.INFRASTRUCTURE),
        (ConfigurationError("bad descriptor"), FailureKind.UNKNOWN),
        (RuntimeError("who knows"), FailureKind.UNKNOWN),
    ],
)
def test_exceptions(exc: BaseException, kind: FailureKind) -> None:
    assert classify_failure(exc).kind is kind


def test_unknown_reports_are_not_retried() -> None:
    got = classify_failure({"code": "ActionFailedException", "description": "it broke"})
    assert got.kind is FailureKind.UNKNOWN
    plan = plan_failover(DECISION, got, tried=["a"], attempt=1)
    assert not plan.relaunch
    assert "unclassified" in plan.reason


def test_infrastructure_failure_relaunches_on_the_next_best() -> None:
    failure = classify_failure({"code": "ActionUnableToRun"})
    plan = plan_failover(DECISION, failure, tried=["a"], attempt=1)
    assert plan.relaunch
    assert (plan.facility, plan.next_attempt) == ("b", 2)
    assert "ActionUnableToRun" in plan.reason
    second = plan_failover(DECISION, failure, tried=["a", "b"], attempt=2)
    assert (second.relaunch, second.facility, second.next_attempt) == (True, "c", 3)


def test_retry_limit() -> None:
    failure = classify_failure("ActionTimeout")
    plan = plan_failover(DECISION, failure, tried=["a", "b", "c"], attempt=3)
    assert not plan.relaunch
    assert "retry limit reached (3 attempts)" in plan.reason
    tight = plan_failover(
        DECISION, failure, tried=["a"], attempt=1, policy=FailoverPolicy(max_attempts=1)
    )
    assert not tight.relaunch


def test_no_other_facility() -> None:
    plan = plan_failover(
        DECISION,
        classify_failure("ActionTimeout"),
        tried=["a", "b", "c"],
        attempt=1,
        policy=FailoverPolicy(max_attempts=5),
    )
    assert not plan.relaunch
    assert plan.reason == "no other eligible facility in the decision"


def test_data_error_is_not_retried_elsewhere() -> None:
    plan = plan_failover(DECISION, classify_failure(QMapError("bad")), tried=["a"], attempt=1)
    assert not plan.relaunch
    assert plan.facility is None
    assert "not retried elsewhere" in plan.reason


def test_nothing_is_relaunched_once_published() -> None:
    plan = plan_failover(
        DECISION, classify_failure("ActionTimeout"), tried=["a"], attempt=1, published_by="run-7"
    )
    assert not plan.relaunch
    assert "already published by run run-7" in plan.reason


def test_failover_request_excludes_tried_facilities() -> None:
    again = failover_request(REQ, ["a"])
    decision = select_facility(again, SITES, STATUS, {}, now=NOW)
    assert decision.chosen == "b"
    row = next(c for c in decision.candidates if c.facility == "a")
    assert "already tried for this dataset" in row.reasons


def test_publication_key_is_stable_per_dataset_and_options() -> None:
    assert publication_key("A001") == publication_key("A001", options={})
    assert publication_key("A001", options={"mode": "both"}) != publication_key("A001")
    assert publication_key("A001") != publication_key("A002")
    assert len(publication_key("A001")) == 64


def test_failover_sequence_recorded_and_published_once() -> None:
    """Two infrastructure failures, then success: one publication, final facility c."""
    key = publication_key("A001")
    tried: list[str] = []
    facility: str | None = DECISION.chosen
    attempt = 1
    with RunHistory(":memory:") as h:
        while facility is not None:
            run_id = f"A001-{attempt}"
            h.record_start(
                run_id,
                dataset="A001",
                facility=facility,
                started_at=NOW + attempt,
                attempt=attempt,
                decision=DECISION.to_dict(),
                failover_from=f"A001-{attempt - 1}" if attempt > 1 else None,
            )
            tried.append(facility)
            if facility in ("a", "b"):  # injected infrastructure faults
                failure = classify_failure({"code": "ActionUnableToRun"})
                published = h.publication(key)
                plan = plan_failover(
                    DECISION,
                    failure,
                    tried=tried,
                    attempt=attempt,
                    published_by=published[0] if published else None,
                )
                record_failure(h, run_id, plan, at=NOW + attempt + 0.5)
                facility, attempt = plan.facility, plan.next_attempt or attempt
                continue
            assert h.claim_publication(key, run_id=run_id, facility=facility, at=NOW + 10)
            facility = None
        runs = h.runs(dataset="A001")
        assert [(r.facility, r.outcome, r.failure_kind) for r in runs] == [
            ("a", "failed", "infrastructure"),
            ("b", "failed", "infrastructure"),
            ("c", "running", None),
        ]
        assert json.loads(runs[0].failure_detail or "{}")["facility"] == "b"
        assert h.publication(key) == ("A001-3", "c")
        assert not h.claim_publication(key, run_id="A001-4", facility="a", at=NOW + 20)


def test_globus_api_errors() -> None:
    import requests

    def api_error(status: int) -> globus_sdk.GlobusAPIError:
        resp = requests.Response()
        resp.status_code = status
        resp._content = b'{"code": "X", "message": "m"}'
        resp.headers["Content-Type"] = "application/json"
        resp.request = requests.Request("GET", "https://flows.example/x").prepare()
        return globus_sdk.GlobusAPIError(resp)

    assert classify_failure(api_error(502)).kind is FailureKind.INFRASTRUCTURE
    assert classify_failure(api_error(400)).kind is FailureKind.UNKNOWN
