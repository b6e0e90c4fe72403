"""Which files the watcher takes, and when a file is complete.

:func:`matches` and :func:`scan` select data files (a glob on the file name;
hidden files, marker files and the q-map are never taken).
:class:`CompletionTracker` decides when a file is complete: without a done
marker, when its size and modification time have not changed for ``settle``
seconds; with one, when ``<file><suffix>`` exists. An HDF5 file must also
open (a file still held open for writing, or cut short, does not); one that
stays unopenable and unchanged for ``open_timeout`` seconds is invalid.
:class:`EventCollector` hands the watchdog observer's file events over.
The validation before launch (the frames open and match the q-map's detector
shape) is :func:`flows.xpcs.dataset_check.check_against_qmap`.
"""

from __future__ import annotations

import fnmatch
import os
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import h5py
from watchdog.events import FileSystemEvent, FileSystemEventHandler

__all__ = [
    "HDF5_SUFFIXES",
    "Completeness",
    "CompletionTracker",
    "EventCollector",
    "Verdict",
    "canonical_dir",
    "canonical_file",
    "matches",
    "scan",
]

#: Suffixes of files that must open as HDF5 before they count as complete.
HDF5_SUFFIXES = frozenset({".h5", ".hdf5", ".hdf", ".nxs", ".nx5"})
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def canonical_dir(path: str | os.PathLike[str]) -> str:
    """The absolute path of a directory with symbolic links resolved (the ledger's key)."""
    return os.path.realpath(path)


def canonical_file(path: str | os.PathLike[str]) -> str:
    """The ledger's name for a data file: its resolved directory joined with its own name."""
    absolute = os.path.abspath(path)
    return os.path.join(canonical_dir(os.path.dirname(absolute)), os.path.basename(absolute))


def matches(path: Path, pattern: str, *, done_marker: str | None, qmap: Path | None) -> bool:
    """Whether ``path`` is a data file the watcher takes.

    Its name matches ``pattern`` (:mod:`fnmatch`), it is not hidden, not a
    marker file (name ending in ``done_marker``) and not the q-map itself.
    """
    name = path.name
    if name.startswith(".") or not fnmatch.fnmatch(name, pattern):
        return False
    if done_marker and name.endswith(done_marker):
        return False
    return not (qmap is not None and canonical_file(path) == canonical_file(qmap))


def scan(
    directory: Path,
    pattern: str,
    *,
    recursive: bool,
    done_marker: str | None,
    qmap: Path | None,
) -> Iterator[Path]:
    """Regular files under ``directory`` that :func:`matches` takes (sorted per directory)."""
    stack = [directory]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                items = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for item in items:
            path = Path(item.path)
            if item.is_dir(follow_symlinks=False):
                if recursive and not item.name.startswith("."):
                    stack.append(path)
            elif item.is_file() and matches(path, pattern, done_marker=done_marker, qmap=qmap):
                yield path


class EventCollector(FileSystemEventHandler):
    """Puts the path of every file event in ``sink`` (the watcher filters them)."""

    def __init__(self, sink: queue.SimpleQueue[str]) -> None:
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.sink.put(os.fsdecode(raw))


class Completeness(StrEnum):
    """What :meth:`CompletionTracker.check` found."""

    WAITING = "WAITING"
    COMPLETE = "COMPLETE"
    INVALID = "INVALID"
    VANISHED = "VANISHED"


@dataclass(frozen=True)
class Verdict:
    """A :class:`Completeness` and, for INVALID, the reason."""

    state: Completeness
    reason: str | None = None


@dataclass
class _Track:
    size: int
    mtime_ns: int
    since: float
    unopenable_since: float | None = None


def _is_hdf5(path: Path) -> bool:
    if path.suffix.lower() in HDF5_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        return handle.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC


def _hdf5_problem(path: Path) -> str | None:
    """``None`` when ``path`` opens as HDF5, else why not."""
    try:
        # no HDF5 file lock: a detector writer reopening its file must never fail because of us
        with h5py.File(path, "r", locking=False):
            return None
    except OSError as exc:
        return str(exc)


class CompletionTracker:
    """Decides, file by file, when a file being written is complete.

    Parameters
    ----------
    settle
        Seconds the size and modification time must stay unchanged.
    done_marker
        Suffix of the marker file that says a file is complete (replaces the
        settle rule); ``None`` to use the settle rule.
    open_timeout
        Seconds an unchanged HDF5 file may stay unopenable before it is INVALID.
    clock
        Monotonic clock (injected by tests).
    """

    def __init__(
        self,
        *,
        settle: float,
        done_marker: str | None,
        open_timeout: float,
        clock: Callable[[], float],
    ) -> None:
        self.settle = settle
        self.done_marker = done_marker
        self.open_timeout = open_timeout
        self.clock = clock
        self._tracks: dict[str, _Track] = {}

    def forget(self, path: str) -> None:
        """Drop what is known about ``path`` (it left the SEEN state)."""
        self._tracks.pop(path, None)

    def check(self, path: str) -> Verdict:
        """Look at ``path`` now and say whether it is complete."""
        now = self.clock()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.forget(path)
            return Verdict(Completeness.VANISHED)
        track = self._tracks.get(path)
        if track is None or (track.size, track.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._tracks[path] = track = _Track(st.st_size, st.st_mtime_ns, now)
            if self.done_marker is None:
                return Verdict(Completeness.WAITING)
        if self.done_marker is not None:
            if not os.path.exists(path + self.done_marker):
                return Verdict(Completeness.WAITING)
        elif now - track.since < self.settle:
            return Verdict(Completeness.WAITING)
        problem = "the file is empty" if st.st_size == 0 else None
        if problem is None and _is_hdf5(Path(path)):
            problem = _hdf5_problem(Path(path))
        if problem is None:
            return Verdict(Completeness.COMPLETE)
        if track.unopenable_since is None:
            track.unopenable_since = now
        if now - track.unopenable_since >= self.open_timeout:
            return Verdict(
                Completeness.INVALID,
                f"not a complete data file after {self.open_timeout:g} s unchanged: {problem}",
            )
        return Verdict(Completeness.WAITING)
