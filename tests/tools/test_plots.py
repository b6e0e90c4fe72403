"""The Plots step draws what the data show: robust two-time colour limits off the
diagonal, q with its unit in every title, fit parameters in the g2 legends, a
linear intensity axis when the SAXS range is narrow, a map for every bin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from tools.plots import xpcs_plots
from xpcs_kernel import plot_scales as ps
from xpcs_kernel.errors import UsageError
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.synthetic import SyntheticSpec, write_synthetic


def test_twotime_limits_leave_out_the_diagonal() -> None:
    rng = np.random.default_rng(3)
    n = 200
    c2 = 1.0 + 0.1 * rng.random((n, n))  # data in [1.0, 1.1]
    c2 = (c2 + c2.T) / 2
    np.fill_diagonal(c2, 1.8)
    vmin, vmax = ps.twotime_limits(c2)
    off = c2[np.triu_indices(n, k=1)]
    assert vmin == pytest.approx(np.percentile(off, 1.0))
    assert vmax == pytest.approx(np.percentile(off, 99.0))
    assert vmax < 1.1  # the diagonal's 1.8 does not set the scale
    # a band of 5 frames leaves out the near-diagonal too
    c2_band = c2.copy()
    for k in range(1, 5):
        idx = np.arange(n - k)
        c2_band[idx, idx + k] = c2_band[idx + k, idx] = 1.6
    assert ps.twotime_limits(c2_band, band=5)[1] < 1.1
    assert ps.twotime_limits(c2_band, band=1)[1] > 1.5


def test_limits_of_degenerate_maps_and_bad_arguments() -> None:
    assert ps.image_limits(np.full((4, 4), 2.0)) == (1.5, 2.5)
    assert ps.image_limits(np.full((2, 2), np.nan)) == (0.0, 1.0)
    assert ps.twotime_limits(np.array([[3.0]])) == (2.5, 3.5)
    with pytest.raises(UsageError, match="c2"):
        ps.twotime_limits(np.zeros((3, 4)))
    with pytest.raises(UsageError, match="low, high"):
        ps.image_limits(np.zeros(3), low=50, high=10)


def test_log_spans_and_texts() -> None:
    assert not ps.log_spans(np.array([1.97, 2.02]))
    assert ps.log_spans(np.array([0.01, 0.2, 5.0]))
    assert not ps.log_spans(np.array([0.0, -1.0, 3.0]))  # one positive value
    assert ps.q_unit(np.array([b"\xc3\x85\xe2\x81\xbb\xc2\xb9", b"deg"])) == "Å⁻¹"
    assert ps.q_unit(None) == ps.DEFAULT_Q_UNIT
    assert ps.g2_title(0.000439, "Å⁻¹") == "q = 0.000439 Å⁻¹"
    assert ps.twotime_title(0.00278) == "C(t1, t2), q = 0.00278 Å⁻¹"
    assert ps.fit_legend(0.1012, 0.1987) == "fit: τc = 0.101 s, β = 0.199"


@pytest.fixture(scope="module")
def result_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plots")
    spec = SyntheticSpec(
        n_frames=300, shape=(32, 32), n_dynamic_q=5, n_static_q=10, tau_c_range=(2.0, 20.0)
    )
    write_synthetic(folder / "A.h5", folder / "qmap.h5", spec)
    out = folder / "A_results.hdf"
    correlate_file(
        folder / "A.h5",
        folder / "qmap.h5",
        out,
        options=CorrelationOptions(mode="both", frame_time=spec.frame_time),
    )
    return out


@pytest.mark.slow
def test_figures_show_the_data(
    result_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: dict[str, Figure] = {}
    original = Figure.savefig

    def record(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        name = Path(str(fname)).name.removeprefix(".").removesuffix(".partial.png")
        drawn[name.removeprefix("A_").removesuffix(".png")] = self
        original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    plots = xpcs_plots(str(result_file), str(tmp_path / "plots"))["plots"]
    names = sorted(Path(p).name for p in plots)  # type: ignore[attr-defined]
    assert [n for n in names if "twotime" in n] == [f"A_twotime_bin{b}.png" for b in range(5)]

    from xpcs_kernel.result import read_result

    res = read_result(result_file)
    for b in range(5):
        fig = drawn[f"twotime_bin{b}"]
        ax = fig.axes[0]
        image = ax.get_images()[0]
        assert image.get_cmap().name == "viridis"
        vmin, vmax = image.get_clim()
        c2 = res.load_c2(b)
        assert (vmin, vmax) == pytest.approx(ps.twotime_limits(c2))
        assert vmax < float(np.mean(np.diagonal(c2)))  # the diagonal is not the scale
        assert f"q = {float(res.fit['q'][b]):.3g} Å⁻¹" in ax.get_title()

    g2_axes = [a for a in drawn["g2"].axes if a.get_title()]
    assert len(g2_axes) == 5
    for b, ax in enumerate(g2_axes):
        assert ax.get_title() == f"q = {float(res.fit['q'][b]):.3g} Å⁻¹"
        legend = ax.get_legend()
        assert legend is not None
        texts = [t.get_text() for t in legend.get_texts()]
        tau_c = 1.0 / float(res.fit["gamma"][b])
        assert ps.fit_legend(tau_c, float(res.fit["beta"][b])) in texts

    saxs = drawn["saxs_1d"].axes[0]
    assert saxs.get_yscale() == "linear"  # synthetic SAXS is flat: 1.9 to 2.1
    assert "Å⁻¹" in saxs.get_xlabel()
    assert not [t.get_text() for t in saxs.xaxis.get_minorticklabels() if t.get_text()]

    intensity = drawn["intensity_vs_time"].axes[0]
    assert "counts/pixel/frame" in intensity.get_ylabel()
    assert intensity.get_xlabel() == "time (s)"
