"""End a command-line process without the interpreter's teardown.

A process that has loaded numba's compiled kernels spends 0.15-0.2 s after
its last statement tearing down modules and LLVM (measured on the 2-core VM:
``xpcs-flows correlate`` on 256x256 x 2000 frames, 1.0 s -> 0.8 s). A command
line does not need that teardown, so the console entry points end with
:func:`exit_process`: it shuts down the correlator's worker threads, runs the
``atexit`` handlers (logging, h5py, multiprocessing), flushes the standard
streams and calls :func:`os._exit`. When any other non-daemon thread is
still running it falls back to :func:`sys.exit`, so the interpreter waits
for that thread as usual. Library calls and tests never use it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

__all__ = ["exit_process"]


def exit_process(code: int) -> NoReturn:
    """End the process with exit status ``code`` (see the module docstring)."""
    feed = sys.modules.get("xpcs_kernel.multitau.feed")  # loaded only if it was used
    if feed is not None:
        feed.shutdown_shared_pool()
    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(code)  # somebody's work is in flight: the normal shutdown waits for it
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # a closed stream or a broken pipe: nothing more can be said
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
