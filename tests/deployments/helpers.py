"""Shared builders for the deployments tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployments.model import Deployment, parse_deployment

EP = "11111111-2222-4333-8444-555555555555"
SRC = "aaaaaaaa-0000-4000-8000-000000000001"
STAGE = "aaaaaaaa-0000-4000-8000-000000000002"
PUB = "aaaaaaaa-0000-4000-8000-000000000003"
INDEX = "bbbbbbbb-0000-4000-8000-000000000004"
GROUP = "urn:globus:groups:id:cccccccc-0000-4000-8000-000000000005"


def override_text(endpoint: str = EP, extra: str = "") -> str:
    """A user file that fills every placeholder of a packaged remote descriptor."""
    return f"""
[compute]
endpoint_id = "{endpoint}"
account = "XPCS-proj"

[collections]
source = {{ id = "{SRC}", path = "/" }}
staging = {{ id = "{STAGE}", path = "/proj/xpcs/staging" }}
publication = {{ id = "{PUB}", path = "/proj/xpcs/results" }}

[search]
index = "{INDEX}"

[monitors]
run_monitors = ["{GROUP}"]
{extra}
"""


def write_overrides(folder: Path, names: tuple[str, ...] = ("polaris",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        ep = f"11111111-2222-4333-8444-{i:012d}"
        (folder / f"{name}.toml").write_text(override_text(ep))
    return folder


def remote_data(name: str = "site", **changes: Any) -> dict[str, Any]:
    """A complete, valid remote descriptor as parsed TOML."""
    data: dict[str, Any] = {
        "facility": "TEST",
        "description": f"{name} for tests",
        "compute": {"endpoint_id": EP, "queue": "debug", "walltime_minutes": 30, "nodes": 1},
        "collections": {
            "source": {"id": SRC, "path": "/"},
            "staging": {"id": STAGE, "path": "/stage"},
            "publication": {"id": PUB, "path": "/pub"},
        },
        "search": {"index": INDEX},
        "paths": {"allowed_roots": ["/data"]},
        "capabilities": {"gpu": True, "memory_gb": 256, "kernel_version": "0.1.0", "slots": 4},
        "status": [{"kind": "globus-compute", "base_url": "https://compute.example"}],
        "priors": {
            "transfer_rate_mb_s": 200,
            "transfer_overhead_s": 10,
            "queue_delay_s": 60,
            "dispatch_latency_s": 2,
            "throughput_mpix_s": 1000,
        },
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def make_deployment(name: str = "site", **changes: Any) -> Deployment:
    return parse_deployment(name, remote_data(name, **changes), source=f"{name}.toml")
