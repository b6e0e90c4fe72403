"""The clairvoyant ``oracle`` of the simulation: a reference bound, never a real policy."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deployments.simulate.model import SCENARIOS, with_nodes
from deployments.simulate.run import POLICIES, run_simulation, simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def outage() -> dict[str, Any]:
    return simulate("outage", seed=0)


def test_oracle_is_a_policy_choice_and_in_all() -> None:
    assert POLICIES[-1] == "oracle"
    out = simulate("paper", ["oracle"], seed=0)
    assert list(out["policies"]) == ["oracle"]
    # without shortest backlog there is nothing to compare with
    assert "oracle_vs_shortest_backlog_median" not in out


def test_oracle_is_deterministic() -> None:
    a = simulate("outage", ["oracle"], seed=2)
    b = simulate("outage", ["oracle"], seed=2)
    assert a == b
    c = simulate("outage", ["oracle"], seed=3)
    assert (
        a["policies"]["oracle"]["median_latency_s"] != c["policies"]["oracle"]["median_latency_s"]
    )


def test_outage_figures_seed_0(outage: dict[str, Any]) -> None:
    """The numbers in deployments/README.md (64 nodes per site, seed 0)."""
    oracle = outage["policies"]["oracle"]
    ours = outage["policies"]["ours"]
    sb = outage["policies"]["shortest-backlog"]
    assert (oracle["completed"], oracle["lost"], oracle["started_in_outage"]) == (320, 0, 0)
    assert oracle["publications"] == 320
    assert oracle["failovers"] == 0  # it never sends a job where it would be lost
    assert oracle["median_latency_s"] == pytest.approx(204.1, abs=1.0)
    assert oracle["p95_latency_s"] == pytest.approx(333.0, abs=2.0)
    assert ours["median_latency_s"] == pytest.approx(276.4, abs=1.0)
    assert sb["median_latency_s"] == pytest.approx(186.7, abs=1.0)
    # the bound beats ours by about 70 s ...
    assert oracle["median_latency_s"] <= ours["median_latency_s"] - 60
    assert oracle["p95_latency_s"] < ours["p95_latency_s"]
    # ... but even knowing the outage in advance it does not reach 0.8 x shortest backlog
    assert outage["oracle_vs_shortest_backlog_median"] == pytest.approx(1.093, abs=0.01)
    assert outage["oracle_vs_shortest_backlog_median"] == round(
        oracle["median_latency_s"] / sb["median_latency_s"], 3
    )
    assert outage["oracle_vs_shortest_backlog_median_completed"] == pytest.approx(1.266, abs=0.01)
    # it uses cori only for the jobs that finish before cori dies (at 120 s)
    assert oracle["per_site"]["cori"] == pytest.approx(59, abs=3)


@pytest.mark.parametrize("seed", [1, 2])
def test_oracle_beats_ours_in_the_outage_at_other_seeds(seed: int) -> None:
    out = simulate("outage", ["shortest-backlog", "ours", "oracle"], seed=seed)
    oracle, ours = out["policies"]["oracle"], out["policies"]["ours"]
    assert oracle["median_latency_s"] <= ours["median_latency_s"] - 60
    assert 1.0 < out["oracle_vs_shortest_backlog_median"] < 1.2


def test_paper_oracle_matches_ours_at_64_nodes() -> None:
    """Without outages, at 64 nodes, greedy earliest completion = all to cori, as ours does."""
    out = simulate("paper", ["shortest-backlog", "ours", "oracle"], seed=0)
    oracle, ours = out["policies"]["oracle"], out["policies"]["ours"]
    assert oracle["per_site"] == ours["per_site"] == {"theta": 0, "summit": 0, "cori": 320}
    assert oracle["median_latency_s"] == pytest.approx(ours["median_latency_s"], abs=0.5)
    assert out["oracle_vs_shortest_backlog_median"] == pytest.approx(0.713, abs=0.01)


@pytest.mark.parametrize("name", ["paper", "outage"])
@pytest.mark.parametrize("nodes", [24, 32, 64, 96])
def test_oracle_never_starts_in_an_outage_nor_loses(name: str, nodes: int) -> None:
    for seed in (0, 1):
        r = run_simulation(with_nodes(SCENARIOS[name], nodes), "oracle", seed=seed)
        assert (r.started_in_outage, r.lost, r.completed, r.publications) == (0, 0, 320, 320)


def test_oracle_holds_jobs_for_the_window_end_when_that_is_faster() -> None:
    """At 24 nodes summit's queue outlasts theta's window: the oracle holds jobs for theta."""
    r = run_simulation(with_nodes(SCENARIOS["outage"], 24), "oracle", seed=0)
    assert r.per_site["theta"] > 50
    assert (r.started_in_outage, r.lost) == (0, 0)


def test_oracle_uses_a_site_again_once_it_is_back() -> None:
    sites = tuple(
        replace(s, down_for=200.0) if s.down_at is not None else s
        for s in SCENARIOS["outage"].sites
    )
    sc = replace(SCENARIOS["outage"], sites=sites)
    r = run_simulation(sc, "oracle", seed=0)
    assert (r.started_in_outage, r.lost) == (0, 0)
    assert r.per_site["cori"] > 100  # held for cori's return (at 320 s) when that is faster


@pytest.mark.parametrize("name", ["paper", "outage"])
def test_oracle_with_limited_transfer_streams(name: str) -> None:
    sc = replace(SCENARIOS[name], transfer_streams=8)
    oracle = run_simulation(sc, "oracle", seed=0)
    ours = run_simulation(sc, "ours", seed=0)
    assert (oracle.started_in_outage, oracle.lost, oracle.completed) == (0, 0, 320)
    assert (oracle.median_latency_s or 0) < (ours.median_latency_s or 0)


def test_the_real_selector_never_uses_the_oracle() -> None:
    """Only the simulation's event loop imports the oracle."""
    importers = []
    for package in ("deployments", "flows"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                if any("simulate.oracle" in n for n in names):
                    importers.append(path.relative_to(ROOT).as_posix())
    assert importers == ["deployments/simulate/engine.py"]
