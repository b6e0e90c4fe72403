"""numba's one-time set-up, lean in a command-line process.

The first kernel a process calls (compiled or loaded from the cache) makes
numba install its CPU target: it imports its whole library of numpy and
Python implementations. Two of those imports serve nothing our kernels do
and cost a fifth of a short command's run (2-core VM, 2026-12-08: target
set-up 0.28-0.37 s, 0.11-0.14 s without them):

* ``numba.np.arraymath`` imports ``scipy.linalg`` (0.12 s) only to learn
  whether BLAS is there for ``np.dot``/``np.linalg`` inside jitted code;
* ``numba.core.typing.cffi_utils`` imports ``cffi`` and builds an ``FFI``
  (0.07 s) to type cffi functions passed to jitted code.

No kernel uses either (their linear algebra and fits run in plain numpy and
scipy). :func:`prefer_lean_startup`, which only our console commands call,
asks :func:`start_numba` to set the target up with those two imports
answered "not installed"; the modules are importable again as soon as the
set-up is done, so a later ``import scipy.linalg`` (a fit, two-time's BLAS Gram
matrix) works as usual. What changes for the rest of that process is that
code jitted *afterwards* cannot call ``np.dot``/``np.linalg`` or cffi
functions; a library user's process is never made lean.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["BLOCKED_MODULES", "prefer_lean_startup", "start_numba"]

BLOCKED_MODULES: tuple[str, ...] = ("scipy.linalg", "cffi")
"""Modules numba's target set-up imports that the kernels never use (``import numba``
itself imports the light ``scipy`` package to check its version)."""

_lean = False
_started = False


def prefer_lean_startup() -> None:
    """Make :func:`start_numba` skip :data:`BLOCKED_MODULES` (console commands only)."""
    global _lean
    _lean = True


@contextlib.contextmanager
def _not_installed(names: tuple[str, ...]) -> Iterator[None]:
    """``import name`` raises ImportError inside the block, for names not yet imported."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "absent"
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def start_numba() -> bool:
    """Install numba's CPU target now, once per process.

    Returns
    -------
    bool
        Whether this call set it up lean (without :data:`BLOCKED_MODULES`);
        False when it was already set up, or lean start-up was not asked for.
    """
    global _started
    if _started:
        return False
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    # numba's own lock: a kernel called meanwhile in another thread (the reader's
    # SAXS) sets the target up under it too, and the two must not interleave
    with global_compiler_lock:
        if _started:
            return False
        _started = True
        lean = _lean and "numba.np.arraymath" not in sys.modules  # not set up by a kernel yet
        with _not_installed(BLOCKED_MODULES) if lean else contextlib.nullcontext():
            cpu_target.typing_context.refresh()
            cpu_target.target_context.refresh()
        return lean
