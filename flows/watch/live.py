"""The watcher's live mode: a follower per new file, while the file is still written.

With ``WatchConfig(live=True)`` (``xpcs-flows watch --live``) the watcher
starts one follower process (``python -m xpcs_kernel correlate FILE --follow``)
as soon as a file is SEEN, instead of showing nothing until the file settles.
The follower replaces ``<live_dir>/<file stem>_live.hdf`` with the g2 and
SAXS of the frames so far every ``update`` seconds (the frame count is in the
result's ``end_frame``), and writes the final result once the writer's done
marker appears or no frame arrived for ``idle`` seconds. The run itself is
launched, exactly once and published once, when the file is complete, as
without live mode: the ledger protocol is unchanged.

Followers are the watcher's own child processes; it stops them (SIGTERM, by
process handle) when it stops. A follower stopped or killed keeps its
checkpoint, and the follower started for the same file after a restart
resumes from it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flows.watch.config import WatchConfig
from xpcs_kernel.errors import XPCSFlowsError

__all__ = ["LIVE_DIR", "LiveFollowers", "describe_live", "live_followers", "live_result_path"]

#: The live results' directory inside a watched directory (hidden: never scanned).
LIVE_DIR = ".xpcs-live"

_log = logging.getLogger("flows.watch")


def live_followers(config: WatchConfig, directory: Path, qmap: Path) -> LiveFollowers | None:
    """The followers of a watcher with ``config`` (``None`` unless live mode)."""
    if not config.live:
        return None
    return LiveFollowers(
        qmap,
        config.live_dir or directory / LIVE_DIR,
        idle=max(config.settle, 10.0),
        done_marker=config.done_marker,
    )


def live_result_path(live_dir: Path, raw: str | Path) -> Path:
    """Where the live result of ``raw`` goes."""
    return Path(live_dir) / f"{Path(raw).stem}_live.hdf"


@dataclass
class _Follower:
    process: subprocess.Popen[bytes]
    output: Path
    log: Path
    plotted: float = float("-inf")  # mtime of the result last plotted
    plotted_at: float = float("-inf")  # when (monotonic)


class LiveFollowers:
    """Follower processes of the files a watcher has seen, one per file.

    Parameters
    ----------
    qmap
        The q-map every follower uses.
    live_dir
        Where the live results (and the followers' logs) go; created.
    idle, update
        The followers' ``--idle`` and ``--update`` seconds.
    done_marker
        The writer's done-marker suffix (``None``: the followers end on ``idle``).
    plot_interval
        Redraw the plots of a live result (``<live_dir>/plots/``, g2 titled with
        the frame count so far) at most this often, in seconds; ``None``: never.
    """

    def __init__(
        self,
        qmap: Path,
        live_dir: Path,
        *,
        idle: float,
        update: float = 2.0,
        done_marker: str | None = None,
        plot_interval: float | None = 10.0,
    ) -> None:
        self.qmap = Path(qmap)
        self.live_dir = Path(live_dir)
        self.idle = float(idle)
        self.update = float(update)
        self.done_marker = done_marker
        self.plot_interval = plot_interval
        self._running: dict[str, _Follower] = {}
        self._ended: dict[str, int] = {}

    def command(self, raw: str, output: Path) -> list[str]:
        """The follower's command line."""
        return [
            sys.executable,
            "-m",
            "xpcs_kernel",
            "correlate",
            raw,
            "--qmap",
            str(self.qmap),
            "-o",
            str(output),
            "--follow",
            "--idle",
            str(self.idle),
            "--update",
            str(self.update),
            "--done-marker",
            self.done_marker or "",
            "--quiet",
        ]

    def ensure(self, raw: str) -> bool:
        """Start a follower for ``raw`` unless one runs or ran; True when one was started."""
        self.reap()
        if raw in self._running:
            self._refresh_plots(self._running[raw])
            return False
        if raw in self._ended or not Path(raw).exists():
            return False
        self.live_dir.mkdir(parents=True, exist_ok=True)
        output = live_result_path(self.live_dir, raw)
        log = output.with_suffix(".log")
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                self.command(raw, output),
                stdout=subprocess.DEVNULL,
                stderr=handle,
                stdin=subprocess.DEVNULL,
            )
        self._running[raw] = _Follower(process, output, log)
        _log.info("%s: live follower %d -> %s", raw, process.pid, output)
        return True

    def _refresh_plots(self, follower: _Follower) -> None:
        """Redraw the plots of a follower's result if it changed (throttled)."""
        now = time.monotonic()
        if self.plot_interval is None or now - follower.plotted_at < self.plot_interval:
            return
        try:
            mtime = follower.output.stat().st_mtime
        except FileNotFoundError:
            return  # nothing written yet
        if mtime == follower.plotted:
            return
        from tools.plots import xpcs_plots

        follower.plotted, follower.plotted_at = mtime, now
        try:
            xpcs_plots(str(follower.output), str(self.live_dir / "plots"))
        except (XPCSFlowsError, OSError, ValueError) as exc:  # a view only: the run is unaffected
            _log.warning("%s: live plots not drawn: %s", follower.output, exc)

    def reap(self) -> dict[str, int]:
        """Collect the followers that ended; returns their exit codes by file."""
        done: dict[str, int] = {}
        for raw, follower in list(self._running.items()):
            code = follower.process.poll()
            if code is None:
                continue
            del self._running[raw]
            self._ended[raw] = done[raw] = code
            if code != 0:
                _log.warning("%s: live follower exited %d (see %s)", raw, code, follower.log)
        return done

    def running(self) -> dict[str, Path]:
        """Files followed now, with their live result paths."""
        self.reap()
        return {raw: f.output for raw, f in self._running.items()}

    def close(self, timeout: float = 10.0) -> None:
        """Stop the followers still running (they resume from their checkpoints later)."""
        for follower in self._running.values():
            follower.process.terminate()
        for raw, follower in list(self._running.items()):
            try:
                follower.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                follower.process.kill()
                follower.process.wait()
            del self._running[raw]


def describe_live(live_dir: Path) -> list[str]:
    """Text lines on every live result in ``live_dir``: frames so far and g2 so far."""
    from xpcs_kernel.live.progress import read_progress

    lines: list[str] = []
    for path in sorted(Path(live_dir).glob("*_live.hdf")):
        try:
            lines += read_progress(path).lines()
        except (XPCSFlowsError, OSError) as exc:
            lines.append(f"{path}: unreadable ({exc})")
    return lines
