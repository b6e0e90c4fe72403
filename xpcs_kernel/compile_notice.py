"""Saying so while numba compiles the kernels on a first run.

The kernels are numba functions cached on disk (``cache=True``). On a fresh
install, or after the sources changed, the first correlation compiles them
first, which takes tens of seconds on a small machine. :func:`cold_kernels`
finds the cached kernels without a usable on-disk cache (no index file, or
one older than the module's source), without compiling anything;
:class:`CompileNotice` shows ``compiling kernels (first run, about N s)...``
while that happens: a spinner with the elapsed seconds on a terminal, one
plain line otherwise, nothing when the cache is warm.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

__all__ = [
    "SECONDS_PER_KERNEL",
    "CompileNotice",
    "KernelCacheState",
    "announce_first_run",
    "cold_kernels",
    "first_run_message",
    "kernel_cache_state",
]

#: Rough compile time of one kernel on a 2-core machine (the estimate shown to the user).
SECONDS_PER_KERNEL = 4.0

_SPIN = "|/-\\"


def _cached_kernels(source: str) -> list[tuple[str, int]]:
    """``(name, first line)`` of the top-level functions decorated with ``...(cache=True...)``.

    The first line is the first decorator's: numba's ``co_firstlineno``, part
    of the cache index's name.
    """
    out = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or not node.decorator_list:
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and any(
                kw.arg == "cache" and isinstance(kw.value, ast.Constant) and kw.value.value is True
                for kw in deco.keywords
            ):
                out.append((node.name, min(d.lineno for d in node.decorator_list)))
                break
    return out


def _index_dir(source: Path) -> Path | None:
    """Where numba keeps the cache index of kernels defined in ``source`` (its own locators)."""
    try:
        from numba.core import caching

        impl: Any = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")  # noqa: B009
        for locator_class in impl._locator_classes:
            # the locators read only the function's code object (its first line)
            locator = locator_class.from_function(_index_dir, str(source))
            if locator is not None:
                return Path(locator.get_cache_path())
    except Exception:  # numba changed its internals: say nothing rather than guess
        return None
    return None


def _is_cold(index_dir: Path, source: Path, name: str, line: int) -> bool:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
    index = index_dir / f"{source.stem}.{name}-{line}.{tag}.nbi"
    try:
        return index.stat().st_mtime < source.stat().st_mtime
    except FileNotFoundError:
        return True


@dataclass(frozen=True)
class KernelCacheState:
    """The on-disk cache of the kernels.

    Attributes
    ----------
    cached
        Qualified names of every kernel compiled with ``cache=True``.
    cold
        Those that will be compiled on their next call.
    """

    cached: tuple[str, ...]
    cold: tuple[str, ...]

    @property
    def first_run(self) -> bool:
        """Most kernels are cold: a fresh install (or fresh sources) compiles before correlating.

        Kernels only some inputs need (IMM decoding, sparse events) may stay
        cold for good; a few cold ones do not make a first run.
        """
        return len(self.cold) * 2 > len(self.cached)

    @property
    def estimate_s(self) -> float:
        """About how long compiling the cold kernels takes (seconds, rounded up to 10 s)."""
        if not self.cold:
            return 0.0
        return float(10 * math.ceil(len(self.cold) * SECONDS_PER_KERNEL / 10))


def kernel_cache_state(package: str = "xpcs_kernel") -> KernelCacheState:
    """Which cached numba kernels of ``package`` have no usable on-disk cache.

    Nothing is compiled and no module of ``package`` is imported: the sources
    are parsed for ``cache=True`` kernels and numba's cache index files are
    looked up where numba's own locators put them.
    """
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or ()) if spec is not None else []
    cached: list[str] = []
    cold: list[str] = []
    for root in map(Path, roots):
        for source in sorted(root.rglob("*.py")):
            text = source.read_text(encoding="utf-8", errors="replace")
            if "cache=True" not in text:
                continue
            kernels = _cached_kernels(text)
            index_dir = _index_dir(source) if kernels else None
            if index_dir is None:
                continue
            module = ".".join([package, *source.relative_to(root).with_suffix("").parts])
            for name, line in kernels:
                cached.append(f"{module}.{name}")
                if _is_cold(index_dir, source, name, line):
                    cold.append(f"{module}.{name}")
    return KernelCacheState(tuple(sorted(cached)), tuple(sorted(cold)))


def cold_kernels(package: str = "xpcs_kernel") -> tuple[str, ...]:
    """The kernels of ``package`` that the next correlation compiles first."""
    return kernel_cache_state(package).cold


def first_run_message(state: KernelCacheState) -> str:
    """``compiling kernels (first run, about N s)...``."""
    return f"compiling kernels (first run, about {state.estimate_s:.0f} s)..."


def announce_first_run(
    stream: TextIO | None = None, *, where: str = "", package: str = "xpcs_kernel"
) -> KernelCacheState:
    """Print the first-run line once (plain, for callers with their own progress display).

    ``where`` is appended (e.g. ``" (the run starts with that)"``). Returns the
    cache state of ``package``'s kernels.
    """
    state = kernel_cache_state(package)
    if state.first_run:
        out = stream if stream is not None else sys.stderr
        out.write(first_run_message(state) + where + "\n")
        out.flush()
    return state


class CompileNotice:
    """Show that the kernels compile while a block runs (only when the cache is cold).

    Use as a context manager around the first correlation. On a terminal a
    spinner line ``compiling kernels (first run, about N s)... 12 s`` is
    redrawn until the block ends, then cleared; elsewhere the line is printed
    once. Nothing is shown unless :attr:`KernelCacheState.first_run`.

    Parameters
    ----------
    stream
        Where to write (default ``sys.stderr``).
    state
        The cache state (default: :func:`kernel_cache_state` now).
    interval
        Seconds between spinner redraws.
    """

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        state: KernelCacheState | None = None,
        interval: float = 0.25,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.state = state if state is not None else kernel_cache_state()
        self.interval = interval
        self.active = self.state.first_run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    @property
    def message(self) -> str:
        """``compiling kernels (first run, about N s)...``."""
        return first_run_message(self.state)

    def _is_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _spin(self) -> None:
        i = 0
        while not self._stop.wait(self.interval):
            elapsed = time.monotonic() - self._t0
            self.stream.write(f"\r{_SPIN[i % len(_SPIN)]} {self.message} {elapsed:.0f} s")
            self.stream.flush()
            i += 1

    def __enter__(self) -> CompileNotice:
        if not self.active:
            return self
        self._t0 = time.monotonic()
        if self._is_terminal():
            self.stream.write(f"{_SPIN[0]} {self.message}")
            self.stream.flush()
            self._thread = threading.Thread(target=self._spin, name="compile-notice", daemon=True)
            self._thread.start()
        else:
            self.stream.write(self.message + "\n")
            self.stream.flush()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r\033[K")  # clear the spinner line
            self.stream.flush()
            self._thread = None
