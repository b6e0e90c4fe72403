"""Runs in progress: the progress line shown while waiting, and driving a local run to its end.

:class:`RunProgress` is the transient rich line (label, status, current
state, elapsed time) that :meth:`flows.runs.handle.Run.wait` shows on stderr.
:func:`drive_local_run` drives a local run in the calling process;
:func:`spawn_driver` starts a detached process that does (``python -m
flows.runs.driver RUN_ID DB``), for callers that exit right after a launch.
"""

from __future__ import annotations

from pathlib import Path

from xpcs_kernel.errors import UsageError

__all__ = ["RunProgress", "drive_local_run", "spawn_driver"]


class RunProgress:
    """A transient rich progress line on stderr: label, status, current state, elapsed."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.label = label
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(label, total=None)

    def update(self, status: str, state: str | None) -> None:
        """Show ``status`` (and the current ``state`` while ACTIVE)."""
        where = f" [{state}]" if state and status == "ACTIVE" else ""
        self.progress.update(self.task, description=f"{self.label}: {status}{where}")

    def close(self) -> None:
        """Remove the line."""
        self.progress.stop()


def drive_local_run(run_id: str, *, db_path: Path) -> str:
    """Drive local run ``run_id`` to its end in this process (or wait for its live driver).

    Returns the final status (the outcome is recorded in the run history).
    """
    from flows.runs.handle import Run

    run = Run.from_id(run_id, db_path=db_path)
    if run.engine != "local":
        raise UsageError(f"run {run_id} runs on {run.engine}, not the local engine")
    run._engine().run_until_done(run_id)
    return run.status()


def spawn_driver(run_id: str, *, db_path: Path) -> None:
    """Start a detached process (its own session) that drives local run ``run_id``.

    For callers that exit right after starting a run (``xpcs-flows run``
    without ``--wait``): the run goes on after they are gone. A short-lived
    launcher process starts the driver, so the caller holds no child process.
    """
    import subprocess
    import sys

    launcher = (
        "import subprocess, sys; subprocess.Popen([sys.executable, '-m', 'flows.runs.driver',"
        " *sys.argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, start_new_session=True)"
    )
    subprocess.run([sys.executable, "-c", launcher, run_id, str(db_path)], check=True)


if __name__ == "__main__":  # the detached driver of spawn_driver
    import sys

    drive_local_run(sys.argv[1], db_path=Path(sys.argv[2]))
