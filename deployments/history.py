"""Run history (SQLite): what each run took, learned rates, one publication per dataset.

Tables (in the user's one SQLite file, WAL mode):

``run_history``
    One row per attempt: dataset, facility, attempt number, the decision
    that chose it (JSON), timings of each phase, outcome and, for failures,
    the failure class and detail, and the run it fails over from.
``publications``
    One row per published dataset key: the run and facility that own the
    publication. :meth:`RunHistory.claim_publication` inserts it atomically,
    which is what makes publication idempotent across failover attempts.

A run is a ``"gpu"`` run (the torch backend on a facility with GPUs) or a
``"cpu"`` run (column ``run_kind``, :func:`deployments.gpu.run_kind`); their
compute throughputs are learned apart, each from its own prior.

Learned rates start at the descriptor's priors and move toward the median of
the last runs: ``learned = (k * prior + n * median) / (k + n)``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployments.gpu import run_kind as _run_kind
from deployments.model import Deployment

__all__ = ["LearnedRates", "RunHistory", "RunRecord", "RunTimings", "default_database_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS run_history (
    run_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    facility TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    failover_from TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT NOT NULL DEFAULT 'running',
    failure_kind TEXT,
    failure_detail TEXT,
    bytes_in INTEGER,
    bytes_out INTEGER,
    frames INTEGER,
    pixels INTEGER,
    stage_in_s REAL,
    queue_s REAL,
    compute_s REAL,
    stage_out_s REAL,
    decision TEXT,
    run_kind TEXT
);
CREATE INDEX IF NOT EXISTS run_history_facility ON run_history (facility, outcome, finished_at);
CREATE INDEX IF NOT EXISTS run_history_dataset ON run_history (dataset);
CREATE TABLE IF NOT EXISTS publications (
    dataset_key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    facility TEXT NOT NULL,
    claimed_at REAL NOT NULL
);
"""


def default_database_path() -> Path:
    """The user's one SQLite file: ``$XDG_DATA_HOME/xpcs-flows/state.db``.

    The same file holds the local engine's runs, the run index, the watcher
    ledger and the local catalog, each in its own table (``flows.local.store``
    names the same path), so learned rates see every run.
    """
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "xpcs-flows" / "state.db"


@dataclass(frozen=True)
class RunTimings:
    """Seconds each phase of a run took (``None`` when not measured)."""

    stage_in_s: float | None = None
    queue_s: float | None = None
    compute_s: float | None = None
    stage_out_s: float | None = None


@dataclass(frozen=True)
class RunRecord:
    """One row of ``run_history``."""

    run_id: str
    dataset: str
    facility: str
    attempt: int
    failover_from: str | None
    started_at: float
    finished_at: float | None
    outcome: str
    failure_kind: str | None
    failure_detail: str | None
    decision: dict[str, Any] | None


@dataclass(frozen=True)
class LearnedRates:
    """The rates the selector uses for one facility, and how many runs taught them."""

    facility: str
    transfer_rate_mb_s: float
    transfer_overhead_s: float
    queue_delay_s: float
    dispatch_latency_s: float
    throughput_mpix_s: float
    samples: int = 0
    #: fixed part of a stage-out (seconds), learned from measured stage-outs;
    #: ``None``: the transfer overhead (the prior)
    stage_out_overhead_s: float | None = None

    @property
    def stage_out_overhead(self) -> float:
        """Seconds a stage-out takes besides moving the bytes."""
        if self.stage_out_overhead_s is None:
            return self.transfer_overhead_s
        return self.stage_out_overhead_s

    @classmethod
    def from_priors(cls, deployment: Deployment, *, backend: str = "numba") -> LearnedRates:
        """The descriptor's priors, unchanged (the GPU throughput for a GPU run)."""
        p = deployment.priors
        gpu = _run_kind(backend, deployment.capabilities.gpus) == "gpu"
        throughput = p.gpu_throughput_mpix_s if gpu and p.gpu_throughput_mpix_s else None
        return cls(
            deployment.name,
            p.transfer_rate_mb_s,
            p.transfer_overhead_s,
            p.queue_delay_s,
            p.dispatch_latency_s,
            throughput or p.throughput_mpix_s,
        )


def _blend(prior: float, samples: list[float], weight: float) -> float:
    if not samples:
        return prior
    n = len(samples)
    return (weight * prior + n * statistics.median(samples)) / (weight + n)


class RunHistory:
    """The run history in one SQLite file (``":memory:"`` for a private one).

    Parameters
    ----------
    path
        The database file (created with its folder); default
        :func:`default_database_path`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        target = default_database_path() if path is None else path
        if str(target) != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(target), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if str(target) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(run_history)")}
        if "run_kind" not in columns:  # a history written before GPU runs were told apart
            self._db.execute("ALTER TABLE run_history ADD COLUMN run_kind TEXT")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> RunHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_start(
        self,
        run_id: str,
        *,
        dataset: str,
        facility: str,
        started_at: float,
        attempt: int = 1,
        failover_from: str | None = None,
        decision: Mapping[str, Any] | None = None,
        bytes_in: int | None = None,
        frames: int | None = None,
        pixels: int | None = None,
        run_kind: str = "cpu",
    ) -> None:
        """Record that attempt ``attempt`` of ``dataset`` started on ``facility``.

        ``run_kind`` is ``"gpu"`` or ``"cpu"`` (:func:`deployments.gpu.run_kind`).
        """
        if run_kind not in ("cpu", "gpu"):
            raise ValueError(f"run_kind must be 'cpu' or 'gpu', not {run_kind!r}")
        with self._lock:
            self._db.execute(
                "INSERT INTO run_history (run_id, dataset, facility, attempt, failover_from,"
                " started_at, bytes_in, frames, pixels, decision, run_kind)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    dataset,
                    facility,
                    attempt,
                    failover_from,
                    started_at,
                    bytes_in,
                    frames,
                    pixels,
                    None if decision is None else json.dumps(decision, sort_keys=True),
                    run_kind,
                ),
            )

    def record_success(
        self,
        run_id: str,
        *,
        finished_at: float,
        timings: RunTimings,
        bytes_out: int | None = None,
    ) -> None:
        """Record that a run succeeded and what each phase took."""
        self._finish(
            run_id,
            "UPDATE run_history SET outcome='succeeded', finished_at=?, stage_in_s=?, queue_s=?,"
            " compute_s=?, stage_out_s=?, bytes_out=? WHERE run_id=?",
            (
                finished_at,
                timings.stage_in_s,
                timings.queue_s,
                timings.compute_s,
                timings.stage_out_s,
                bytes_out,
                run_id,
            ),
        )

    def record_failure(self, run_id: str, *, finished_at: float, kind: str, detail: str) -> None:
        """Record that a run failed; ``kind`` is its class (see :mod:`deployments.failover`)."""
        self._finish(
            run_id,
            "UPDATE run_history SET outcome='failed', finished_at=?, failure_kind=?,"
            " failure_detail=? WHERE run_id=?",
            (finished_at, kind, detail, run_id),
        )

    def _finish(self, run_id: str, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            cur = self._db.execute(sql, args)
        if cur.rowcount != 1:
            raise KeyError(f"no started run {run_id!r} in the history")

    def runs(self, *, dataset: str | None = None, facility: str | None = None) -> list[RunRecord]:
        """Attempts in start order, optionally for one dataset or facility."""
        sql = "SELECT * FROM run_history WHERE 1=1"
        args: list[Any] = []
        if dataset is not None:
            sql += " AND dataset=?"
            args.append(dataset)
        if facility is not None:
            sql += " AND facility=?"
            args.append(facility)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY started_at, attempt", args).fetchall()
        return [
            RunRecord(
                run_id=r["run_id"],
                dataset=r["dataset"],
                facility=r["facility"],
                attempt=r["attempt"],
                failover_from=r["failover_from"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
                outcome=r["outcome"],
                failure_kind=r["failure_kind"],
                failure_detail=r["failure_detail"],
                decision=None if r["decision"] is None else json.loads(r["decision"]),
            )
            for r in rows
        ]

    def learned_rates(
        self,
        deployment: Deployment,
        *,
        window: int = 20,
        prior_weight: float = 3.0,
        backend: str = "numba",
    ) -> LearnedRates:
        """Rates for ``deployment`` from its last ``window`` successful runs and its priors.

        The throughput is that of runs of the kind a ``backend`` run would be
        there (GPU or CPU, :func:`deployments.gpu.run_kind`; runs recorded
        without a kind are CPU runs), blended with that kind's prior; the
        transfer and queue rates come from every run. Transfer rate samples
        are MB / (stage-in seconds - prior overhead);
        throughput samples are frames x pixels / compute seconds; queue
        samples are the measured queue waits; stage-out overhead samples are
        the measured stage-out seconds less MB out / prior transfer rate.
        """
        prior = LearnedRates.from_priors(deployment, backend=backend)
        kind = _run_kind(backend, deployment.capabilities.gpus)
        with self._lock:
            rows = self._db.execute(
                "SELECT bytes_in, bytes_out, frames, pixels, stage_in_s, queue_s, compute_s,"
                " stage_out_s, run_kind"
                " FROM run_history WHERE facility=? AND outcome='succeeded'"
                " ORDER BY finished_at DESC LIMIT ?",
                (deployment.name, window),
            ).fetchall()
        rates, queues, throughputs, outs = [], [], [], []
        for r in rows:
            if r["stage_out_s"] is not None:
                moved = (r["bytes_out"] or 0) / 1e6 / prior.transfer_rate_mb_s
                outs.append(max(float(r["stage_out_s"]) - moved, 0.0))
            if r["bytes_in"] and r["stage_in_s"] is not None:
                moving = max(r["stage_in_s"] - prior.transfer_overhead_s, 0.1)
                rates.append(r["bytes_in"] / 1e6 / moving)
            if r["queue_s"] is not None:
                queues.append(float(r["queue_s"]))
            same_kind = (r["run_kind"] or "cpu") == kind
            if same_kind and r["frames"] and r["pixels"] and r["compute_s"]:
                throughputs.append(r["frames"] * r["pixels"] / 1e6 / r["compute_s"])
        return LearnedRates(
            facility=deployment.name,
            transfer_rate_mb_s=_blend(prior.transfer_rate_mb_s, rates, prior_weight),
            transfer_overhead_s=prior.transfer_overhead_s,
            queue_delay_s=_blend(prior.queue_delay_s, queues, prior_weight),
            dispatch_latency_s=prior.dispatch_latency_s,
            throughput_mpix_s=_blend(prior.throughput_mpix_s, throughputs, prior_weight),
            samples=len(rows),
            stage_out_overhead_s=_blend(prior.transfer_overhead_s, outs, prior_weight)
            if outs
            else None,
        )

    def claim_publication(
        self, dataset_key: str, *, run_id: str, facility: str, at: float
    ) -> bool:
        """Claim the one publication of ``dataset_key`` for ``run_id``.

        Returns ``True`` when this run now owns the publication (or already
        did), ``False`` when another run owns it: the caller must then not
        publish. The insert is atomic, so two attempts can never both win.
        """
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO publications (dataset_key, run_id, facility, claimed_at)"
                " VALUES (?, ?, ?, ?)",
                (dataset_key, run_id, facility, at),
            )
            row = self._db.execute(
                "SELECT run_id FROM publications WHERE dataset_key=?", (dataset_key,)
            ).fetchone()
        return bool(row["run_id"] == run_id)

    def publication(self, dataset_key: str) -> tuple[str, str] | None:
        """``(run_id, facility)`` that owns the publication of ``dataset_key``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT run_id, facility FROM publications WHERE dataset_key=?", (dataset_key,)
            ).fetchone()
        return None if row is None else (row["run_id"], row["facility"])
