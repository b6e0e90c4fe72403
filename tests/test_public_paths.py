"""The import paths the README and users rely on survive the package moves.

Each public path must name the very object its module defines (a re-export,
not a copy), so that a patch of the implementation is seen through it.
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = [
    ("flows.launch", "launch", "flows.launch.api"),
    ("flows.launch", "LaunchRequest", "flows.launch.request"),
    ("flows.run_handle", "Run", "flows.runs.handle"),
    ("flows.runs", "Run", "flows.runs.handle"),
    ("flows.cli", "console_main", "flows.cli.app"),
    ("flows.xpcs", "xpcs_flow", "flows.xpcs.definition"),
    ("flows.watch", "Watcher", "flows.watch.watcher"),
    ("xpcs_kernel.pipeline", "correlate_file", "xpcs_kernel.pipeline.correlate"),
    ("xpcs_kernel.multitau", "multitau", "xpcs_kernel.multitau.correlator"),
    ("xpcs_kernel.multitau", "MultiTauCorrelator", "xpcs_kernel.multitau.correlator"),
    ("xpcs_kernel.twotime", "twotime", "xpcs_kernel.twotime.correlator"),
    ("xpcs_kernel.qmap", "QMap", "xpcs_kernel.qmap.model"),
    ("xpcs_kernel.qmap", "qmap_from_geometry", "xpcs_kernel.qmap.build"),
    ("xpcs_kernel.result", "read_result", "xpcs_kernel.result.writer"),
    ("xpcs_kernel.saxs", "saxs", "xpcs_kernel.saxs.profile"),
    ("xpcs_kernel.synthetic", "write_synthetic", "xpcs_kernel.synthetic.frames"),
    ("deployments.simulate", "simulate", "deployments.simulate.run"),
    ("deployments", "simulate", "deployments.simulate.run"),
]


@pytest.mark.parametrize(("public", "name", "home"), PUBLIC)
def test_public_path_is_the_implementation(public: str, name: str, home: str) -> None:
    exported = getattr(importlib.import_module(public), name)
    assert exported is getattr(importlib.import_module(home), name)
    assert name in importlib.import_module(public).__all__
