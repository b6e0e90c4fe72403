"""Flow input validation: the deployed schema and ours agree; ours adds path rules."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from flows.xpcs.batch import plan_batch, with_plan
from flows.xpcs.schema import correlation_options_schema, input_schema
from flows.xpcs.validate import FlowInputError, validate_flow_input
from xpcs_kernel.options import CorrelationOptions

BEAMLINE, FACILITY, PUB = "coll-beamline", "coll-facility", "coll-publication"


def good_input() -> dict[str, Any]:
    return {
        "input": {
            "raw": {"id": BEAMLINE, "path": "/data/A001/A001.h5"},
            "qmap_path": "/data/qmaps/qmap_A.h5",
            "dataset": {"name": "A001", "experiment": "exp-1", "creators": ["A. Scientist"]},
            "staging": {"id": FACILITY, "path": "/staging/A001"},
            "staging_compute_path": "/eagle/xpcs/staging/A001",
            "publication": {"id": PUB, "path": "/published/A001"},
            "facility": "polaris",
            "options": {"mode": "both", "stride": 2, "frame_time": 0.001},
            "compute_endpoint": "ep-1",
            "user_endpoint_config": {"queue": "debug", "walltime": "00:30:00", "nodes": 1},
            "search_index": "index-1",
            "visible_to": ["public"],
            "xpcs_correlate_function_id": "fn-1",
            "xpcs_plots_function_id": "fn-2",
            "xpcs_publish_metadata_function_id": "fn-3",
        }
    }


def _set(doc: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = pointer.strip("/").split("/")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return out


_DELETE = object()

# (pointer to change, new value, pointer the error must name)
BAD_SCHEMA_CASES = [
    ("/input/raw", _DELETE, "/input/raw"),
    ("/input/dataset/name", _DELETE, "/input/dataset/name"),
    ("/input/search_index", _DELETE, "/input/search_index"),
    ("/input/raw/path", 42, "/input/raw/path"),
    ("/input/options/stride", "2", "/input/options/stride"),
    ("/input/options/stride", 0, "/input/options/stride"),
    ("/input/options/mode", "threetime", "/input/options/mode"),
    ("/input/options/frame_time", 0, "/input/options/frame_time"),
    ("/input/options/twotime_bins", [], "/input/options/twotime_bins"),
    ("/input/options/colour", "red", "/input/options/colour"),
    ("/input/surprise", 1, "/input/surprise"),
    ("/input/raw/path", "relative/raw.h5", "/input/raw/path"),
    ("/input/raw/path", "/data/../etc/passwd", "/input/raw/path"),
    ("/input/staging/path", "/staging/A001/", "/input/staging/path"),
    ("/input/transfer_back", True, "/input/return_to"),
    ("/input/dataset/name", "bad name!", "/input/dataset/name"),
    ("/input/user_endpoint_config/nodes", 0, "/input/user_endpoint_config/nodes"),
    ("/input/visible_to", [], "/input/visible_to"),
]


def test_good_input_passes_schema_and_validation() -> None:
    doc = good_input()
    jsonschema.Draft7Validator(input_schema()).validate(doc)
    assert validate_flow_input(doc, allowed_roots={BEAMLINE: ["/data"]}) == doc


@pytest.mark.parametrize(("pointer", "value", "named"), BAD_SCHEMA_CASES)
def test_schema_and_validation_agree_on_bad_input(pointer: str, value: Any, named: str) -> None:
    doc = _set(good_input(), pointer, value)
    schema_errors = list(jsonschema.Draft7Validator(input_schema()).iter_errors(doc))
    assert schema_errors, "the deployed schema must reject this input too"
    with pytest.raises(FlowInputError) as info:
        validate_flow_input(doc)
    assert info.value.pointer == named
    assert named in str(info.value)
    assert info.value.expected


@pytest.mark.parametrize(
    ("pointer", "value", "allowed", "named"),
    [
        ("/input/raw/path", "/home/other/A001.h5", {BEAMLINE: ["/data"]}, "/input/raw/path"),
        ("/input/qmap_path", "/etc/qmap.h5", {BEAMLINE: ["/data"]}, "/input/qmap_path"),
        ("/input/staging/path", "/scratch/x", {FACILITY: ["/staging"]}, "/input/staging/path"),
        ("/input/qmap_path", "/data/other/A001.h5", None, "/input/qmap_path"),
    ],
)
def test_what_only_our_validation_rejects(
    pointer: str, value: Any, allowed: Any, named: str
) -> None:
    doc = _set(good_input(), pointer, value)
    jsonschema.Draft7Validator(input_schema()).validate(doc)  # the schema accepts it
    with pytest.raises(FlowInputError) as info:
        validate_flow_input(doc, allowed_roots=allowed)
    assert info.value.pointer == named


def test_end_not_after_begin_is_rejected_naming_end() -> None:
    doc = _set(good_input(), "/input/options/begin", 10)
    doc = _set(doc, "/input/options/end", 5)
    jsonschema.Draft7Validator(input_schema()).validate(doc)  # schema cannot compare fields
    with pytest.raises(FlowInputError) as info:
        validate_flow_input(doc)
    assert info.value.pointer == "/input/options/end"
    assert "must be > begin" in str(info.value)


def test_unknown_facility_is_rejected() -> None:
    with pytest.raises(FlowInputError) as info:
        validate_flow_input(good_input(), facilities={"frontier", "local"})
    assert info.value.pointer == "/input/facility"
    assert "frontier" in info.value.expected


def test_options_schema_mirrors_correlation_options() -> None:
    schema = correlation_options_schema()
    defaults = CorrelationOptions().to_dict()
    assert set(schema["properties"]) == set(defaults)
    for name, value in defaults.items():
        assert schema["properties"][name]["default"] == value, name
        assert schema["properties"][name]["title"]
        assert schema["properties"][name]["description"]
    # every default set validates, and so does what the kernel accepts
    jsonschema.Draft7Validator(schema).validate(defaults)


def test_collection_inputs_use_the_globus_collection_format() -> None:
    props = input_schema()["properties"]["input"]["properties"]
    for key in ("raw", "staging", "publication", "return_to"):
        assert props[key]["format"] == "globus-collection"
        assert set(props[key]["properties"]) == {"id", "path"}
    for key, prop in props.items():
        assert prop.get("title"), key
        assert prop.get("description"), key


def batch_input() -> dict[str, Any]:
    body = copy.deepcopy(good_input()["input"])
    for key in ("raw", "qmap_path", "dataset"):
        del body[key]
    body["source"] = {"id": BEAMLINE, "path": "/data"}
    body["batch"] = {"name": "night-1"}
    body["datasets"] = [
        {"name": "A001", "raw_path": "/data/A001/A001.h5", "qmap_path": "/data/q.h5"},
        {"name": "A002", "raw_path": "/data/A002/A002.h5", "qmap_path": "/data/q.h5"},
    ]
    return with_plan({"input": body})


def test_batch_plan_fans_out_one_task_per_dataset() -> None:
    doc = batch_input()
    assert validate_flow_input(doc, batch=True) == doc
    plan = doc["input"]["plan"]
    assert [t["kwargs"]["name"] for t in plan["correlate_tasks"]] == ["A001", "A002"]
    assert {t["function_id"] for t in plan["correlate_tasks"]} == {"fn-1"}
    assert plan["plots_tasks"][1]["kwargs"]["result"] == (
        "/eagle/xpcs/staging/A001/results/A002/A002_results.hdf"
    )
    assert plan["transfer_items"][2] == {
        "source_path": "/data/A002/A002.h5",
        "destination_path": "/staging/A001/A002/A002.h5",
    }


def test_batch_rejects_a_tampered_plan_and_duplicate_names() -> None:
    doc = batch_input()
    doc["input"]["plan"]["correlate_tasks"][0]["kwargs"]["raw"] = "/etc/passwd"
    with pytest.raises(FlowInputError) as info:
        validate_flow_input(doc, batch=True)
    assert info.value.pointer == "/input/plan/correlate_tasks"
    doc = batch_input()
    doc["input"]["datasets"][1]["name"] = "A001"
    doc = with_plan(doc)
    with pytest.raises(FlowInputError) as info:
        validate_flow_input(doc, batch=True)
    assert info.value.pointer == "/input/datasets/1/name"
    assert plan_batch(doc["input"])["correlate_tasks"][1]["kwargs"]["name"] == "A001"
