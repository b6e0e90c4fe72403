"""The live Correlate function survives serialization, follows a file in a fresh
interpreter to the offline answer, and raises (no result) when nothing arrives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from globus_compute_sdk.serialize import ComputeSerializer, DillCodeSource

from tools import xpcs_correlate, xpcs_correlate_live
from xpcs_kernel.result.writer import read_result
from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

SPEC = SyntheticSpec(
    n_frames=160, shape=(24, 24), n_dynamic_q=3, n_static_q=6, tau_c_range=(2.0, 12.0)
)

_RUNNER = """
import json, sys
from globus_compute_sdk.serialize import ComputeSerializer
job = json.load(open(sys.argv[1]))
func = ComputeSerializer().deserialize(job["function"])
assert func.__module__ != "tools.correlate_live"
print(json.dumps(func(**job["kwargs"]), allow_nan=False))
"""


@pytest.mark.slow
def test_live_function_round_trips_and_follows_in_a_fresh_interpreter(tmp_path: Path) -> None:
    raw, qmap = tmp_path / "A001.h5", tmp_path / "qmap.h5"
    write_synthetic(raw, qmap, SPEC)
    Path(str(raw) + ".done").touch()  # the writer is done: the follow reads to the end
    payload = ComputeSerializer(strategy_code=DillCodeSource).serialize(xpcs_correlate_live)
    results = tmp_path / "results"
    job = {
        "function": payload,
        "kwargs": {
            "raw": str(raw),
            "qmap": str(qmap),
            "output_dir": str(results),
            "options": {"mode": "multitau"},
            "name": "A001",
            "follow": {"idle": 5, "update": 0.5, "done_marker": ".done"},
        },
    }
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job))
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(job_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["live"] is True
    assert out["name"] == "A001"
    assert out["output"] == str(results / "A001_results.hdf")
    assert out["n_frames"] == SPEC.n_frames
    assert [row["bin"] for row in out["fit"]] == [0, 1, 2]

    offline = xpcs_correlate(str(raw), str(qmap), str(tmp_path / "offline"), {"mode": "multitau"})
    assert set(offline) <= set(out)  # the later states read the same summary
    live, want = read_result(out["output"]), read_result(str(offline["output"]))
    np.testing.assert_allclose(live.g2, want.g2, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(live.saxs_1d, want.saxs_1d, rtol=1e-6, atol=1e-9)


def test_live_function_raises_when_no_frame_arrives(tmp_path: Path) -> None:
    raw, qmap = tmp_path / "A001.h5", tmp_path / "qmap.h5"
    write_synthetic(
        raw, qmap, SyntheticSpec(n_frames=20, shape=(16, 16), n_dynamic_q=2, n_static_q=4)
    )
    missing = tmp_path / "never.h5"
    with pytest.raises(Exception, match=r"never\.h5"):
        xpcs_correlate_live(str(missing), str(qmap), str(tmp_path / "out"), follow={"idle": 0.3})
    assert not list((tmp_path / "out").glob("*.hdf"))
