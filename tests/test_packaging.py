"""The wheel holds our four packages, their package data and the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_SUFFIXES = (".toml", ".j2", ".yaml", ".json")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build_dir = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(build_dir),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
    )
    assert proc.returncode == 0, proc.stderr
    (wheel_path,) = out.glob("xpcs_flows-*.whl")
    return wheel_path


@pytest.mark.slow
def test_wheel_contains_packages_and_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("xpcs_kernel", "tools", "flows", "deployments"):
        assert f"{package}/__init__.py" in names
        assert f"{package}/py.typed" in names
    sources = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "deployments").rglob("*")
        if p.suffix in DATA_SUFFIXES and "__pycache__" not in p.parts
    }
    assert sources <= names, f"package data missing from the wheel: {sorted(sources - names)}"
    assert not any(n.startswith("tests/") for n in names), "tests must not ship in the wheel"


@pytest.mark.slow
def test_wheel_declares_console_script_and_dependencies(wheel: Path) -> None:
    zf = zipfile.ZipFile(wheel)
    (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "xpcs-flows = flows.cli:console_main" in zf.read(entry_points).decode()
    (metadata,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
    meta = zf.read(metadata).decode()
    assert "Requires-Python: >=3.11" in meta
    for requirement in ("globus-sdk<5,>=4", "globus-compute-sdk<5,>=4", "gladier<0.12,>=0.11"):
        assert f"Requires-Dist: {requirement}" in meta
