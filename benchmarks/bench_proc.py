"""Processes of the benchmark: one per measurement, wall time and peak RSS.

Peers run ``benchmarks/peers.py`` in ``.venv-bench``; ours run
``benchmarks/kernel.py --child TASK SPEC_JSON`` in this interpreter's
environment. Each prints a one-line ``BENCH_JSON {...}`` summary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers import MARKER

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(__file__).resolve().with_name("peers.py")
KERNEL = Path(__file__).resolve().with_name("kernel.py")
BENCH_BIN = ROOT / ".venv-bench" / "bin"


@dataclass
class ProcResult:
    """Outcome of one measured process."""

    rc: int
    wall: float
    rss_kib: int
    stdout: str
    stderr: str
    summary: dict[str, Any] | None

    def failure(self) -> str:
        tail = [ln for ln in self.stderr.strip().splitlines() if ln.strip()][-1:]
        return f"exit {self.rc}: {tail[0][:160] if tail else 'no message'}"


GNU_TIME = Path("/usr/bin/time")
_MAXRSS = re.compile(r"^BENCH_MAXRSS_KIB=(\d+)$", re.MULTILINE)


def run_process(
    cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 3600.0
) -> ProcResult:
    """Run ``cmd``: wall time and the peak RSS of its largest process.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``) when present:
    a process forked straight from this (large) harness would inherit the
    harness's high-water mark in ``ru_maxrss``. Without GNU time, ``wait4``'s
    value is used and is only an upper bound.
    """
    full = [str(GNU_TIME), "-f", "BENCH_MAXRSS_KIB=%M", *cmd] if GNU_TIME.exists() else cmd
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env, cwd=ROOT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    found = _MAXRSS.findall(stderr)
    rss = int(found[-1]) if found else int(usage.ru_maxrss)
    stderr = _MAXRSS.sub("", stderr)
    if found and proc.returncode != 0:  # GNU time reports the child's failure itself
        stderr = "\n".join(ln for ln in stderr.splitlines() if "Command exited" not in ln)
    summary = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            summary = json.loads(line[len(MARKER) :])
            break
    return ProcResult(proc.returncode, wall, rss, stdout, stderr, summary)


def peers_available() -> str | None:
    """None when the peer environment works, else the reason it does not."""
    if not (BENCH_BIN / "python").exists():
        return "no .venv-bench: run benchmarks/setup_peers.sh"
    return None


def run_peer(task: str, spec: dict[str, Any], timeout: float = 3600.0) -> ProcResult:
    return run_process(
        [str(BENCH_BIN / "python"), str(PEERS), task, json.dumps(spec)], timeout=timeout
    )


def run_ours(
    task: str, spec: dict[str, Any], *, env: dict[str, str] | None = None, timeout: float = 3600.0
) -> ProcResult:
    cmd = [sys.executable, str(KERNEL), "--child", task, json.dumps(spec)]
    return run_process(cmd, env=env, timeout=timeout)
