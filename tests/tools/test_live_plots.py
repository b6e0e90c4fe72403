"""Plots and status views of a partial (live) result: the frame count so far is shown."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from flows.watch.live import describe_live
from tools.plots import xpcs_plots
from xpcs_kernel.io import write_hdf5_frames
from xpcs_kernel.live import FollowConfig, FollowUpdate, follow_file
from xpcs_kernel.live.progress import frames_label, read_progress
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.synthetic import SyntheticSpec, synthesize


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A partial result (copied at the first update) and the final one of the same file."""
    tmp = tmp_path_factory.mktemp("liveplots")
    truth, frames = synthesize(
        SyntheticSpec(n_frames=120, shape=(24, 24), n_dynamic_q=2, n_static_q=4, seed=4)
    )
    write_qmap(tmp / "qmap.h5", truth.qmap)
    write_hdf5_frames(tmp / "raw.h5", frames)
    live_dir = tmp / "live"
    live_dir.mkdir()
    out = live_dir / "raw_live.hdf"
    partial = live_dir / "early_live.hdf"

    def keep_first(update: FollowUpdate) -> None:
        if not update.complete and not partial.exists():
            shutil.copy(out, partial)

    follow_file(
        tmp / "raw.h5",
        tmp / "qmap.h5",
        out,
        options=CorrelationOptions(frame_time=1e-3),
        config=FollowConfig(update=0.0, idle=0.3, done_marker=None),
        on_update=keep_first,
    )
    return {"partial": partial, "final": out, "dir": live_dir}


def test_progress_of_partial_and_final_results(results: dict[str, Path]) -> None:
    early = read_progress(results["partial"])
    final = read_progress(results["final"])
    assert early.complete is False
    assert final.complete is True
    assert final.frames == 120
    assert 2 <= early.frames <= 120
    assert len(final.g2_first) == 2
    assert final.longest_delay_s > 0
    assert frames_label({"follow": {"complete": False}}, 40) == "40 frames so far (live)"
    assert frames_label({}, 40) == "40 frames"
    text = "\n".join(describe_live(results["dir"]))
    assert f"{early.frames} frames so far (live)" in text
    assert "120 frames complete" in text
    assert "bin 1: g2" in text


def test_g2_plot_title_carries_the_frame_count(
    results: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    titles: list[str] = []
    original = Figure.suptitle

    def record(self: Figure, text: str, **kw: Any) -> Any:
        titles.append(text)
        return original(self, text, **kw)

    monkeypatch.setattr(Figure, "suptitle", record)
    frames = read_progress(results["partial"]).frames
    out = xpcs_plots(str(results["partial"]), str(tmp_path / "plots"))
    assert any(p.endswith("early_live_g2.png") for p in out["plots"])  # type: ignore[union-attr]
    assert titles == [f"g2, {frames} frames so far (live)"]
    titles.clear()
    xpcs_plots(str(results["final"]), str(tmp_path / "plots"))
    assert titles == ["g2, 120 frames"]
