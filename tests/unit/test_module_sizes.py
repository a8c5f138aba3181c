"""The size rules: no module of workbench/ or workbench_ext/ over 600 lines unless its
docstring says why (a line starting "Over 600 lines because"), and no function of the
panel's widgets over 80 lines (a section builds its parts in named methods)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("workbench", "workbench_ext")
#: not ours to size: the database migrations, and the lab extension's build inputs
SKIPPED = ("workbench/registry/migrations", "workbench_ext/lab")
MAX_MODULE_LINES = 600
REASON = "Over 600 lines because"
MAX_WIDGET_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    """Every module of the packages, by its path from the repository root."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = path.relative_to(ROOT).as_posix()
            if "node_modules" not in path.parts and not name.startswith(SKIPPED):
                found[name] = path
    return found


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def says_why(path: Path) -> bool:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return any(line.strip().startswith(REASON) for line in docstring.splitlines())


def test_no_module_is_over_600_lines_without_a_reason():
    over = {
        name: line_count(path)
        for name, path in modules().items()
        if line_count(path) > MAX_MODULE_LINES and not says_why(path)
    }
    assert over == {}, f"split them, or start a line of the docstring with {REASON!r}"


def test_no_widget_function_is_over_80_lines():
    long = {}
    for path in (ROOT / "workbench" / "widgets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_WIDGET_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = length
    assert long == {}, "build the parts in named methods"


def test_a_reason_is_read_from_the_docstring(tmp_path: Path):
    reasoned = tmp_path / "reasoned.py"
    reasoned.write_text(f'"""A module.\n\n{REASON} it is one table.\n"""\n')
    silent = tmp_path / "silent.py"
    silent.write_text(f'"""A module."""\n\n# {REASON} nothing: not in the docstring\n')
    assert says_why(reasoned) and not says_why(silent)
