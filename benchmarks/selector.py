"""How long facility selection takes (the issue's "under 100 ms when status is cached").

Run from the repository root::

    .venv/bin/python benchmarks/selector.py

Prints one JSON object with, in milliseconds:

``rank_median_ms`` / ``rank_p99_ms``
    The pure selector (:func:`deployments.select.rank_facilities`) over 5
    deployments.
``decide_cached_median_ms`` / ``decide_cached_p99_ms``
    :meth:`FacilityChooser.decide` end to end with every probe's TTL cache
    warm and a run history of 2000 runs (learned rates read from SQLite).
``gather_concurrent_ms`` / ``gather_sequential_ms``
    Asking 10 probes that each take 100 ms: concurrently (as the chooser
    does) and one after another.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deployments.chooser import FacilityChooser
from deployments.history import RunHistory, RunTimings
from deployments.model import Deployment, parse_deployment
from deployments.select import JobRequest, rank_facilities
from deployments.state import FacilityState, FacilityStatus, Outage
from deployments.status import StatusProbe, gather_statuses

NAMES = ("polaris", "aurora", "perlmutter", "frontier", "spare")


def deployment(name: str, i: int) -> Deployment:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{k}")) for k in range(5)]
    data = {
        "facility": "BENCH",
        "compute": {"endpoint_id": ids[0], "queue": "debug"},
        "collections": {
            "source": {"id": ids[1], "path": "/"},
            "staging": {"id": ids[2], "path": "/s"},
            "publication": {"id": ids[3], "path": "/p"},
        },
        "search": {"index": ids[4]},
        "paths": {"allowed_roots": ["/"]},
        "capabilities": {"gpu": True, "memory_gb": 256, "kernel_version": "0.1.0", "slots": 8},
        "status": [{"kind": "globus-compute", "base_url": "https://compute.invalid"}],
        "priors": {"transfer_rate_mb_s": 100 + 50 * i, "throughput_mpix_s": 500 + 300 * i},
    }
    return parse_deployment(name, data, source=f"{name}.toml")


class FixedProbe(StatusProbe):
    kind = "fixed"

    def __init__(self, facility: str, now: float, delay: float = 0.0) -> None:
        super().__init__(facility, ttl=1e9 if delay == 0 else 0.0)
        self.now = now
        self.delay = delay

    def fetch(self) -> FacilityStatus:
        if self.delay:
            time.sleep(self.delay)
        return FacilityStatus(
            self.facility,
            self.kind,
            FacilityState.UP,
            self.now,
            "fixed",
            (Outage(self.now + 86400, self.now + 90000, True, "PM"),),
            idle_workers=2,
            total_workers=8,
            outstanding_tasks=9,
        )


def timings_ms(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
    return sorted(out)


def main() -> None:
    now = time.time()
    deps = [deployment(n, i) for i, n in enumerate(NAMES)]
    request = JobRequest(dataset="bench", bytes_in=5 * 10**9, frames=20_000, pixels=10**6)
    statuses = {d.name: FixedProbe(d.name, now).fetch() for d in deps}

    rank = timings_ms(lambda: rank_facilities(request, deps, statuses, {}, now=now), 2000)

    history = RunHistory(":memory:")
    for k in range(2000):
        name = NAMES[k % len(NAMES)]
        history.record_start(
            f"r{k}",
            dataset=f"d{k}",
            facility=name,
            started_at=k,
            bytes_in=5 * 10**9,
            frames=20_000,
            pixels=10**6,
        )
        history.record_success(
            f"r{k}", finished_at=k + 100.0, timings=RunTimings(30.0, 10.0, 40.0, 5.0)
        )
    probes = {d.name: [FixedProbe(d.name, now)] for d in deps}
    chooser = FacilityChooser(deps, history=history, probes=probes)
    chooser.decide(request)  # warm the caches
    decide = timings_ms(lambda: chooser.decide(request), 300)

    slow = {f"s{i}": [FixedProbe(f"s{i}", now, delay=0.1)] for i in range(10)}
    t0 = time.perf_counter()
    gather_statuses(slow)
    concurrent = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    for ps in slow.values():
        for p in ps:
            p.status()
    sequential = (time.perf_counter() - t0) * 1000

    def p99(xs: list[float]) -> float:
        return round(xs[int(0.99 * (len(xs) - 1))], 3)

    print(
        json.dumps(
            {
                "deployments": len(deps),
                "rank_median_ms": round(statistics.median(rank), 3),
                "rank_p99_ms": p99(rank),
                "decide_cached_median_ms": round(statistics.median(decide), 3),
                "decide_cached_p99_ms": p99(decide),
                "history_runs": 2000,
                "gather_concurrent_ms": round(concurrent, 1),
                "gather_sequential_ms": round(sequential, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
