"""The house rules of the layout: generic top-level names, import directions,
and a kernel that imports without any Globus package."""

from __future__ import annotations

import ast
import importlib.metadata as md
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUR_PACKAGES = ("xpcs_kernel", "tools", "flows", "deployments")

# Which of our packages each package may import (besides itself).
ALLOWED_IMPORTS = {
    "xpcs_kernel": set(),
    "tools": {"xpcs_kernel"},
    "deployments": {"xpcs_kernel"},
    "flows": {"xpcs_kernel", "tools", "deployments"},
}


def _top_level_names(dist: md.Distribution) -> set[str]:
    names: set[str] = set()
    text = dist.read_text("top_level.txt")
    if text:
        names.update(line.strip() for line in text.splitlines() if line.strip())
    for file in dist.files or ():
        parts = Path(str(file)).parts
        if (
            not parts
            or parts[0].endswith((".dist-info", ".egg-info", ".data"))
            or parts[0] == ".."
        ):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                names.add(first[:-3])
            elif first.endswith((".so", ".pyd")):
                names.add(first.split(".")[0])
        else:
            names.add(first)
    return names


def test_no_installed_dependency_provides_our_top_level_names() -> None:
    clashes: dict[str, list[str]] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"] or ""
        if name.lower().replace("_", "-") == "xpcs-flows":
            continue
        for top in _top_level_names(dist) & set(OUR_PACKAGES):
            clashes.setdefault(top, []).append(name)
    assert clashes == {}, f"installed distributions also provide our top-level modules: {clashes}"


def test_top_level_name_scan_finds_known_modules() -> None:
    # the scan itself must work, or the test above proves nothing
    numpy = md.distribution("numpy")
    assert "numpy" in _top_level_names(numpy)
    click = md.distribution("click")
    assert "click" in _top_level_names(click)


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(OUR_PACKAGES)


@pytest.mark.parametrize("package", OUR_PACKAGES)
def test_import_directions(package: str) -> None:
    offenders: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = _imported_packages(path) - ALLOWED_IMPORTS[package] - {package}
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}, f"{package} may import only {ALLOWED_IMPORTS[package]}: {offenders}"


def test_import_scan_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import flows.cli.app\nfrom tools import x\nfrom . import y\nimport numpy\n")
    assert _imported_packages(sample) == {"flows", "tools"}


def test_kernel_imports_without_globus() -> None:
    """Import every kernel module with Globus packages made unimportable."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"globus_sdk", "globus_compute_sdk", "gladier"}:
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Block())
        import xpcs_kernel
        names = [m.name for m in pkgutil.walk_packages(xpcs_kernel.__path__, "xpcs_kernel.")]
        for name in names:
            importlib.import_module(name)
        blocked = {"globus_sdk", "globus_compute_sdk", "gladier"}
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not leaked, leaked
        print(len(names))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 1
