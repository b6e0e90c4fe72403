"""The package moves of issue 12 changed no byte of what is deployed.

The hashes were computed on main before the moves. A change to the flow
definition is legitimate only with a deliberate edit of the tools or of
:mod:`flows.xpcs.definition`: update the pinned hash in the same commit.
"""

from __future__ import annotations

import hashlib
import inspect
import json

import pytest

from flows.globus.deploy import function_checksum
from flows.xpcs import xpcs_flow

PINNED_DEFINITION = {
    False: "c2e90009331d8b5db4e7a1b845014b06fa4316dbb77945c6f71cc89c91dc6d87",
    True: "1cdbd5d85e7343d51f9b90ff42e34973d6184a19c0a878dac5c52621fe0cd3ee",
}
#: The live flow of issue 14 (CorrelateLive, then the normal flow's Plots to TransferBack).
PINNED_LIVE_DEFINITION = "4698b34ee75469f851ce30f22cbb2903a40576688036b2b3d0d07c8396754339"

# flow-input key -> (module, name) of the registered Globus Compute function
REGISTERED = {
    "xpcs_correlate_function_id": ("tools.correlate", "xpcs_correlate"),
    "xpcs_plots_function_id": ("tools.plots", "xpcs_plots"),
    "xpcs_publish_metadata_function_id": ("tools.publish", "xpcs_publish_metadata"),
}


@pytest.mark.parametrize("batch", [False, True])
def test_exported_definition_hash_is_unchanged(batch: bool) -> None:
    definition = xpcs_flow(batch=batch).definition
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    assert digest == PINNED_DEFINITION[batch]


@pytest.mark.parametrize("batch", [False, True])
def test_registered_function_names_are_unchanged(batch: bool) -> None:
    functions = xpcs_flow(batch=batch).compute_functions
    named = {key: (f.__module__, f.__qualname__) for key, f in functions.items()}
    assert named == REGISTERED


def test_live_definition_hash_and_functions_are_pinned() -> None:
    spec = xpcs_flow(live=True)
    digest = hashlib.sha256(json.dumps(spec.definition, sort_keys=True).encode()).hexdigest()
    assert digest == PINNED_LIVE_DEFINITION
    named = {key: (f.__module__, f.__qualname__) for key, f in spec.compute_functions.items()}
    assert named == {
        **REGISTERED,
        "xpcs_correlate_live_function_id": ("tools.correlate_live", "xpcs_correlate_live"),
    }


def test_compute_functions_import_public_kernel_paths() -> None:
    """The serialized bodies name the public paths, which keep working after the moves."""
    from tools.correlate import xpcs_correlate
    from tools.plots import xpcs_plots

    assert "from xpcs_kernel.pipeline import correlate_file" in inspect.getsource(xpcs_correlate)
    assert "from xpcs_kernel.result import read_result" in inspect.getsource(xpcs_plots)
    # and the checksum gladier registers them under is computable from that source
    assert len(function_checksum(xpcs_correlate)) == 64
