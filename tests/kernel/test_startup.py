"""Start-up of a command process: numba's lean set-up, and the early input hash."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
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

# Run in a fresh interpreter: numba's target is set up once per process.
START = """
import json, sys, threading
import numba
from xpcs_kernel.warmup import startup

mode = sys.argv[1]
if mode != "default":
    startup.prefer_lean_startup()

@numba.njit(nogil=True)
def total(a):
    s = 0
    for v in a:
        s += v
    return s

import numpy as np
values = np.arange(1000, dtype=np.int64)
# "race": a kernel called in another thread while the target is being set up
# (the pipeline's reader thread does this)
other = threading.Thread(target=total, args=(values,))
if mode == "race":
    other.start()
lean = startup.start_numba()
if mode != "race":
    other.start()
other.join()
seen = {name: name in sys.modules for name in ("scipy.linalg", "cffi")}
again = startup.start_numba()
result = int(total(values))
import scipy.linalg  # importable again once the set-up is done
print(json.dumps({"lean": lean, "again": again, "seen": seen, "result": result,
                  "scipy_linalg": hasattr(scipy.linalg, "solve")}))
"""


def _start(mode: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(START), mode],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_lean_start_skips_scipy_linalg_and_cffi_and_kernels_still_run() -> None:
    out = _start("lean")
    assert out["lean"] is True
    assert out["seen"] == {"scipy.linalg": False, "cffi": False}
    assert out["result"] == 499500  # sum(range(1000)) through the jitted kernel
    assert out["again"] is False  # once per process
    assert out["scipy_linalg"] is True  # importable again afterwards


def test_lean_start_racing_a_kernel_in_another_thread() -> None:
    # numba's lock keeps the two set-ups apart (unguarded, numba raised
    # "generator already executing"); whichever came first, the kernel runs
    out = _start("race")
    assert out["result"] == 499500
    if out["lean"]:
        assert out["seen"] == {"scipy.linalg": False, "cffi": False}
    else:  # the kernel's thread set the target up first, numba's usual way
        assert out["seen"]["scipy.linalg"] is True


def test_default_start_is_numba_as_usual() -> None:
    out = _start("default")
    assert out["lean"] is False
    assert out["seen"]["scipy.linalg"] is True  # numba's BLAS probe ran
    assert out["result"] == 499500


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
