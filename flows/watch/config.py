"""What the watcher is told (:class:`WatchConfig`) and what a pass did (:class:`PassReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xpcs_kernel.errors import UsageError

__all__ = ["PassReport", "WatchConfig"]


@dataclass(frozen=True)
class WatchConfig:
    """What to watch and how.

    Attributes
    ----------
    directory, qmap
        The directory of new data files and the q-map every run uses.
    pattern
        Glob on file names (``*.h5``).
    recursive
        Watch subdirectories too.
    settle
        Seconds a file's size and mtime must stay unchanged (no done marker).
    done_marker
        Suffix of the marker file a writer creates when a file is complete.
    max_active
        Runs in flight at most (LAUNCHING + LAUNCHED); the rest wait READY.
    tags
        Extra run tags.
    poll_interval
        Seconds between passes.
    monitor_interval
        Seconds between status checks of launched runs.
    rescan_interval
        Seconds between full rescans (``None``: only at start-up).
    open_timeout
        Seconds an unchanged HDF5 file may stay unopenable before it FAILS.
    max_launch_tries
        Interrupted launches of one attempt before the file FAILS.
    polling
        Use a polling observer (network file systems without inotify).
    live, live_dir
        Live mode: follow each file from the moment it is seen, writing its g2 so
        far to ``live_dir`` (default ``<directory>/.xpcs-live``); see
        :mod:`flows.watch.live`. The run is still launched once, when complete.
    """

    directory: Path
    qmap: Path
    pattern: str = "*.h5"
    recursive: bool = False
    settle: float = 5.0
    done_marker: str | None = None
    max_active: int = 4
    tags: tuple[str, ...] = ()
    poll_interval: float = 0.5
    monitor_interval: float = 5.0
    rescan_interval: float | None = 60.0
    open_timeout: float = 60.0
    max_launch_tries: int = 5
    polling: bool = False
    live: bool = False
    live_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.max_active < 1:
            raise UsageError("must be at least 1", argument="max_active")
        if self.settle < 0 or self.open_timeout < 0 or self.poll_interval <= 0:
            raise UsageError("settle, open_timeout >= 0 and poll_interval > 0 are required")
        if self.max_launch_tries < 1:
            raise UsageError("must be at least 1", argument="max_launch_tries")


@dataclass
class PassReport:
    """What one pass of the watcher did (paths per outcome)."""

    seen: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
