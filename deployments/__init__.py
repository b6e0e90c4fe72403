"""Facility deployments: one descriptor per facility, live status probes and
the per-run choice of facility (with failover).

This package imports nothing of ours but the shared error hierarchy in
:mod:`xpcs_kernel.errors`.

Main entry points
-----------------
:func:`load_deployments`
    The packaged descriptors merged with the user's (validated).
:class:`FacilityChooser`
    Descriptors + live status (probes asked concurrently) + run history ->
    a ranked :class:`Decision` with the reason for each choice or exclusion.
:func:`select_facility` / :func:`rank_facilities`
    The pure selector behind it.
:func:`classify_failure` / :func:`plan_failover`
    The failover policy; :meth:`RunHistory.claim_publication` keeps one
    publication per dataset.
:func:`simulate`
    The cross-facility simulation against the Balsam baselines.
"""

from __future__ import annotations

from deployments.chooser import FacilityChooser
from deployments.errors import NoFacilityAvailable, StatusUnavailable
from deployments.failover import (
    FailoverPlan,
    FailoverPolicy,
    FailureClass,
    FailureKind,
    classify_failure,
    failover_request,
    plan_failover,
    publication_key,
    record_failure,
)
from deployments.gpu import GpuSpec, run_kind
from deployments.history import LearnedRates, RunHistory, RunRecord, RunTimings
from deployments.model import Deployment
from deployments.registry import DeploymentSet, load_deployments, user_config_dir
from deployments.select import (
    Candidate,
    Decision,
    Estimate,
    JobRequest,
    SelectionPolicy,
    rank_facilities,
    select_facility,
)
from deployments.simulate.run import simulate
from deployments.state import FacilityState, FacilityStatus, Outage
from deployments.status import StatusProbe
from deployments.templates import render_endpoint_template

__all__ = [
    "Candidate",
    "Decision",
    "Deployment",
    "DeploymentSet",
    "Estimate",
    "FacilityChooser",
    "FacilityState",
    "FacilityStatus",
    "FailoverPlan",
    "FailoverPolicy",
    "FailureClass",
    "FailureKind",
    "GpuSpec",
    "JobRequest",
    "LearnedRates",
    "NoFacilityAvailable",
    "Outage",
    "RunHistory",
    "RunRecord",
    "RunTimings",
    "SelectionPolicy",
    "StatusProbe",
    "StatusUnavailable",
    "classify_failure",
    "failover_request",
    "load_deployments",
    "plan_failover",
    "publication_key",
    "rank_facilities",
    "record_failure",
    "render_endpoint_template",
    "run_kind",
    "select_facility",
    "simulate",
    "user_config_dir",
]
