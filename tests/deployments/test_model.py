"""Descriptors: packaged files, validation errors naming file and field, user overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployments.model import parse_deployment
from deployments.registry import load_deployments, packaged_documents, user_config_dir
from tests.deployments.helpers import (
    EP,
    GROUP,
    STAGE,
    make_deployment,
    remote_data,
    write_overrides,
)
from xpcs_kernel.errors import ConfigurationError


def test_packaged_descriptors_are_the_five_deployments() -> None:
    assert sorted(packaged_documents()) == ["aurora", "frontier", "local", "perlmutter", "polaris"]


def test_local_is_valid_out_of_the_box(tmp_path: Path) -> None:
    found = load_deployments(tmp_path / "none")
    local = found.get("local")
    assert local.engine == "local"
    assert local.compute.endpoint_id is None
    assert local.status_sources == ()
    assert local.allows_path("/anything/at/all")
    assert list(found.deployments) == ["local"]


@pytest.mark.parametrize("name", ["polaris", "aurora", "perlmutter", "frontier"])
def test_remote_descriptors_list_every_placeholder(tmp_path: Path, name: str) -> None:
    found = load_deployments(tmp_path)
    with pytest.raises(ConfigurationError) as info:
        found.get(name)
    err = info.value
    assert err.source == f"deployments/{name}.toml"
    assert err.field == "compute.endpoint_id"
    text = str(err)
    assert "placeholder(s) not filled in" in text
    for field in (
        "compute.endpoint_id",
        "compute.account",
        "collections.source.id",
        "collections.staging.id",
        "search.index",
        "monitors.run_monitors[0]",
    ):
        assert field in text
    assert "Globus Compute endpoint" in text  # says what to fill in


def test_user_override_fills_placeholders_and_keeps_the_rest(tmp_path: Path) -> None:
    folder = write_overrides(tmp_path / "deployments", ("polaris", "perlmutter"))
    found = load_deployments(folder)
    polaris = found.get("polaris")
    assert polaris.compute.endpoint_id == "11111111-2222-4333-8444-000000000000"
    assert polaris.compute.queue == "debug"  # from the packaged file
    assert polaris.staging is not None
    assert polaris.staging.id == STAGE
    assert polaris.run_monitors == (GROUP,)
    assert [s.kind for s in polaris.status_sources] == ["globus-compute", "iri"]
    assert polaris.origin == f"deployments/polaris.toml + {folder / 'polaris.toml'}"
    assert found.get("perlmutter").status_sources[1].base_url.endswith("/api/v1.2")
    assert set(found.problems) == {"aurora", "frontier"}


def test_config_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPCS_FLOWS_CONFIG", str(tmp_path / "cfg"))
    assert user_config_dir() == tmp_path / "cfg" / "deployments"
    write_overrides(tmp_path / "cfg" / "deployments", ("aurora",))
    assert load_deployments().get("aurora").facility == "ALCF"


def test_default_config_dir_is_under_home(isolated_home: Path) -> None:
    assert user_config_dir() == isolated_home / ".config" / "xpcs-flows" / "deployments"


def test_new_user_descriptor_and_invalid_toml(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "mybox.toml").write_text(
        """
facility = "beamline"
engine = "local"
[compute]
[paths]
allowed_roots = ["/data"]
[capabilities]
gpu = true
memory_gb = 64
kernel_version = "0.1.0"
[priors]
transfer_rate_mb_s = 1000
throughput_mpix_s = 500
"""
    )
    (folder / "broken.toml").write_text("facility = [unclosed\n")
    found = load_deployments(folder)
    assert found.get("mybox").capabilities.gpu
    assert not found.get("mybox").allows_path("/home/user")
    err = found.problems["broken"]
    assert err.source == str(folder / "broken.toml")
    assert "not valid TOML" in str(err)


def test_unknown_deployment_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="one of aurora, frontier, local"):
        load_deployments(tmp_path).get("theta")


def test_valid_remote_descriptor_fields() -> None:
    d = make_deployment("site")
    assert d.compute.endpoint_id == EP
    assert d.compute.user_endpoint_config() == {
        "walltime": "00:30:00",
        "nodes": 1,
        "queue": "debug",
    }
    assert d.allows_path("/data/run1/a.h5")
    assert d.allows_path("/data")
    assert not d.allows_path("/database/x")
    assert not d.allows_path("/data/../etc/passwd")
    assert d.to_dict()["capabilities"]["slots"] == 4
    assert d.capabilities.reads_beamline_storage is False  # absent: false


def test_only_the_local_deployment_reads_the_beamline_storage() -> None:
    import tomllib

    from deployments import registry

    packaged = Path(registry.__file__).parent
    found = {
        p.stem: tomllib.loads(p.read_text())["capabilities"]["reads_beamline_storage"]
        for p in packaged.glob("*.toml")
    }
    assert found == {
        "local": True,
        "aurora": False,
        "frontier": False,
        "perlmutter": False,
        "polaris": False,
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"compute": {"endpoint_id": "not-a-uuid"}}, "compute.endpoint_id", "not a UUID"),
        ({"compute": {"nodes": 0}}, "compute.nodes", "out of range"),
        ({"compute": {"nodes": "2"}}, "compute.nodes", "must be an integer"),
        ({"compute": {"walltime": "1h"}}, "compute.walltime", "unknown field"),
        ({"capabilities": {"gpu": "yes"}}, "capabilities.gpu", "must be true or false"),
        (
            {"capabilities": {"reads_beamline_storage": "yes"}},
            "capabilities.reads_beamline_storage",
            "must be true or false",
        ),
        (
            {"capabilities": {"kernel_version": "new"}},
            "capabilities.kernel_version",
            "not a version",
        ),
        ({"priors": {"transfer_rate_mb_s": 0}}, "priors.transfer_rate_mb_s", "out of range"),
        ({"paths": {"allowed_roots": ["data"]}}, "paths.allowed_roots", "absolute"),
        ({"engine": "cloud"}, "engine", "unknown engine"),
        ({"status": [{"kind": "iri", "base_url": "https://x"}]}, "status[0].resource", "needs"),
        ({"status": [{"kind": "ping", "base_url": "https://x"}]}, "status[0].kind", "unknown"),
        (
            {"status": [{"kind": "nersc", "base_url": "ftp://x", "resource": "p"}]},
            "status[0].base_url",
            "not an HTTP",
        ),
        ({"status": []}, "status", "needs a globus-compute status source"),
        ({"monitors": {"run_monitors": ["alice"]}}, "monitors.run_monitors", "principal"),
        ({"collections": {"staging": {"id": STAGE}}}, "collections.staging.path", "missing"),
        ({"search": "some-index"}, "search", "must be a table"),
    ],
)
def test_invalid_fields_name_file_and_field(
    changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_deployment("site", **changes)
    assert info.value.source == "site.toml"
    assert info.value.field == field
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_required_table() -> None:
    data = remote_data()
    del data["priors"]
    with pytest.raises(ConfigurationError) as info:
        parse_deployment("site", data, source="s.toml")
    assert info.value.field == "priors"


def test_bad_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="lower-case"):
        parse_deployment("My Site", remote_data(), source="x.toml")
