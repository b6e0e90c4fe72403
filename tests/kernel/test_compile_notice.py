"""The first-run notice: cold numba caches are found without compiling, and the user
sees "compiling kernels (first run, about N s)..." (a spinner on a terminal, one line
elsewhere, nothing once the cache is warm)."""

from __future__ import annotations

import importlib
import io
import time
import uuid
from pathlib import Path

import pytest

from xpcs_kernel.compile_notice import (
    CompileNotice,
    KernelCacheState,
    announce_first_run,
    kernel_cache_state,
)

_MODULE = """
import numba

@numba.njit(cache=True)
def add_one(x):
    return x + 1

@numba.njit(cache=True)
def twice(x):
    return 2 * x

def plain(x):
    return x
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"pkg_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "kernels.py").write_text(_MODULE)
    (root / "other.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    return name


def test_cold_then_warm_after_the_first_call(package: str) -> None:
    state = kernel_cache_state(package)
    assert state.cached == (f"{package}.kernels.add_one", f"{package}.kernels.twice")
    assert state.cold == state.cached
    assert state.first_run
    assert state.estimate_s == 10.0  # 2 kernels x 4 s, rounded up to 10 s

    kernels = importlib.import_module(f"{package}.kernels")
    assert kernels.add_one(1) == 2  # compiles and writes the on-disk cache
    state = kernel_cache_state(package)
    assert state.cold == (f"{package}.kernels.twice",)
    assert not state.first_run  # half cold is not a first run
    assert kernels.twice(2) == 4
    assert kernel_cache_state(package).cold == ()
    assert kernel_cache_state(package).estimate_s == 0.0


def test_announce_first_run_prints_one_line_only_when_cold(package: str) -> None:
    out = io.StringIO()
    announce_first_run(out, where=" (the run starts with that)", package=package)
    assert out.getvalue() == (
        "compiling kernels (first run, about 10 s)... (the run starts with that)\n"
    )
    kernels = importlib.import_module(f"{package}.kernels")
    kernels.add_one(1)
    kernels.twice(1)
    out = io.StringIO()
    announce_first_run(out, package=package)
    assert out.getvalue() == ""


COLD = KernelCacheState(cached=("a", "b", "c"), cold=("a", "b", "c"))


def test_notice_is_one_plain_line_off_a_terminal() -> None:
    out = io.StringIO()
    with CompileNotice(stream=out, state=COLD) as notice:
        time.sleep(0.05)
    assert notice.active
    assert out.getvalue() == "compiling kernels (first run, about 20 s)...\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_notice_spins_on_a_terminal_and_clears_its_line() -> None:
    out = _Terminal()
    with CompileNotice(stream=out, state=COLD, interval=0.01):
        time.sleep(0.15)
    text = out.getvalue()
    assert text.startswith("| compiling kernels (first run, about 20 s)...")
    assert text.count("\r") >= 3  # redrawn with the elapsed seconds
    assert "/ compiling kernels" in text
    assert text.endswith("\r\033[K")


def test_notice_says_nothing_when_warm() -> None:
    out = _Terminal()
    warm = KernelCacheState(cached=("a", "b"), cold=())
    with CompileNotice(stream=out, state=warm) as notice:
        pass
    assert not notice.active
    assert out.getvalue() == ""
