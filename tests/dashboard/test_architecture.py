"""The dashboard's layering, as the README's Architecture section draws it: every import between two of its parts
goes down the layers, never up or sideways. The imports are read from the source (ast), nested imports included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Lower number = lower layer. A part may import only parts of a strictly lower layer (and itself).
LAYERS = {
    "config": 0,
    "state": 1,
    "view": 2,
    "inputs": 3,
    "usecases": 4,
    "jobs": 4,
    "trust": 5,
    "layout": 6,
    "callbacks": 7,
    "factory": 8,
}


def part_of(module: str) -> str:
    """dashboard.<part>[.module...] -> part ("dashboard" itself for the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "dashboard"


def dashboard_imports(path: Path) -> set[str]:
    """Every dashboard module or package imported by the file at `path` (names imported from a package included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dashboard":
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "dashboard")
    return found


def dashboard_modules() -> list[Path]:
    return sorted((ROOT / "dashboard").rglob("*.py"))


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def test_every_part_has_a_layer():
    parts = {part_of(module_name(path)) for path in dashboard_modules()} - {"dashboard"}
    assert parts == set(LAYERS), "a new dashboard part needs a layer here and in the README's Architecture section"


def test_flat_module_list_is_gone():
    top = {path.stem for path in (ROOT / "dashboard").glob("*.py")} - {"__init__"}
    assert top == {"config", "layout", "factory"}


@pytest.mark.parametrize("path", dashboard_modules(), ids=lambda path: module_name(path))
def test_imports_go_down_the_layers(path):
    source = part_of(module_name(path))
    if source == "dashboard":
        return
    upward = sorted(
        target
        for target in dashboard_imports(path)
        if part_of(target) not in (source, "dashboard") and LAYERS[part_of(target)] >= LAYERS[source]
    )
    assert not upward, f"{module_name(path)} ({source}, layer {LAYERS[source]}) imports upward: {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    """The parser finds nested imports too, so the layering test can fail."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from dashboard.callbacks import explain\n", encoding="utf-8")
    assert dashboard_imports(sample) == {"dashboard.callbacks.explain"}


def test_readme_architecture_lists_every_part():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    for part in LAYERS:
        assert re.search(rf"^\s+(-> )?{part}/?\s", section, re.M), f"no line for {part} in README's Architecture"


def test_the_web_side_imports_no_framework():
    """The engine's public API and every dashboard callback import without TensorFlow or torch: a web process loads a
    framework only when it builds a model, never to move a slider or draw a card."""
    import subprocess
    import sys

    code = (
        "import sys, explainers, dashboard.callbacks, dashboard.factory; "
        "loaded = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules]; assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
