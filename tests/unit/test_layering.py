"""The layering rules: the core library never imports Jupyter, tornado or ipywidgets; its
import graph has no cycle; the job runner builds on no area that has job kinds; Docker is
reached through the backend only."""

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


def test_only_the_backends_import_the_docker_sdk():
    """Docker only through :mod:`workbench.backends` (the server extension too: a
    workspace's kernels run through the backend's exec)."""
    product = [*CORE.rglob("*.py"), *(CORE.parent / "workbench_ext").rglob("*.py")]
    offenders = sorted(
        str(path.relative_to(CORE.parent))
        for path in product
        if "backends" not in path.relative_to(CORE.parent).parts
        and any(m.split(".")[0] == "docker" for m in imported_modules(path))
    )
    assert offenders == []


def test_only_the_widgets_package_imports_ipywidgets():
    widget_files = list((CORE / "widgets").rglob("*.py"))
    assert any("ipywidgets" in imported_modules(p) for p in widget_files)


#: what the job runner may build on: the shared layers (``schemas``: the wire types every
#: area shares, no area's own), never an area that has job kinds
JOBS_MAY_IMPORT = {
    "backends",
    "config",
    "enums",
    "errors",
    "jobs",
    "registry",
    "schemas",
    "store",
    "users",
}


def core_modules() -> dict[str, Path]:
    """Every module of workbench/ by dotted name (a package by its own name)."""
    found = {}
    for path in CORE.rglob("*.py"):
        parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def core_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The workbench modules ``name`` imports when it runs, wherever the import statement
    is (a function's own imports too), except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # a submodule
                    found.add(f"{source}.{alias.name}")
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    modules = core_modules()
    graph = {name: core_imports(name, path, modules) for name, path in modules.items()}
    assert cycles(graph) == []
    # and none between areas either (workbench.<area> with everything under it)
    areas: dict[str, set[str]] = {}
    for name, imported in graph.items():
        area = ".".join(name.split(".")[:2])
        areas.setdefault(area, set()).update(".".join(i.split(".")[:2]) for i in imported)
    assert cycles({a: deps - {a} for a, deps in areas.items()}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_job_runner_knows_no_job_kind():
    modules = core_modules()
    used = {
        imported.split(".")[1]
        for name, path in modules.items()
        if name.startswith("workbench.jobs")
        for imported in core_imports(name, path, modules)
    }
    assert used <= JOBS_MAY_IMPORT, used - JOBS_MAY_IMPORT
