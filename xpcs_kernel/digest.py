"""SHA-256 of files: the provenance of a run's inputs, computed beside the run.

A result file records the sha256 of its raw file and q-map. For a 120 MB
raw file that is 0.1-0.15 s of one core (2-core VM), so it never runs in a
run's critical path: :func:`correlate_file` hashes in a thread while it
reads and correlates, and the ``correlate`` command starts the hash even
earlier, with :func:`start_sha256`, before it imports numba and the kernels
(0.3-0.4 s during which the second core is otherwise idle). hashlib and
file reads release the GIL, so the hash overlaps Python work.
:func:`start_in_thread` is the one helper for such work beside a run (the
pipeline also touches a streamed run's state with it while kernels load).

This module imports nothing beyond the standard library.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["sha256_file", "start_in_thread", "start_sha256"]

T = TypeVar("T")

_BLOCK = 8 * 2**20


def sha256_file(path: str | os.PathLike[str], *, block: int = _BLOCK) -> str:
    """Hex sha256 of a file, read in blocks of ``block`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def start_in_thread(task: Callable[[], T], *, name: str) -> concurrent.futures.Future[T]:
    """Run ``task`` in a daemon thread, started now; its future holds the result.

    The future holds what ``task`` returned, or the exception it raised. The
    thread is a daemon: a process that exits before it is done (a failed
    run) is not kept waiting for it.
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(task())
        except BaseException as err:  # whatever it is, the waiter gets it and never hangs
            future.set_exception(err)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


def start_sha256(path: str | os.PathLike[str]) -> concurrent.futures.Future[str]:
    """:func:`sha256_file` of ``path`` in a daemon thread, started now (see
    :func:`start_in_thread`)."""
    return start_in_thread(lambda: sha256_file(path), name="xpcs-hash")
