"""``xpcs-flows facilities`` and ``xpcs-flows simulate`` (run through click)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli.facility import facilities_command, simulate_command


def test_facilities_json_out_of_the_box(isolated_home: Path) -> None:
    result = CliRunner().invoke(facilities_command, ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["decision"]["chosen"] == "local"
    assert report["config_dir"] == str(isolated_home / ".config/xpcs-flows/deployments")
    (row,) = report["decision"]["candidates"]
    assert row["facility"] == "local"
    assert row["rank"] == 1
    assert "data local" in row["reasons"]
    assert report["statuses"]["local"]["state"] == "up"
    assert sorted(report["unconfigured"]) == ["aurora", "frontier", "perlmutter", "polaris"]
    polaris = report["unconfigured"]["polaris"]
    assert polaris["type"] == "ConfigurationError"
    assert polaris["field"] == "compute.endpoint_id"
    assert polaris["source"] == "deployments/polaris.toml"
    assert "9 placeholder(s) not filled in" in polaris["message"]
    # it opened (created) the user's history
    assert (isolated_home / ".local/share/xpcs-flows/state.db").exists()


def test_facilities_text_and_nothing_eligible(isolated_home: Path) -> None:
    result = CliRunner().invoke(facilities_command, ["--no-local", "--no-history"])
    assert result.exit_code == 0, result.output
    assert "excluded: local runs not allowed" in result.output
    assert "chosen: none (every deployment is excluded)" in result.output
    assert "not configured" in result.output
    assert not (isolated_home / ".local/share/xpcs-flows").exists()


def test_facilities_gpu_request_excludes_local() -> None:
    result = CliRunner().invoke(facilities_command, ["--json", "--gpu", "--no-history"])
    report = json.loads(result.output)
    assert report["decision"]["chosen"] is None
    assert "no GPU" in report["decision"]["candidates"][0]["reasons"]


def test_simulate_json_one_policy() -> None:
    result = CliRunner().invoke(
        simulate_command, ["--scenario", "outage", "--policy", "ours", "--seed", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out["policies"]) == ["ours"]
    assert out["seed"] == 1
    assert out["scenario"]["name"] == "outage"
    ours = out["policies"]["ours"]
    assert (ours["started_in_outage"], ours["lost"]) == (0, 0)
    assert "ours_vs_shortest_backlog_median" not in out


def test_simulate_text_all_policies() -> None:
    result = CliRunner().invoke(simulate_command, ["--scenario", "paper"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "scenario paper, seed 0, 20 batches of 16 jobs, "
        "nodes per site theta 64, summit 64, cori 64"
    )
    assert [line.split()[0] for line in lines[2:6]] == [
        "round-robin",
        "shortest-backlog",
        "ours",
        "oracle",
    ]
    assert lines[-2].startswith("ours / shortest-backlog median latency: 0.")
    assert "(completed jobs only)" in lines[-2]
    assert lines[-1].startswith("oracle / shortest-backlog median latency: 0.")
    assert lines[-1].endswith("[clairvoyant bound, not a policy]")


def test_simulate_nodes_option() -> None:
    result = CliRunner().invoke(
        simulate_command, ["--scenario", "outage", "--nodes", "32", "--policy", "all", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [s["nodes"] for s in out["scenario"]["sites"]] == [32, 32, 32]
    assert out["ours_vs_shortest_backlog_median_completed"] > 0
    bad = CliRunner().invoke(simulate_command, ["--nodes", "0"])
    assert bad.exit_code == 2


def test_simulate_rejects_unknown_policy() -> None:
    result = CliRunner().invoke(simulate_command, ["--policy", "random"])
    assert result.exit_code == 2
    assert "Invalid value for '--policy'" in result.output


def test_facilities_backend_torch_uses_gpu_rates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployments import chooser
    from tests.deployments.helpers import write_overrides

    monkeypatch.setattr(chooser, "build_probes", lambda *args, **kwargs: [])  # status unknown
    folder = write_overrides(tmp_path / "deployments", ("polaris",))
    compute = {}
    for backend in ("numba", "torch"):
        args = ["--json", "--no-history", "--config-dir", str(folder), "--backend", backend]
        result = CliRunner().invoke(facilities_command, args)
        assert result.exit_code == 0, result.output
        rows = json.loads(result.output)["decision"]["candidates"]
        compute[backend] = {r["facility"]: r["estimate"]["compute_s"] for r in rows}
    # 10,000 x 1 Mpx: Polaris 2,000 Mpix/s on CPU, 20,000 on its A100s; local has no GPU
    assert compute["numba"]["polaris"] == 5.0
    assert compute["torch"]["polaris"] == 0.5
    assert compute["torch"]["local"] == compute["numba"]["local"]
