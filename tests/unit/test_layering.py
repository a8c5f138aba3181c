"""The layering rule: the core library never imports Jupyter, tornado or ipywidgets."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "workbench"
FORBIDDEN = (
    "jupyter_server",
    "jupyterlab",
    "tornado",
    "traitlets",
    "ipywidgets",
    "voila",
    "plotly",
    "workbench_ext",
)


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_never_imports_jupyter_or_widgets():
    offenders = {
        str(path.relative_to(CORE)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN
        )
        for path in CORE.rglob("*.py")
        if "widgets" not in path.relative_to(CORE).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_widgets_package_imports_ipywidgets():
    widget_files = list((CORE / "widgets").rglob("*.py"))
    assert any("ipywidgets" in imported_modules(p) for p in widget_files)
