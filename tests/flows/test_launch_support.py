"""Helpers shared by the launch, failover and run-command tests (no tests here).

Tiny synthetic datasets, user deployment descriptors written into the
per-test ``XDG_CONFIG_HOME``, and a deploy state naming a deployed flow.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

SPEC = SyntheticSpec(
    n_frames=160, shape=(24, 24), n_dynamic_q=3, n_static_q=6, tau_c_range=(2.0, 12.0)
)
MONITOR_GROUP = "urn:globus:groups:id:11111111-2222-3333-4444-555555555555"
MANAGER_GROUP = "urn:globus:groups:id:66666666-7777-8888-9999-000000000000"


def make_dataset(folder: Path, name: str = "A001") -> tuple[Path, Path]:
    """A raw file and its q-map (160 frames of 24 x 24) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    raw, qmap = folder / f"{name}.h5", folder / f"qmap_{name}.h5"
    write_synthetic(raw, qmap, SPEC)
    return raw, qmap


def config_dir() -> Path:
    """The per-test user's descriptor directory (under the test's XDG_CONFIG_HOME)."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "xpcs-flows" / "deployments"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_local_deployment(name: str, *, throughput_mpix_s: float) -> None:
    """A local-engine deployment ``name``; a higher throughput ranks it earlier."""
    (config_dir() / f"{name}.toml").write_text(
        f"""
facility = "{name}"
description = "test site {name} (local engine)"
engine = "local"
[compute]
walltime_minutes = 10
nodes = 1
[paths]
allowed_roots = ["/"]
[capabilities]
gpu = false
memory_gb = 8
kernel_version = "0.1.0"
slots = 1
[priors]
transfer_rate_mb_s = 500
transfer_overhead_s = 0.5
queue_delay_s = 0
dispatch_latency_s = 0.5
throughput_mpix_s = {throughput_mpix_s}
"""
    )


def write_polaris(*, monitors: bool = True) -> dict[str, str]:
    """Fill the packaged Polaris descriptor's placeholders; returns the ids used."""
    ids = {k: str(uuid.uuid4()) for k in ("endpoint", "source", "staging", "pub", "index")}
    text = f"""
[compute]
endpoint_id = "{ids["endpoint"]}"
account = "XPCS_test"
[collections]
source = {{ id = "{ids["source"]}", path = "/" }}
staging = {{ id = "{ids["staging"]}", path = "/eagle/xpcs/staging" }}
publication = {{ id = "{ids["pub"]}", path = "/eagle/xpcs/published" }}
[search]
index = "{ids["index"]}"
"""
    if monitors:
        text += f"""
[monitors]
run_monitors = ["{MONITOR_GROUP}"]
run_managers = ["{MANAGER_GROUP}"]
"""
    else:
        text += "\n[monitors]\nrun_monitors = []\n"
    (config_dir() / "polaris.toml").write_text(text)
    return ids


def write_deploy_state(name: str = "xpcs", *, flow_id: str | None = None) -> dict[str, str]:
    """A deploy state (default path) with flow ``name`` and its three function ids."""
    from flows.globus.deploy import default_state_path
    from flows.xpcs.schema import FUNCTION_ID_KEYS

    flow_id = flow_id or str(uuid.uuid4())
    functions = {
        key: {"name": key, "function_id": str(uuid.uuid4()), "checksum": "x"}
        for key in FUNCTION_ID_KEYS
    }
    path = default_state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = (
        json.loads(path.read_text()) if path.exists() else {"format": 1, "functions": {}}
    )
    state.setdefault("flows", {})[name] = {
        "flow_id": flow_id,
        "checksum": "x",
        "functions": functions,
    }
    path.write_text(json.dumps(state))
    return {"flow_id": flow_id, **{k: v["function_id"] for k, v in functions.items()}}
