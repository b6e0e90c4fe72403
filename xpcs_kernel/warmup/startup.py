"""numba's one-time set-up, lean in a command-line process.

The first kernel a process calls makes numba *refresh* its CPU target: it
imports and registers its whole library of numpy and Python implementations
(``numba.np.arraymath``, ``numba.cpython.*``, ... and, through them,
``scipy.linalg`` and ``cffi``). numba does this even when the kernel comes
from the on-disk cache (``Cache.load_overload`` refreshes "to ensure it is
initialized"), although machine code loaded from the cache needs none of it:
only the runtime's memory functions (NRT), which compiled code calls.

:func:`prefer_lean_startup`, which only our console commands call, makes
:func:`start_numba` skip that refresh for kernels loaded from the cache: a
cache hit initialises the NRT and loads the machine code. A kernel that must
be compiled (an empty or stale cache) goes through numba's compiler, which
refreshes the target in full itself, so compiled code is what numba always
makes, and code jitted later in the process (``np.dot``, cffi) works as usual.
On the 2-core VM (2026-12-08) the refresh took 0.27-0.30 s with scipy and cffi
imported, 0.11-0.14 s without them (the lean set-up before this one); without
it, the NRT's set-up takes 0.03 s, and the SAXS kernel of a run then loads in
0.04 s in all (uint16 256x256 x 2000 command, ten alternating runs: median
0.95 -> 0.84 s). A library user's process is never made lean.

The lean load replaces ``numba.core.caching.Cache.load_overload`` for the
process. It relies on two private methods of that class (numba 0.68 has
them; ``tests/kernel/test_startup.py`` checks that cached kernels load lean);
if a numba release lacks them, :func:`start_numba` refreshes the usual way.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["prefer_lean_startup", "start_numba"]

_lean = False
_started = False


def prefer_lean_startup() -> None:
    """Make :func:`start_numba` load cached kernels without numba's target refresh
    (console commands only)."""
    global _lean
    _lean = True


def _load_without_refresh(self: Any, sig: Any, target_context: Any) -> Any:
    """``Cache.load_overload`` less the target refresh: the NRT is what loaded code needs."""
    from numba.core.runtime.nrt import rtsys

    rtsys.initialize(target_context)  # once per process; the caller holds numba's lock
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
    # None when the guard swallowed a spurious I/O error: numba then compiles


def _install_lean_cache_load() -> bool:
    """Make cache hits skip the target refresh; False if this numba cannot."""
    from numba.core import caching

    cache = caching.Cache
    if not (
        callable(getattr(cache, "_load_overload", None))
        and callable(getattr(cache, "_guard_against_spurious_io_errors", None))
    ):
        return False
    cache.load_overload = _load_without_refresh  # type: ignore[method-assign]
    return True


def start_numba() -> bool:
    """Set numba's CPU target up for this process, once.

    In a lean process (:func:`prefer_lean_startup`) cached kernels then load
    without the target refresh; otherwise the target is refreshed now, as
    numba would do on the first kernel call.

    Returns
    -------
    bool
        Whether this call made the process lean; False when it was already
        started, lean start-up was not asked for, a kernel had already set
        the target up, or this numba lacks what the lean load relies on.
    """
    global _started
    if _started:
        return False
    from numba.core.compiler_lock import global_compiler_lock

    # numba's own lock: a kernel called meanwhile in another thread (the reader's
    # SAXS) loads under it too, and the two must not interleave
    with global_compiler_lock:
        if _started:
            return False
        _started = True
        refreshed = "numba.np.arraymath" in sys.modules  # a kernel already set the target up
        if _lean and not refreshed and _install_lean_cache_load():
            return True
        from numba.core.registry import cpu_target

        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
        return False
