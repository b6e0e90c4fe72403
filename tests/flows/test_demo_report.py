"""What the demo prints: the facility table has a header and says which HPC
facilities were skipped because they are not configured; the correlation time says
when it includes compiling the kernels."""

from __future__ import annotations

from deployments import load_deployments
from flows.cli.decision_table import decision_table, skipped_deployments
from flows.cli.demo import correlation_time_text
from xpcs_kernel.errors import ConfigurationError

DECISION = {
    "chosen": "local",
    "candidates": [
        {"rank": 1, "facility": "local", "state": "up", "reasons": ["data local", "queue 0 s"]},
        {"rank": None, "facility": "site_b", "state": "down", "reasons": []},
    ],
}


def test_the_table_has_a_header_and_names_the_skipped_facilities() -> None:
    skipped = {
        "polaris": "not configured",
        "aurora": "not configured",
        "broken": "invalid: x.toml [engine]: bad",
    }
    lines = decision_table(DECISION, skipped)
    assert lines[0].split() == ["rank", "facility", "state", "why"]
    assert lines[1].split() == ["1", "local", "up", "data", "local;", "queue", "0", "s"]
    assert lines[2].split() == ["-", "site_b", "down", "-"]
    assert lines[3] == (
        "  skipped, not configured: aurora, polaris (`xpcs-flows facilities` says what to fill in)"
    )
    assert lines[4] == "  skipped, broken: invalid: x.toml [engine]: bad"
    # columns line up under the header
    assert lines[1].index("local") == lines[0].index("facility")
    assert lines[1].index("up") == lines[0].index("state")


def test_the_packaged_hpc_descriptors_are_reported_as_not_configured() -> None:
    skipped = skipped_deployments(load_deployments().problems)
    assert {"aurora", "frontier", "perlmutter", "polaris"} <= set(skipped)
    assert all(why == "not configured" for why in skipped.values())
    other = skipped_deployments({"x": ConfigurationError("bad value", field="engine")})
    assert other == {"x": "invalid: [engine]: bad value"}


def test_the_correlation_time_says_whether_it_includes_compiling() -> None:
    assert correlation_time_text({"correlate": 55.454}, first_run=False) == "55.45 s"
    assert correlation_time_text({"correlate": 55.454}, first_run=True) == (
        "55.45 s (with compiling the kernels: first run)"
    )
    # once the kernel reports its compile time separately, both are shown
    assert correlation_time_text({"correlate": 3.2, "compile": 40.0}, first_run=True) == (
        "3.20 s (+ compiling 40.00 s)"
    )
