"""exit_process: atexit handlers run, output is flushed, the status is kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from xpcs_kernel.process_exit import exit_process

out = Path(sys.argv[1])
atexit.register(lambda: out.write_text(out.read_text() + "atexit\\n"))
out.write_text("")
if sys.argv[2] == "thread":
    def late():
        time.sleep(0.3)
        out.write_text(out.read_text() + "thread\\n")
    threading.Thread(target=late).start()
sys.stdout.write("unflushed output")
exit_process(3)
"""


def _run(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], str]:
    marker = tmp_path / f"{mode}.txt"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(marker), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc, marker.read_text()


def test_exit_process_runs_atexit_and_flushes(tmp_path: Path) -> None:
    proc, marks = _run(tmp_path, "plain")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "unflushed output"
    assert marks == "atexit\n"


def test_exit_process_waits_for_running_threads(tmp_path: Path) -> None:
    proc, marks = _run(tmp_path, "thread")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "unflushed output"
    assert marks == "thread\natexit\n"  # the normal shutdown: the thread first, then atexit
