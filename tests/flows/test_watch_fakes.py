"""Fakes shared by the watcher tests (a launcher, a clock, HDF5 file writers), and their tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest

from flows.errors import RunNotFound
from flows.watch.launcher import KEY_TAG_PREFIX, LaunchedRun, RunLookupUnavailable
from xpcs_kernel.errors import InputDataError


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeRun:
    run_id: str
    raw: Path
    tags: tuple[str, ...]
    status: str = "ACTIVE"


@dataclass
class FakeLauncher:
    """Records launches; runs stay ACTIVE until a test ends them."""

    fail_for: set[str] = field(default_factory=set)
    lookup_available: bool = True
    runs: dict[str, FakeRun] = field(default_factory=dict)

    def launch(self, raw: Path, qmap: Path, *, tags: Sequence[str]) -> LaunchedRun:
        if raw.name in self.fail_for:
            raise InputDataError("the launcher refused it", path=raw)
        run = FakeRun(str(uuid.uuid4()), raw, tuple(tags))
        self.runs[run.run_id] = run
        return LaunchedRun(run.run_id, "fake-facility")

    def find(self, tag: str) -> LaunchedRun | None:
        if not self.lookup_available:
            raise RunLookupUnavailable("no lookup here", tag=tag)
        for run in self.runs.values():
            if tag in run.tags:
                return LaunchedRun(run.run_id, "fake-facility")
        return None

    def status(self, run_id: str) -> str:
        if run_id not in self.runs:
            raise RunNotFound(run_id)
        return self.runs[run_id].status

    def launched_names(self) -> list[str]:
        return sorted(run.raw.name for run in self.runs.values())

    def end_all(self, status: str = "SUCCEEDED") -> None:
        for run in self.runs.values():
            run.status = status


def write_h5(path: Path, shape: tuple[int, int] = (24, 24), frames: int = 3) -> Path:
    """A small frame file at ``/entry/data/data``."""
    data = np.arange(frames * shape[0] * shape[1], dtype=np.uint16).reshape(frames, *shape) % 7
    with h5py.File(path, "w") as f:
        f.create_dataset("entry/data/data", data=data)
    return path


def test_fake_launcher_finds_runs_by_tag(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    run = launcher.launch(tmp_path / "a.h5", tmp_path / "q.h5", tags=(f"{KEY_TAG_PREFIX}k1",))
    assert launcher.find(f"{KEY_TAG_PREFIX}k1") == run
    assert launcher.find(f"{KEY_TAG_PREFIX}k2") is None
    assert launcher.status(run.run_id) == "ACTIVE"
    with pytest.raises(RunNotFound):
        launcher.status("nope")


def test_write_h5_is_readable(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "x.h5", (4, 5), frames=2)
    with h5py.File(path, "r") as f:
        assert f["entry/data/data"].shape == (2, 4, 5)
