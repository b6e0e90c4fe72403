"""Runs in progress: the progress line shown while waiting, and starting a detached driver.

:class:`RunProgress` is the transient rich line (label, status, current
state, elapsed time) that :meth:`flows.runs.handle.Run.wait` shows on stderr.
:func:`spawn_driver` starts a detached process (``python -m
flows.runs.driver RUN_ID DB``) that drives a local run to its end, for callers
that exit right after a launch. Neither needs the run handle, so the handle
imports them without importing the driver back.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RunProgress", "spawn_driver"]


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
