"""Run one peer code (boost_corr on CPU, scikit-beam) on one benchmark input.

This script runs in the peer environment ``.venv-bench`` (created by
``benchmarks/setup_peers.sh``), one task per process, so that each
measurement has its own peak RSS and nothing is shared with our kernel::

    .venv-bench/bin/python benchmarks/peers.py TASK SPEC_JSON

``SPEC_JSON`` is a JSON object with the input files and options (see each
task). Arrays of results (delays, g2, ...) go to the ``.npz`` file named by
``spec["out"]``; a summary (timings in seconds, versions, peak RSS in KiB)
is printed on stdout as one line starting with ``BENCH_JSON``. Everything
else the peer codes print goes to stderr.

Tasks
-----
``boost-multitau``
    boost_corr's ``MultitauCorrelator`` on CPU fed from frames held in memory
    (``spec["frames"]``: an ``.npy`` stack ``(N, H, W)``), the q-map file
    ``spec["qmap"]`` read by its ``XpcsQPartitionMap``; batches of
    ``spec["batch"]`` frames as in its ``solve_multitau`` (default 8).
``boost-twotime``
    boost_corr's ``TwotimeCorrelator`` (method "normal") on the same inputs.
``boost-cli``
    boost_corr's own command line (``spec["argv"]``), optionally with its
    HDF5 loader race fixed (``spec["patch_loader"]``).
``boost-gpu``
    boost_corr's ``MultitauCorrelator`` or ``TwotimeCorrelator`` on a GPU
    (``spec["device"]``, e.g. ``"cuda"``), fed ``spec["n_frames"]`` frames
    cycled from the chunk pool ``spec["pool"]`` (an ``.npy`` of shape
    ``(K, chunk, H, W)``, uint16): once with the pool already in device
    memory, once (multi-tau) from host memory. Used by ``benchmarks/gpu.py``.
``skbeam-multitau``
    scikit-beam's ``multi_tau_auto_corr`` with ``num_bufs`` (8) and
    ``num_levels``, labels = the static bins of the q-map; its per-static-bin
    g2 is reduced to dynamic bins (mean of the static g2 inside each dynamic
    bin, the APS convention) by the caller.

Only the standard library, numpy and h5py are imported at module level, so
the harness can also import the small helpers below.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MARKER = "BENCH_JSON "

__all__ = ["MARKER", "emit", "peak_rss_kib", "read_qmap_arrays"]


def peak_rss_kib() -> dict[str, int]:
    """Peak resident set size of this process and of its reaped children (KiB)."""
    return {
        "rss_kib": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
        "rss_children_kib": int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss),
    }


def emit(summary: dict[str, Any]) -> None:
    """Print the summary line the harness parses (after adding peak RSS)."""
    summary = {**summary, **peak_rss_kib()}
    sys.stdout.write(MARKER + json.dumps(summary) + "\n")
    sys.stdout.flush()


def read_qmap_arrays(path: str) -> dict[str, np.ndarray]:
    """The ``/qmap`` maps of a pySimpleMask q-map file (dynamic, static, mask)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {
            "dqmap": np.asarray(f["/qmap/dynamic_roi_map"][()]).astype(np.int64),
            "sqmap": np.asarray(f["/qmap/static_roi_map"][()]).astype(np.int64),
            "mask": np.asarray(f["/qmap/mask"][()]).astype(bool),
        }


def _quiet_logging() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for name in ("boost_corr", "hdf5plugin"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("boost-corr", "scikit-beam", "torch", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


# --------------------------------------------------------------- boost_corr
def _boost_finish(xb: Any, qpm: Any) -> tuple[np.ndarray, np.ndarray]:
    xb.post_process()
    _, output_multitau = xb.get_results()
    norm = qpm.normalize_multitau(output_multitau, save_G2=False)
    return np.asarray(norm["delay_list"], dtype=np.int64), np.asarray(norm["g2"], np.float64)


def task_boost_multitau(spec: dict[str, Any]) -> dict[str, Any]:
    """boost_corr multi-tau, frames already in memory (correlation alone)."""
    import torch
    from boost_corr import MultitauCorrelator
    from boost_corr.xpcs_aps_8idi.xpcs_qpartitionmap import XpcsQPartitionMap

    t0 = time.perf_counter()
    frames = np.load(spec["frames"])  # read into memory, outside the timer
    t_load = time.perf_counter() - t0
    n, h, w = frames.shape
    batch = int(spec.get("batch", 8))

    t0 = time.perf_counter()
    qpm = XpcsQPartitionMap(spec["qmap"], device="cpu", crop_ratio_threshold=0.5)
    qpm.update_rotation((h, w))
    xb = MultitauCorrelator(
        (h, w),
        frame_num=n,
        queue_size=batch,
        auto_queue=True,
        device="cpu",
        mask_crop=qpm.mask_crop,
        normalize_frame=bool(spec.get("normalize_frame", False)),
        qpm=qpm,
        max_memory=float(spec.get("max_memory", 36.0)),
    )
    t_setup = time.perf_counter() - t0
    crop = None if qpm.mask_crop is None else qpm.mask_crop.numpy()

    t0 = time.perf_counter()
    flat = frames.reshape(n, h * w)
    for start in range(0, n, batch):
        x = flat[start : start + batch].astype(np.int16)  # as its HDF5 reader does
        if crop is not None:
            x = x[:, crop]
        xb.process(torch.from_numpy(x))
    delays, g2 = _boost_finish(xb, qpm)
    t_corr = time.perf_counter() - t0
    np.savez(spec["out"], delays=delays, g2=g2)
    return {
        "timings": {"load": t_load, "setup": t_setup, "correlate": t_corr},
        "cropped": crop is not None,
        "queue": list(map(int, xb.queue_info[1:])),
    }


def task_boost_twotime(spec: dict[str, Any]) -> dict[str, Any]:
    """boost_corr two-time (Gram matrix per dynamic bin), frames in memory."""
    import torch
    from boost_corr import TwotimeCorrelator
    from boost_corr.xpcs_aps_8idi.xpcs_qpartitionmap import XpcsQPartitionMap

    frames = np.load(spec["frames"])  # read into memory (a memmap would page in during the timer)
    n, h, w = frames.shape
    t0 = time.perf_counter()
    # crop_ratio_threshold > 1 forces the sorted pixel crop its two-time path needs.
    qpm = XpcsQPartitionMap(spec["qmap"], device="cpu", flag_sort=True, crop_ratio_threshold=1.01)
    qpm.update_rotation((h, w))
    tt = TwotimeCorrelator(
        qpm.qinfo,
        frame_num=n,
        det_size=(h, w),
        method="normal",
        mask_crop=qpm.mask_crop,
        window=1024,
        device="cpu",
    )
    t_setup = time.perf_counter() - t0
    crop = qpm.mask_crop.numpy()
    t0 = time.perf_counter()
    flat = frames.reshape(n, h * w)
    for start in range(0, n, 8):
        tt.process(torch.from_numpy(flat[start : start + 8][:, crop].astype(np.int16)))
    tt.post_processing(smooth_method=spec.get("smooth", "dqmap"))
    c2_maps: list[np.ndarray] = []
    results: dict[str, Any] = {}
    for payload in tt.get_twotime_generator():
        for key, value in payload.items():
            if key.startswith("correlation_map/"):
                c2_maps.append(np.asarray(value))
            else:
                results[key] = value
    t_corr = time.perf_counter() - t0
    keep = [int(b) for b in spec.get("keep_c2", [0])]
    np.savez(
        spec["out"],
        g2=np.asarray(results["c2_g2"], np.float64),  # (N, n_dq), delay = row index
        processed_bins=np.asarray(results["processed_bins"], np.int64),
        c2_kept=np.stack([c2_maps[b] for b in keep if b < len(c2_maps)]),
        c2_kept_bins=np.asarray([b for b in keep if b < len(c2_maps)], np.int64),
    )
    return {"timings": {"setup": t_setup, "correlate": t_corr}, "n_bins": len(c2_maps)}


def task_boost_cli(spec: dict[str, Any]) -> dict[str, Any]:
    """boost_corr's command line (``boost_corr ARGV``) in this process.

    With ``spec["patch_loader"]`` its HDF5 reader returns a copy of each batch
    instead of a view of a buffer it reuses: with DataLoader workers (its
    default for HDF5 input, 16) the shipped reader lets a worker overwrite a
    batch before it has been sent, which corrupts frames at random (see
    ``benchmarks/README.md``).
    """
    logging.getLogger().setLevel(logging.INFO)  # its "correlation finished in" line
    if spec.get("patch_loader"):
        from boost_corr.xpcs_aps_8idi.dataset import hdf_handler

        shipped = hdf_handler.HdfDataset.__getbatch__

        def getbatch_copy(self: Any, idx: int) -> Any:
            return shipped(self, idx).clone()

        hdf_handler.HdfDataset.__getbatch__ = getbatch_copy
    from boost_corr.cli import main as boost_main

    sys.argv = ["boost_corr", *spec["argv"]]
    rc = boost_main()
    if rc:
        raise SystemExit(rc)
    return {"timings": {}}


def task_boost_gpu(spec: dict[str, Any]) -> dict[str, Any]:
    """boost_corr's GPU path on frames cycled from a chunk pool (device and host fed)."""
    import torch
    from boost_corr import MultitauCorrelator, TwotimeCorrelator
    from boost_corr.xpcs_aps_8idi.xpcs_qpartitionmap import XpcsQPartitionMap

    device = str(spec["device"])
    pool = np.load(spec["pool"])
    k, chunk, h, w = pool.shape
    n = int(spec["n_frames"])
    twotime = spec["mode"] == "twotime"
    threshold = 1.01 if twotime else 0.5  # > 1: the sorted crop its two-time path needs
    qpm = XpcsQPartitionMap(
        spec["qmap"], device=device, flag_sort=twotime, crop_ratio_threshold=threshold
    )
    qpm.update_rotation((h, w))
    crop = None if qpm.mask_crop is None else qpm.mask_crop.numpy()
    flat = [c.reshape(chunk, h * w) for c in pool]
    cropped = [f[:, crop] if crop is not None else f for f in flat]
    host = [torch.from_numpy(f.astype(np.int16)) for f in cropped]  # as its HDF5 reader
    on_device = [x.to(device) for x in host]

    def run(batches: list[Any]) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        if twotime:
            xb = TwotimeCorrelator(
                qpm.qinfo, frame_num=n, det_size=(h, w), method="normal",
                mask_crop=qpm.mask_crop, window=1024, device=device,
            )  # fmt: skip
        else:
            xb = MultitauCorrelator(
                (h, w), frame_num=n, queue_size=chunk, auto_queue=True, device=device,
                mask_crop=qpm.mask_crop, qpm=qpm, max_memory=float(spec.get("max_memory", 36.0)),
            )  # fmt: skip
        for i in range(n // chunk):
            xb.process(batches[i % k].to(device, non_blocking=True))
        if twotime:
            xb.post_processing(smooth_method="sqmap")
            for _ in xb.get_twotime_generator():
                pass
        else:
            _boost_finish(xb, qpm)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    torch.cuda.reset_peak_memory_stats()
    timings = {"device": run(on_device)}
    if not twotime:
        timings["host"] = run(host)
    return {
        "timings": timings,
        "n_frames": n // chunk * chunk,
        "peak_device_bytes": int(torch.cuda.max_memory_allocated()),
        "device_name": torch.cuda.get_device_name(),
    }


# -------------------------------------------------------------- scikit-beam
def task_skbeam_multitau(spec: dict[str, Any]) -> dict[str, Any]:
    """scikit-beam multi-tau on per-static-bin labels, frames in memory."""
    from skbeam.core.correlation import multi_tau_auto_corr

    frames = np.load(spec["frames"])  # read into memory (a memmap would page in during the timer)
    maps = read_qmap_arrays(spec["qmap"])
    labels = np.where(maps["mask"], maps["sqmap"], 0).astype(np.int64)
    # scikit-beam wants compact labels 1..n; keep the mapping to the q-map's.
    present = np.unique(labels[labels > 0])
    compact = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    compact[present] = np.arange(1, present.size + 1)
    t0 = time.perf_counter()
    g2, lags = multi_tau_auto_corr(
        int(spec["num_levels"]), int(spec.get("num_bufs", 8)), compact[labels], frames
    )
    t_corr = time.perf_counter() - t0
    np.savez(
        spec["out"],
        delays=np.asarray(lags, dtype=np.int64),
        g2_static=np.asarray(g2, np.float64),
        static_labels=present,
    )
    return {"timings": {"correlate": t_corr}}


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "boost-cli": task_boost_cli,
    "boost-gpu": task_boost_gpu,
    "boost-multitau": task_boost_multitau,
    "boost-twotime": task_boost_twotime,
    "skbeam-multitau": task_skbeam_multitau,
}


def main(argv: list[str] | None = None) -> int:
    """Run ``TASK SPEC_JSON`` and print the ``BENCH_JSON`` summary line."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in TASKS:
        sys.stderr.write(f"usage: peers.py {{{','.join(TASKS)}}} SPEC_JSON\n")
        return 2
    _quiet_logging()
    spec = json.loads(argv[1])
    t0 = time.perf_counter()
    summary = TASKS[argv[0]](spec)
    summary["wall_in_process"] = time.perf_counter() - t0
    summary["versions"] = _versions()
    emit(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
