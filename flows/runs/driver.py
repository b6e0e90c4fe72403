"""Driving a local run to its end: :func:`drive_local_run`.

It drives a local run in the calling process; ``python -m flows.runs.driver
RUN_ID DB`` is the detached driver that :func:`flows.runs.progress.spawn_driver`
starts for callers that exit right after a launch.
"""

from __future__ import annotations

from pathlib import Path

from flows.runs.handle import Run

__all__ = ["drive_local_run"]


def drive_local_run(run_id: str, *, db_path: Path) -> str:
    """Drive local run ``run_id`` to its end in this process (or wait for its live driver).

    Returns the final status (the outcome is recorded in the run history).
    """
    run = Run.from_id(run_id, db_path=db_path)
    run.local_engine.run_until_done(run_id)  # a UsageError for a Globus run
    return run.status()


if __name__ == "__main__":  # the detached driver of spawn_driver
    import sys

    drive_local_run(sys.argv[1], db_path=Path(sys.argv[2]))
