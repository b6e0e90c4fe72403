"""The house rules of the layout: generic top-level names, import directions,
and a kernel that imports without any Globus package."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
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


# -- the house plan (docs/architecture.md) -------------------------------------------

MAX_MODULES_PER_FOLDER = 15
MAX_MODULE_LINES = 400
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Inside a room, its parts in layers: a part may import itself and the parts
# listed before it, never one after it. A part is a subpackage or a top-level
# module of the room. A new part must be placed here (and named in
# docs/architecture.md) before it can land.
LAYERS = {
    "xpcs_kernel": [
        "errors", "_version", "digest", "process_exit", "device_spec", "options", "metadata",
        "_fit_batch", "fit", "io", "qmap", "multitau", "twotime", "saxs", "result",
        "synthetic", "warmup", "plot_scales", "torch_backend", "pipeline", "live",
        "compile_notice", "cli", "__main__",
    ],
    "tools": [
        "action_urls", "_states", "transfer_in", "correlate", "correlate_live", "plots",
        "publish", "transfer_back",
    ],
    "deployments": [
        "_fields", "errors", "gpu", "state", "maintenance", "model", "registry", "history",
        "select_types", "_select_candidate", "select", "failover", "status", "templates",
        "chooser", "simulate",
    ],
    "flows": [
        "errors", "local", "xpcs", "globus", "runs", "launch", "watch", "cli", "run_handle",
    ],
}  # fmt: skip


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of ours (a package is its __init__)."""
    found: dict[str, Path] = {}
    for package in OUR_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, anywhere in its body.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module,
    else ``a.b``. Imports inside functions and under TYPE_CHECKING count too: a
    circle hidden that way is still a circle.
    """

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                wanted = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            targets.update(t for t in map(resolve, wanted) if t is not None and t != name)
        graph[name] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    assert _circles(_import_graph(_modules())) == []


def test_circle_scan_finds_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text("import pkg.b\n")
    b.write_text("def f():\n    from pkg.a import x\n")
    c.write_text("from pkg import a\n")
    modules = {"pkg.a": a, "pkg.b": b, "pkg.c": c}
    graph = _import_graph(modules)
    assert graph == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    assert _circles(graph) == [["pkg.a", "pkg.b"]]


def test_no_folder_holds_more_than_15_modules() -> None:
    crowded = {
        str(folder.relative_to(ROOT)): n
        for package in OUR_PACKAGES
        for folder in [ROOT / package, *(ROOT / package).rglob("*/")]
        if folder.name != "__pycache__"
        and (n := len(list(folder.glob("*.py")))) > MAX_MODULES_PER_FOLDER
    }
    assert crowded == {}, f"split these folders into subpackages: {crowded}"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these modules along a seam: {long}"


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_part_of_a_room_has_a_layer() -> None:
    unplaced = {
        module
        for module in _modules()
        if "." in module and _part(module) not in LAYERS[module.split(".")[0]]
    }
    assert unplaced == set(), "place these in LAYERS and docs/architecture.md"
    listed = {(room, part) for room, parts in LAYERS.items() for part in parts}
    existing = {(m.split(".")[0], _part(m)) for m in _modules() if "." in m}
    assert listed == existing, f"listed but missing: {sorted(listed - existing)}"


def test_parts_import_only_earlier_layers() -> None:
    offenders: set[str] = set()
    for module, targets in _import_graph(_modules()).items():
        room = module.split(".")[0]
        if "." not in module:
            continue  # a room's __init__ re-exports its parts
        rank = LAYERS[room].index(_part(module))
        for target in targets:
            same_room = target.split(".")[0] == room and "." in target
            if same_room and LAYERS[room].index(_part(target)) > rank:
                offenders.add(f"{module} -> {target}")
    assert offenders == set()


def test_architecture_page_names_every_subpackage_and_only_existing_ones() -> None:
    text = ARCHITECTURE.read_text()
    subpackages = {
        str(init.parent.relative_to(ROOT)) + "/"
        for package in OUR_PACKAGES
        for init in (ROOT / package).rglob("__init__.py")
    }
    missing = {s for s in subpackages if f"`{s}`" not in text}
    assert missing == set(), f"docs/architecture.md does not name {sorted(missing)}"
    named = set(re.findall(r"`((?:xpcs_kernel|tools|flows|deployments)(?:/\w+)*/)`", text))
    assert named - subpackages == set(), "docs/architecture.md names folders that do not exist"
    modules = set(re.findall(r"`((?:xpcs_kernel|tools|flows|deployments)(?:/\w+)+\.py)`", text))
    assert {m for m in modules if not (ROOT / m).is_file()} == set()


def test_architecture_page_shows_the_layers_of_each_room() -> None:
    text = ARCHITECTURE.read_text()
    for room, parts in LAYERS.items():
        line = next((ln for ln in text.splitlines() if ln.startswith(f"{room} layers:")), None)
        assert line is not None, f"docs/architecture.md lacks the '{room} layers:' line"
        assert re.findall(r"`([\w]+)`", line) == parts, f"the {room} layers differ from LAYERS"
