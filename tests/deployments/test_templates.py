"""Globus Compute endpoint templates render to valid YAML with sample values."""

from __future__ import annotations

import pytest
import yaml

from deployments.templates import (
    endpoint_template_names,
    endpoint_template_text,
    render_endpoint_template,
    required_values,
    user_config_schema,
)
from tests.deployments.helpers import make_deployment
from xpcs_kernel.errors import ConfigurationError

SAMPLE = {"account": "XPCS-proj", "queue": "debug", "walltime": "00:20:00", "nodes": 2}
PROVIDERS = {
    "polaris": "PBSProProvider",
    "aurora": "PBSProProvider",
    "perlmutter": "SlurmProvider",
    "frontier": "SlurmProvider",
}


def test_templates_shipped() -> None:
    assert endpoint_template_names() == ["aurora", "frontier", "perlmutter", "polaris"]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_render_gives_valid_yaml_with_the_run_values(name: str) -> None:
    config = yaml.safe_load(render_endpoint_template(name, SAMPLE))
    engine = config["engine"]
    assert engine["type"] == "GlobusComputeEngine"
    provider = engine["provider"]
    assert provider["type"] == PROVIDERS[name]
    assert provider["account"] == "XPCS-proj"
    assert provider["walltime"] == "00:20:00"
    assert provider["nodes_per_block"] == 2
    queue_key = {"perlmutter": "qos", "frontier": "partition"}.get(name, "queue")
    assert provider[queue_key] == "debug"
    assert provider["init_blocks"] == 0


def test_polaris_specifics() -> None:
    provider = yaml.safe_load(render_endpoint_template("polaris", SAMPLE))["engine"]["provider"]
    assert provider["scheduler_options"] == "#PBS -l filesystems=home:eagle"
    assert provider["launcher"]["type"] == "MpiExecLauncher"


def test_perlmutter_specifics() -> None:
    provider = yaml.safe_load(render_endpoint_template("perlmutter", SAMPLE))["engine"]["provider"]
    assert provider["constraint"] == "gpu"
    assert provider["launcher"]["type"] == "SrunLauncher"


def test_values_are_quoted_not_injected() -> None:
    hostile = {**SAMPLE, "account": 'x"\ninjected: true'}
    config = yaml.safe_load(render_endpoint_template("polaris", hostile))
    assert "injected" not in config
    assert config["engine"]["provider"]["account"] == 'x"\ninjected: true'


def test_missing_value_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="account"):
        render_endpoint_template("polaris", {"queue": "debug"})


def test_defaults_fill_everything_but_the_account() -> None:
    provider = yaml.safe_load(render_endpoint_template("aurora", {"account": "p"}))["engine"][
        "provider"
    ]
    assert (provider["queue"], provider["walltime"], provider["nodes_per_block"]) == (
        "debug",
        "00:30:00",
        1,
    )


def test_descriptor_values_render() -> None:
    d = make_deployment("site", compute={"account": "proj", "walltime_minutes": 90, "nodes": 3})
    values = d.compute.user_endpoint_config()
    provider = yaml.safe_load(render_endpoint_template("perlmutter", values))["engine"]["provider"]
    assert (provider["walltime"], provider["nodes_per_block"], provider["account"]) == (
        "01:30:00",
        3,
        "proj",
    )


def test_schema_limits_the_run_values() -> None:
    schema = user_config_schema()
    assert set(schema["properties"]) == {"account", "queue", "walltime", "nodes"}
    assert schema["additionalProperties"] is False


def test_unknown_template() -> None:
    with pytest.raises(ConfigurationError, match="no endpoint template"):
        endpoint_template_text("theta")


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_only_the_account_has_no_default(name: str) -> None:
    from deployments.templates import required_values

    assert required_values(name) == {"account"}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_worker_init_compiles_the_kernels_once_into_a_shared_cache(name: str) -> None:
    provider = yaml.safe_load(render_endpoint_template(name, SAMPLE))["engine"]["provider"]
    site_setup, sep, kernels = provider["worker_init"].partition("; export NUMBA_CACHE_DIR=")
    assert sep, provider["worker_init"]
    assert "xpcs-flows" in site_setup  # the site's environment comes first
    assert kernels == "$HOME/.cache/xpcs-flows/numba; python -m xpcs_kernel warmup"
    assert "numba_cache_dir" not in required_values(name)


def test_the_kernel_cache_directory_is_a_site_value() -> None:
    values = {**SAMPLE, "numba_cache_dir": "/lus/eagle/projects/XPCS/numba-cache"}
    provider = yaml.safe_load(render_endpoint_template("polaris", values))["engine"]["provider"]
    assert (
        "export NUMBA_CACHE_DIR=/lus/eagle/projects/XPCS/numba-cache;" in provider["worker_init"]
    )
