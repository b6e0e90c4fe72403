"""Static checks of the exported XPCS flow definitions (single and batch)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flows.cli.flow import flow_definition_command
from flows.local import check_definition
from flows.xpcs.definition import XPCSBatchFlowClient, XPCSFlowClient, xpcs_flow
from flows.xpcs.local import LocalFacility, build_local_input
from flows.xpcs.validate import validate_flow_input
from tools._states import FLOW_FAILED
from tools.action_urls import COMPUTE_V3_URL, SEARCH_INGEST_URL, TRANSFER_URL

CURRENT_URLS = {TRANSFER_URL, COMPUTE_V3_URL, SEARCH_INGEST_URL}
PUBLISHING = {"PublishMetadata", "PublishTransfer", "PublishIngest", "RecordResult"}


def _strings(template: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(template, Mapping):
        for k, v in template.items():
            yield from _strings(v, str(k))
    elif isinstance(template, list):
        for v in template:
            yield from _strings(v, key)
    elif isinstance(template, str):
        yield key, template


def _input_keys_read(definition: Mapping[str, Any]) -> set[str]:
    keys: set[str] = set()
    for key, value in _strings(definition["States"]):
        if key.endswith(".$") or key in ("Variable", "InputPath"):
            keys.update(re.findall(r"^\$\.input\.([A-Za-z_]\w*)", value))
        elif key.endswith(".="):
            keys.update(re.findall(r"\binput\.([A-Za-z_]\w*)", value))
    return keys


def _successors(spec: Mapping[str, Any], *, catches: bool) -> set[str]:
    out = {spec[k] for k in ("Next", "Default") if k in spec}
    out |= {c["Next"] for c in spec.get("Choices", [])}
    if catches:
        out |= {c["Next"] for c in spec.get("Catch", [])}
    return out


@pytest.fixture(params=[False, True], ids=["single", "batch"])
def spec(request: pytest.FixtureRequest) -> Any:
    return xpcs_flow(batch=request.param)


def test_definition_is_clean(spec: Any) -> None:
    # every Next/Default/Catch target exists, every state is reachable, no ResultPath "$"
    assert check_definition(spec.definition) == []
    assert json.loads(json.dumps(spec.definition)) == spec.definition


def test_action_states_use_current_urls_raise_and_catch(spec: Any) -> None:
    states = spec.definition["States"]
    actions = {n: s for n, s in states.items() if s["Type"] == "Action"}
    assert {"TransferIn", "Correlate", "Plots", "PublishIngest", "TransferBack"} <= set(actions)
    for name, state in actions.items():
        assert state["ActionUrl"] in CURRENT_URLS, name
        assert state.get("ExceptionOnActionFailure", True) is True, name
        assert state["ResultPath"] not in ("$", None), name
        (catch,) = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        failed = states[catch["Next"]]
        assert failed["Type"] == "Pass"
        assert failed["ResultPath"] == "$.Failure"
        assert failed["Parameters"]["state"] == name
        assert failed["Next"] == FLOW_FAILED
    assert states[FLOW_FAILED]["Type"] == "Fail"
    assert states["TransferIn"]["Parameters"]["verify_checksum"] is True
    assert states["Correlate"]["WaitTime"] >= 7 * 24 * 3600  # HPC queues
    assert states["TransferIn"]["WaitTime"] >= 3600


def test_failure_paths_never_publish(spec: Any) -> None:
    states = spec.definition["States"]
    for name, state in states.items():
        for catch in state.get("Catch", []):
            seen, todo = set(), [catch["Next"]]
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                todo.extend(_successors(states[current], catches=True))
            assert seen == {catch["Next"], FLOW_FAILED}, name
            assert not seen & PUBLISHING


def test_publication_only_after_correlate_and_plots(spec: Any) -> None:
    states = spec.definition["States"]
    order, current = [], spec.definition["StartAt"]
    while current and states[current]["Type"] != "Choice":
        order.append(current)
        current = states[current].get("Next")
    assert order == [
        "PlanPaths", "TransferIn", "Correlate", "Plots",
        "PublishMetadata", "PublishTransfer", "PublishIngest",
    ]  # fmt: skip


def test_every_input_read_is_declared_in_the_schema(spec: Any) -> None:
    declared = set(spec.input_schema["properties"]["input"]["properties"])
    read = _input_keys_read(spec.definition)
    assert read, "the scan must find the inputs the flow reads"
    assert read <= declared, read - declared
    assert {"compute_endpoint", "user_endpoint_config", "search_index"} <= read
    required = set(spec.input_schema["properties"]["input"]["required"])
    # what is read unconditionally must be required; optional: the transfer-back pair
    assert read - required <= {"transfer_back", "return_to"}


def test_compute_states_pass_function_ids_declared_for_registration(spec: Any) -> None:
    declared = set(spec.input_schema["properties"]["input"]["properties"])
    assert set(spec.compute_functions) <= declared
    text = json.dumps(spec.definition)
    batch = "batch" in spec.keywords
    for key, func in spec.compute_functions.items():
        assert key == f"{func.__name__}_function_id"  # gladier's naming
    assert "$.input.xpcs_publish_metadata_function_id" in text
    for key in ("xpcs_correlate_function_id", "xpcs_plots_function_id"):
        # the batch flow reads these tasks from the derived plan instead
        assert (f"$.input.{key}" in text) is not batch
    for state in spec.definition["States"].values():
        if state.get("ActionUrl") == COMPUTE_V3_URL:
            assert state["Parameters"]["endpoint_id.$"] == "$.input.compute_endpoint"
            assert state["Parameters"]["user_endpoint_config.$"] == "$.input.user_endpoint_config"


def test_flow_metadata(spec: Any) -> None:
    assert spec.title
    assert spec.subtitle
    assert len(spec.description) > 100
    assert "XPCS" in spec.keywords
    kwargs = spec.deploy_kwargs()
    assert kwargs["definition"] == spec.definition
    assert kwargs["input_schema"] == spec.input_schema
    assert kwargs["keywords"] == list(spec.keywords)


@pytest.mark.parametrize(
    ("client_cls", "batch"), [(XPCSFlowClient, False), (XPCSBatchFlowClient, True)]
)
def test_gladier_client_deploys_the_same_definition(client_cls: Any, batch: bool) -> None:
    client = client_cls(auto_registration=False)
    assert client.get_flow_definition() == xpcs_flow(batch=batch).definition
    assert client.get_flow_schema() == xpcs_flow(batch=batch).input_schema
    tools = {type(t).__name__ for t in client.tools}
    assert {"Correlate", "Plots", "Publish", "TransferBack"} <= {
        n.removeprefix("Batch") for n in tools
    }


@pytest.mark.parametrize("batch", [False, True])
def test_flow_definition_command_prints_what_is_deployed(batch: bool) -> None:
    args = ["--json", "--batch"] if batch else ["--json"]
    result = CliRunner().invoke(flow_definition_command, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    spec = xpcs_flow(batch=batch)
    assert printed == {"definition": spec.definition, "input_schema": spec.input_schema}
    default = CliRunner().invoke(flow_definition_command, ["--batch"] if batch else [])
    assert default.exit_code == 0, default.output
    assert json.loads(default.output) == printed  # the help's promise: as deployed
    human = CliRunner().invoke(flow_definition_command, ["--summary"])
    assert "Correlate" in human.output
    assert COMPUTE_V3_URL in human.output


def test_gladier_accepts_the_input_we_build(tmp_path: Path) -> None:
    facility = LocalFacility.in_directory(tmp_path / "work")
    ids = {key: f"fn-{i}" for i, key in enumerate(xpcs_flow().compute_functions)}
    flow_input = build_local_input(
        tmp_path / "A001.h5",
        tmp_path / "qmap.h5",
        facility=facility,
        function_ids=ids,
        options={"mode": "both"},
    )
    client = XPCSFlowClient(auto_registration=False)
    for tool in client.tools:
        client.check_input(tool, flow_input)  # gladier's own required-input check
    assert validate_flow_input(flow_input, allowed_roots=facility.allowed_roots) == flow_input
    # one endpoint and catalog index per machine: another work directory shares them
    other = LocalFacility.in_directory(tmp_path / "elsewhere")
    assert other.search_index == facility.search_index
    assert other.staging_collection != facility.staging_collection
    assert facility.collection_path(facility.beamline_collection, tmp_path / "A001.h5") == str(
        (tmp_path / "A001.h5").resolve()
    )
