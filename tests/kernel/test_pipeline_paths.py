"""Every path of a run computes the same thing: streamed = eager = sparse
(uint8 and uint16), SAXS folded into the reader = SAXS alone, the three run
steps = ``correlate_file``, and compilation is timed apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpcs_kernel.errors import UsageError
from xpcs_kernel.io import write_hdf5_frames
from xpcs_kernel.multitau import MultiTauCorrelator, PixelBins, multitau
from xpcs_kernel.multitau import sink as multitau_sink
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file, sha256_file
from xpcs_kernel.pipeline.run import finish_run, prepare_run, stream_run
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.result import read_result
from xpcs_kernel.saxs import saxs
from xpcs_kernel.saxs.kernels import accumulate_chunk
from xpcs_kernel.synthetic import SyntheticSpec, synthesize
from xpcs_kernel.warmup import kernels as kernel_warmup


def _data(dtype: str, *, n_frames: int = 400, mean: float = 2.0) -> tuple[Any, np.ndarray]:
    spec = SyntheticSpec(
        n_frames=n_frames,
        shape=(24, 40),
        beta=0.25,
        mean_count=mean,
        n_dynamic_q=3,
        n_static_q=9,
        tau_c_range=(2.0, 30.0),
        frame_time=1e-3,
        seed=11,
        dtype=dtype,
    )
    truth, frames = synthesize(spec)
    return truth, frames


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_streamed_eager_and_sparse_multitau_agree(dtype: str) -> None:
    truth, frames = _data(dtype, mean=0.3)
    qm = truth.qmap
    bins = PixelBins(qm.static_index, qm.dynamic_of_static, qm.n_dynamic)
    flat = frames.reshape(frames.shape[0], -1)
    assert flat.dtype == np.dtype(dtype)
    eager = multitau(flat, bins, pixel_index=qm.pixel_index, path="dense")
    sparse = multitau(flat, bins, pixel_index=qm.pixel_index, path="sparse")
    corr = MultiTauCorrelator(flat.shape[1], pixel_index=qm.pixel_index)
    for f0 in range(0, flat.shape[0], 37):  # chunks that do not align with levels
        corr.feed(flat[f0 : f0 + 37])
    streamed = corr.g2(bins)
    assert np.all(np.isfinite(eager.g2))
    assert eager.g2.mean() > 1.01  # a real correlation, not all ones
    np.testing.assert_allclose(streamed.g2, eager.g2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sparse.g2, eager.g2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(streamed.g2_err, eager.g2_err, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("paths")
    out: dict[str, Any] = {"tmp": tmp}
    for dtype in ("uint8", "uint16"):
        truth, frames = _data(dtype)
        raw = tmp / f"raw_{dtype}.h5"
        write_hdf5_frames(raw, frames, compression="lz4")
        out[dtype] = (raw, frames)
        out["qmap_obj"] = truth.qmap
    qmap = tmp / "qmap.h5"
    write_qmap(qmap, out["qmap_obj"])
    out["qmap"] = qmap
    return out


def _options(**kw: Any) -> CorrelationOptions:
    base: dict[str, Any] = {"frame_time": 1e-3, "fit": False, "chunk_frames": 64}
    base.update(kw)
    return CorrelationOptions(**base)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_run_in_memory_streamed_and_sparse_agree(
    dtype: str, run_files: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, frames = run_files[dtype]
    qmap = run_files["qmap"]
    in_mem = read_result(correlate_file(raw, qmap, tmp_path / "a.h5", options=_options()).output)
    sparse = read_result(
        correlate_file(raw, qmap, tmp_path / "s.h5", options=_options(path="sparse")).output
    )
    monkeypatch.setattr(multitau_sink, "IN_MEMORY_BYTES", 0)  # every chunk streams
    streamed = read_result(correlate_file(raw, qmap, tmp_path / "b.h5", options=_options()).output)
    assert in_mem.g2 is not None
    assert streamed.g2 is not None
    assert sparse.g2 is not None
    assert in_mem.g2.mean() > 1.01
    np.testing.assert_allclose(streamed.g2, in_mem.g2, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sparse.g2, in_mem.g2, rtol=0, atol=1e-6)
    # SAXS folded into the reader thread = SAXS of the whole stack on its own
    # (to the result file's float32)
    alone = saxs(frames, run_files["qmap_obj"])
    for res in (in_mem, streamed, sparse):
        np.testing.assert_allclose(res.saxs_2d, alone.saxs_2d, rtol=1e-6, atol=0)
        np.testing.assert_allclose(res.saxs_1d, alone.saxs_1d, rtol=1e-6, atol=0)
        np.testing.assert_allclose(res.saxs_1d_segments, alone.saxs_1d_segments, rtol=1e-6, atol=0)


def test_threaded_saxs_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    flat = rng.integers(0, 1000, size=(20, 70_001)).astype(np.uint16)  # > one thread's share
    valid = (rng.random(flat.shape[1]) > 0.3).astype(np.float64)
    sums = np.full(flat.shape[1], 2.0)
    totals = accumulate_chunk(flat, valid, sums)
    np.testing.assert_array_equal(sums, 2.0 + flat.sum(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(totals, (flat * valid).sum(axis=1))


def test_steps_equal_correlate_file_and_time_compile_apart(
    run_files: dict[str, Any], tmp_path: Path
) -> None:
    import concurrent.futures
    import contextlib
    import time

    raw, _ = run_files["uint16"]
    qmap = run_files["qmap"]
    opts = _options(fit=True)
    whole = correlate_file(raw, qmap, tmp_path / "whole.h5", options=opts)
    with (
        concurrent.futures.ThreadPoolExecutor(1) as hasher,
        contextlib.ExitStack() as stack,
    ):
        run = prepare_run(raw, qmap, opts, hasher=hasher, stack=stack, hash_file=sha256_file)
        assert run.n_out == 400
        assert not run.use_sparse
        seen: list[tuple[int, int]] = []
        streamed = stream_run(run, lambda done, total: seen.append((done, total)))
        assert seen[-1] == (400, 400)
        assert len(seen) == 7
        steps = finish_run(
            run,
            streamed,
            tmp_path / "steps.h5",
            hash_file=sha256_file,
            t_start=time.perf_counter(),
        )
    a, b = read_result(whole.output), read_result(steps.output)
    assert a.g2 is not None
    assert b.g2 is not None
    np.testing.assert_array_equal(a.g2, b.g2)
    assert [r["gamma"] for r in whole.fit] == [r["gamma"] for r in steps.fit]
    for summary in (whole, steps):
        assert {"compile", "read", "saxs", "correlate", "fit", "write", "total"} <= set(
            summary.timings
        )
        assert summary.timings["compile"] >= 0.0


def test_warm_kernels_once_per_process_and_checks_dtypes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = kernel_warmup._warm_one

    def counting(dt: np.dtype[Any], **kw: Any) -> None:
        calls.append(dt.str)
        real(dt, **kw)

    monkeypatch.setattr(kernel_warmup, "_warm_one", counting)
    monkeypatch.setattr(kernel_warmup, "_WARMED", set())
    assert kernel_warmup.warm_kernels(["uint8", ">u2"]) >= 0.0
    kernel_warmup.warm_kernels(np.uint16)  # already done (native order of >u2)
    assert calls == ["|u1", "<u2"] if np.little_endian else ["|u1", ">u2"]
    with pytest.raises(UsageError, match="dtypes"):
        kernel_warmup.warm_kernels("complex64")
    with pytest.raises(UsageError, match="dtypes"):
        kernel_warmup.warm_kernels("not-a-dtype")


def test_a_run_warms_the_bright_event_path_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Event sums above 255 use uint16 rows: ``warmup`` prepares them, a run does not load them."""
    largest: list[int] = []
    real = MultiTauCorrelator.feed_sparse

    def spy(self: MultiTauCorrelator, n: int, indptr: Any, pixels: Any, counts: Any) -> None:
        largest.append(int(np.max(counts)))
        real(self, n, indptr, pixels, counts)

    monkeypatch.setattr(MultiTauCorrelator, "feed_sparse", spy)
    monkeypatch.setattr(kernel_warmup, "_WARMED", set())
    kernel_warmup.warm_for_run(np.dtype(np.uint16), sink=None, sparse=True, twotime=False)
    assert largest
    assert max(largest) <= 255  # uint8 rows only
    largest.clear()
    kernel_warmup.warm_kernels("uint16", sparse=True)
    assert max(largest) > 255  # the switch to uint16 rows too


def test_warmup_command_fills_the_cache_dir(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    args = ["warmup", "--dtype", "uint8", "--no-sparse", "--no-twotime", "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "xpcs_kernel", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dtypes"] == ["uint8"]
    assert report["cache"] == str(cache)
    index_files = [p.name for p in cache.rglob("*.nbi")]
    # the dense feed, the SAXS pass and the g2 binning were compiled into it
    assert any(name.startswith("dense.") for name in index_files), index_files
    assert any(name.startswith("kernels.") for name in index_files), index_files


def _compiled_signatures() -> set[tuple[str, object]]:
    # every numba kernel of the kernel package's loaded modules (a scan of all
    # live objects would also touch other libraries' deprecated objects)
    import sys

    from numba.core.registry import CPUDispatcher

    return {
        (f"{o.py_func.__module__}.{o.py_func.__qualname__}", sig)
        for name, module in list(sys.modules.items())
        if name.startswith("xpcs_kernel") and module is not None
        for o in vars(module).values()
        if isinstance(o, CPUDispatcher)
        for sig in o.signatures
    }


def test_after_warm_kernels_a_run_compiles_nothing(
    run_files: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``warmup`` compiles is what runs call: nothing is left for the first run."""
    from xpcs_kernel.io import write_imm, write_rigaku

    raw, frames = run_files["uint16"]
    imm = write_imm(tmp_path / "raw.imm", frames, sparse=True)
    rigaku = write_rigaku(tmp_path / "raw.bin", frames)
    kernel_warmup.warm_kernels("uint16", sparse=True, twotime=True)
    before = _compiled_signatures()
    qmap = run_files["qmap"]
    correlate_file(raw, qmap, tmp_path / "a.h5", options=_options())
    correlate_file(imm, qmap, tmp_path / "b.h5", options=_options(path="sparse", mode="both"))
    correlate_file(rigaku, qmap, tmp_path / "d.h5", options=_options(path="sparse"))
    monkeypatch.setattr(multitau_sink, "IN_MEMORY_BYTES", 0)
    correlate_file(raw, qmap, tmp_path / "c.h5", options=_options(mode="both"))
    assert _compiled_signatures() - before == set()


def test_shared_pool_never_shuts_down_under_a_holder() -> None:
    """SAXS (reader thread) and the correlator (main thread) share one pool."""
    from xpcs_kernel.multitau.feed import shared_pool, shutdown_shared_pool, worker_threads

    shutdown_shared_pool()
    try:
        first = shared_pool(1)
        assert shared_pool(worker_threads()) is first  # sized for every CPU at once
        bigger = shared_pool(worker_threads() + 2)
        assert bigger is not first
        assert first.submit(lambda: 41 + 1).result() == 42  # still usable by its holder
    finally:
        shutdown_shared_pool()
