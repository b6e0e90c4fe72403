"""One correlation run on files: read raw frames and a q-map, correlate,
reduce, fit and write the APS result file.

This is what the Globus Compute function calls on an endpoint, what
``xpcs-flows correlate`` and ``python -m xpcs_kernel correlate`` run, and
what the local engine runs. Frames stream through in chunks (the next chunk
is read in a background thread while the current one is correlated), so
memory does not grow with the number of frames.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable

from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline.run import finish_run, prepare_run, stream_run
from xpcs_kernel.pipeline.summary import CorrelationSummary, sha256_file
from xpcs_kernel.qmap import QMap

__all__ = ["CorrelationSummary", "ProgressCallback", "correlate_file", "sha256_file"]

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(frames_done, frames_total)`` after every chunk."""


def correlate_file(
    raw: str | os.PathLike[str],
    qmap: str | os.PathLike[str] | QMap,
    output: str | os.PathLike[str],
    *,
    options: CorrelationOptions | None = None,
    progress: ProgressCallback | None = None,
    raw_sha256: concurrent.futures.Future[str] | None = None,
) -> CorrelationSummary:
    """Correlate one raw dataset and write the APS result file.

    Parameters
    ----------
    raw
        Raw frames: HDF5 (plain or compressed), IMM or Rigaku ``.bin``.
    qmap
        A q-map file (pySimpleMask or legacy layout) or a :class:`QMap`.
    output
        The result file. It appears atomically: written under a temporary
        name and renamed when complete.
    options
        What to compute (:class:`CorrelationOptions`).
    progress
        Called after every chunk with ``(frames_done, frames_total)``.
    raw_sha256
        The sha256 of ``raw``, already being computed
        (:func:`xpcs_kernel.digest.start_sha256`; the ``correlate`` command
        starts it before its imports); default: hashed during the run.

    Returns
    -------
    CorrelationSummary
        Paths, sizes, timings, throughput and fitted rates. ``timings`` (s):
        ``compile`` (numba compiling or loading the run's kernels, apart from
        the rest), ``read`` (waiting for the reader thread), ``saxs`` (SAXS
        and normalisation of each chunk), ``correlate``, ``twotime``,
        ``fit``, ``write`` and ``total``.
    """
    opts = options or CorrelationOptions()
    if opts.backend == "auto":  # decided here, where the run runs; the result records it
        from xpcs_kernel.torch_backend.device import choose_backend

        opts = dataclasses.replace(opts, backend=choose_backend(opts.device))  # type: ignore[arg-type]
    if opts.backend == "torch":  # the GPU backend has its own driver (imports torch)
        from xpcs_kernel.pipeline.torch_run import correlate_file_torch

        return correlate_file_torch(
            raw, qmap, output, options=opts, progress=progress, raw_sha256=raw_sha256
        )
    t_start = time.perf_counter()
    with (
        concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xpcs-hash") as hasher,
        contextlib.ExitStack() as stack,
    ):
        run = prepare_run(
            raw,
            qmap,
            opts,
            hasher=hasher,
            stack=stack,
            hash_file=sha256_file,
            raw_sha256=raw_sha256,
        )
        streamed = stream_run(run, progress)
        return finish_run(run, streamed, output, hash_file=sha256_file, t_start=t_start)
