"""Start-up of a command process: numba's lean set-up, and the early input hash."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from flows.cli import main as cli_main
from xpcs_kernel.digest import sha256_file, start_sha256
from xpcs_kernel.io import write_hdf5_frames
from xpcs_kernel.options import CorrelationOptions
from xpcs_kernel.pipeline import correlate_file
from xpcs_kernel.qmap import write_qmap
from xpcs_kernel.synthetic import SyntheticSpec, synthesize

# Kernels cached on disk, as ours are; the scripts run in fresh interpreters
# (numba's target is set up once per process) sharing one NUMBA_CACHE_DIR.
KERNELS = """
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def total(a):
    s = 0
    for v in a:
        s += v
    return s


@numba.njit(cache=True, parallel=True)
def row_sums(a):
    out = np.empty(a.shape[0])
    for i in numba.prange(a.shape[0]):
        out[i] = a[i].sum()
    return out
"""

START = """
import json, sys, threading
import numpy as np
from xpcs_kernel.warmup import startup
import lean_kernels as k

mode = sys.argv[1]
if mode != "default":
    startup.prefer_lean_startup()
values = np.arange(1000, dtype=np.int64)
# "race": a kernel called in another thread while the target is being set up
# (the pipeline's reader thread does this)
other = threading.Thread(target=k.total, args=(values,))
if mode == "race":
    other.start()
lean = startup.start_numba()
if mode != "race":
    other.start()
other.join()
result = int(k.total(values))
rows = k.row_sums(np.arange(12.0).reshape(3, 4)).tolist()
refreshed = "numba.np.arraymath" in sys.modules  # numba's implementation library
hits = {name: sum(getattr(k, name).stats.cache_hits.values()) for name in ("total", "row_sums")}
again = startup.start_numba()

import numba  # code jitted now compiles: numba's compiler sets its target up in full


@numba.njit
def dot(a, b):
    return np.dot(a, b)


print(json.dumps({"lean": lean, "again": again, "result": result, "rows": rows,
                  "refreshed": refreshed, "hits": hits,
                  "dot": float(dot(np.ones(3), np.arange(3.0)))}))
"""


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("lean")
    (tmp / "lean_kernels.py").write_text(textwrap.dedent(KERNELS))
    return tmp


def _start(kernel_dir: Path, mode: str, cache: str = "cache") -> dict[str, Any]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(kernel_dir / cache)}
    env["PYTHONPATH"] = os.pathsep.join([str(kernel_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(START), mode],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["result"] == 499500  # sum(range(1000)) through the jitted kernel
    assert out["rows"] == [6.0, 22.0, 38.0]  # the parallel kernel
    assert out["dot"] == 3.0  # code jitted afterwards may use numba's whole library
    assert out["again"] is False  # once per process
    return out


@pytest.fixture(scope="module")
def filled_cache(kernel_dir: Path) -> Path:
    out = _start(kernel_dir, "default")  # compiles both kernels into the cache
    assert out["hits"] == {"total": 0, "row_sums": 0}
    return kernel_dir


def test_lean_start_loads_cached_kernels_without_numbas_target_refresh(
    filled_cache: Path,
) -> None:
    out = _start(filled_cache, "lean")
    assert out["lean"] is True
    assert out["hits"] == {"total": 1, "row_sums": 1}  # from the cache, not compiled
    assert out["refreshed"] is False  # numba's implementation library was not imported


def test_lean_start_with_an_empty_cache_compiles_as_numba_does(kernel_dir: Path) -> None:
    out = _start(kernel_dir, "lean", cache="empty-cache")
    assert out["lean"] is True
    assert out["hits"] == {"total": 0, "row_sums": 0}
    assert out["refreshed"] is True  # the compiler set the target up in full


def test_lean_start_racing_a_kernel_in_another_thread(filled_cache: Path) -> None:
    # numba's lock keeps the two apart (unguarded, numba raised "generator
    # already executing"); whichever came first, the kernels run
    out = _start(filled_cache, "race")
    if not out["lean"]:  # the kernel's thread set the target up first, numba's usual way
        assert out["refreshed"] is True


def test_default_start_is_numba_as_usual(filled_cache: Path) -> None:
    out = _start(filled_cache, "default")
    assert out["lean"] is False
    assert out["hits"] == {"total": 1, "row_sums": 1}
    assert out["refreshed"] is True  # refreshed as numba does on the first call


def test_start_sha256_matches_hashlib(tmp_path: Path) -> None:
    data = np.random.default_rng(0).bytes(3 * 2**20 + 17)  # not a whole number of blocks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert start_sha256(path).result(timeout=60) == expected
    assert sha256_file(path, block=4096) == expected


def test_start_sha256_of_a_missing_file_holds_the_error(tmp_path: Path) -> None:
    future = start_sha256(tmp_path / "absent.h5")
    with pytest.raises(FileNotFoundError):
        future.result(timeout=60)


def test_start_sha256_never_leaves_the_waiter_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    import xpcs_kernel.digest as digest

    def broken(path: object) -> str:
        raise MemoryError("no room")

    monkeypatch.setattr(digest, "sha256_file", broken)
    with pytest.raises(MemoryError, match="no room"):
        digest.start_sha256("any").result(timeout=60)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("startup")
    spec = SyntheticSpec(
        n_frames=64, shape=(16, 20), n_dynamic_q=2, n_static_q=4, seed=1, dtype="uint16"
    )
    truth, frames = synthesize(spec)
    raw, qmap = tmp / "raw.h5", tmp / "qmap.h5"
    write_hdf5_frames(raw, frames, compression="lz4")
    write_qmap(qmap, truth.qmap)
    return raw, qmap


def _recorded_hashes(result: Path) -> list[str]:
    with h5py.File(result, "r") as f:
        return list(f["/xpcs/provenance/input_files/sha256"].asstr()[()])


def test_correlate_file_records_the_given_raw_hash(
    tmp_path: Path, small_run: tuple[Path, Path]
) -> None:
    raw, qmap = small_run
    given: concurrent.futures.Future[str] = concurrent.futures.Future()
    given.set_result("ab" * 32)
    opts = CorrelationOptions(fit=False, frame_time=1e-3)
    correlate_file(raw, qmap, tmp_path / "given.hdf", options=opts, raw_sha256=given)
    correlate_file(raw, qmap, tmp_path / "own.hdf", options=opts)
    assert _recorded_hashes(tmp_path / "given.hdf") == ["ab" * 32, sha256_file(qmap)]
    assert _recorded_hashes(tmp_path / "own.hdf") == [sha256_file(raw), sha256_file(qmap)]


def test_cli_correlate_records_the_raw_files_hash(
    tmp_path: Path, small_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    raw, qmap = small_run
    out = tmp_path / "cli.hdf"
    args = ["correlate", str(raw), "--qmap", str(qmap), "-o", str(out), "--no-fit", "--json"]
    args += ["--frame-time", "1e-3"]
    assert cli_main(args) == 0
    assert json.loads(capsys.readouterr().out)["output"] == str(out)
    assert _recorded_hashes(out) == [sha256_file(raw), sha256_file(qmap)]
