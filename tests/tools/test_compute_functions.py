"""Compute functions survive serialization, run in a fresh interpreter and raise on errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from globus_compute_sdk.serialize import ComputeSerializer, DillCodeSource

from tools import xpcs_correlate, xpcs_plots, xpcs_publish_metadata
from xpcs_kernel.result.writer import read_result
from xpcs_kernel.synthetic.frames import SyntheticSpec, write_synthetic

SPEC = SyntheticSpec(
    n_frames=160, shape=(24, 24), n_dynamic_q=3, n_static_q=6, tau_c_range=(2.0, 12.0)
)

_RUNNER = """
import json, sys
from globus_compute_sdk.serialize import ComputeSerializer
serde = ComputeSerializer()
job = json.load(open(sys.argv[1]))
funcs = {name: serde.deserialize(payload) for name, payload in job["functions"].items()}
assert all(f.__module__ != "tools.correlate" for f in funcs.values())
out = {}
corr = funcs["xpcs_correlate"](**job["correlate"])
out["correlate"] = corr
plots = funcs["xpcs_plots"](result=corr["output"], output_dir=job["plots_dir"])
out["plots"] = plots
out["publish"] = funcs["xpcs_publish_metadata"](
    correlation=corr, plots=plots, **job["publish"]
)
print(json.dumps(out, allow_nan=False))
"""


@pytest.mark.slow
def test_functions_round_trip_and_run_in_a_fresh_interpreter(tmp_path: Path) -> None:
    raw, qmap = tmp_path / "A001.h5", tmp_path / "qmap.h5"
    truth = write_synthetic(raw, qmap, SPEC)
    serializer = ComputeSerializer(strategy_code=DillCodeSource)
    results = tmp_path / "results"
    job = {
        "functions": {
            f.__name__: serializer.serialize(f)
            for f in (xpcs_correlate, xpcs_plots, xpcs_publish_metadata)
        },
        "correlate": {
            "raw": str(raw),
            "qmap": str(qmap),
            "output_dir": str(results),
            "options": {"mode": "both", "twotime_bins": [0, 1]},
            "name": "A001",
        },
        "plots_dir": str(results / "plots"),
        "publish": {
            "results_dir": str(results),
            "subject": "globus://beamline/A001.h5",
            "dataset": {"name": "A001", "experiment": "exp-7", "creators": ["A. Scientist"]},
            "facility": "local",
            "source": {"id": "beamline", "path": "/A001.h5"},
            "publication": {"id": "pub", "path": "/published/A001"},
            "options": {"mode": "both"},
            "run_id": "run-1",
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
    assert len(proc.stdout) < 200 * 1024  # fits the Flows run state

    corr = out["correlate"]
    assert corr["name"] == "A001"
    assert corr["output"] == str(results / "A001_results.hdf")
    assert corr["n_frames"] == SPEC.n_frames
    assert corr["software_version"]
    assert [row["bin"] for row in corr["fit"]] == [0, 1, 2]
    tau_fit = [row["tau_c"] / SPEC.frame_time for row in corr["fit"]]
    for fit, true in zip(tau_fit, truth.tau_c, strict=True):
        assert fit == pytest.approx(true, rel=0.5)
    res = read_result(corr["output"])
    assert res.analysis == ("multitau", "twotime")

    names = sorted(Path(p).name for p in out["plots"]["plots"])
    assert names == sorted(
        f"A001_{n}.png"
        for n in ("g2", "saxs_1d", "saxs_2d", "intensity_vs_time", "twotime_bin0", "twotime_bin1")
    )
    for p in out["plots"]["plots"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    pub = out["publish"]
    content = pub["content"]
    assert pub["subject"] == "globus://beamline/A001.h5"
    manifest = {m["path"]: m for m in content["manifest"]}
    assert "A001_results.hdf" in manifest
    assert "plots/A001_g2.png" in manifest
    assert pub["n_files"] == len(manifest) == 7
    for rel, item in manifest.items():
        data = (results / rel).read_bytes()
        assert item["size"] == len(data)
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
    assert content["datacite"]["creators"] == [{"creatorName": "A. Scientist"}]
    assert content["datacite"]["identifier"]["identifier"] == pub["subject"]
    assert content["experiment"] == "exp-7"
    assert content["software"]["xpcs_kernel"] == corr["software_version"]
    assert len(content["fitted_rates"]) == 3
    assert content["results"][0]["timings"]["total"] > 0
    written = json.loads((results / "metadata.json").read_text())
    assert written["content"]["manifest"] == content["manifest"]


def test_correlate_raises_on_a_corrupt_raw_file(tmp_path: Path) -> None:
    raw, qmap = tmp_path / "A001.h5", tmp_path / "qmap.h5"
    write_synthetic(
        raw, qmap, SyntheticSpec(n_frames=20, shape=(16, 16), n_dynamic_q=2, n_static_q=4)
    )
    raw.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(Exception, match="A001"):
        xpcs_correlate(raw=str(raw), qmap=str(qmap), output_dir=str(tmp_path / "out"))
    assert not list((tmp_path / "out").glob("*.hdf"))


def test_correlate_rejects_unknown_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="colour"):
        xpcs_correlate(raw="r.h5", qmap="q.h5", output_dir=str(tmp_path), options={"colour": 1})


def test_publish_refuses_to_publish_without_results(tmp_path: Path) -> None:
    base: dict[str, Any] = {"subject": "s", "dataset": {"name": "A"}}
    with pytest.raises(FileNotFoundError):
        xpcs_publish_metadata(results_dir=str(tmp_path / "nope"), correlation={}, **base)
    with pytest.raises(ValueError, match="nothing to publish"):
        xpcs_publish_metadata(results_dir=str(tmp_path), correlation={"name": "A"}, **base)
    with pytest.raises(FileNotFoundError, match=r"missing\.hdf"):
        xpcs_publish_metadata(
            results_dir=str(tmp_path),
            correlation={"output": str(tmp_path / "missing.hdf")},
            **base,
        )
    assert not (tmp_path / "metadata.json").exists()
