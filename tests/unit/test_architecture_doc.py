"""docs/architecture.md keeps lists the code also keeps: every module in the package map,
the job kinds, the panel's tabs, the registry's tables, the migrations, the authorization
resources and the benchmarks. Each list here is read from the document and compared with
the code's, so a module, kind, tab, table, revision or script added without a word in the
document (or removed while the document still names it) fails."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.config import Settings
from workbench.registry.models import Base
from workbench.services import Workbench

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
#: the packages whose every module the package map names
PACKAGES = ("workbench", "workbench_ext")
#: what the package map leaves out: the revisions (listed under Migrations), the lab
#: extension's npm project (node_modules, its build) and bytecode
SKIPPED_DIRS = {"versions", "lab", "labextension", "node_modules", "__pycache__", "tests"}
SKIPPED_FILES = {"__init__.py", "__main__.py"}

_HEADING = re.compile(r"^(#+) (.+)$")
_SPAN = re.compile(r"`([^`]+)`")


def section(title: str) -> str:
    """The text under the heading ``title`` (any level), up to the next heading of the
    same or a higher level."""
    lines = DOC.read_text().splitlines()
    for start, line in enumerate(lines):
        match = _HEADING.match(line)
        if match and match.group(2).strip() == title:
            level = len(match.group(1))
            body = []
            for following in lines[start + 1 :]:
                heading = _HEADING.match(following)
                if heading and len(heading.group(1)) <= level:
                    break
                body.append(following)
            return "\n".join(body)
    raise AssertionError(f"docs/architecture.md has no heading {title!r}")


def table(text: str, first_header: str) -> list[list[str]]:
    """The rows (their cells) of the first table in ``text`` whose header's first cell is
    ``first_header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and cells(line)[0] == first_header:
            rows = []
            for row in lines[i + 2 :]:  # past the header and its |---| line
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            return rows
    raise AssertionError(f"no table headed {first_header!r} there")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def spans(text: str) -> list[str]:
    """What ``text`` writes as code (between backquotes)."""
    return _SPAN.findall(text)


# --- the package map -----------------------------------------------------------------------


def map_rows() -> list[tuple[str, list[str]]]:
    """Each row of the package map as (its folder, the paths it names, as written). A row's
    first cell names paths (``workbench/workspaces/schemas.py``, ``sources.py``: a bare name
    is in the first path's folder); a row whose first path is a folder
    (``workbench/models/``) names the files its description writes too, relative to that
    folder (``container/convert.py``)."""
    rows = []
    for row in table(section("Package map"), "Module"):
        named = spans(row[0])
        if not named:
            continue
        head = named[0]
        folder = head if head.endswith("/") else head.rpartition("/")[0] + "/"
        if head.endswith("/"):
            named = named + spans(" ".join(row[1:]))
        rows.append((folder, named))
    return rows


def resolve(folder: str, written: str) -> str:
    """The path from the repository's root of what a row wrote in ``folder``."""
    if written.split("/")[0] in PACKAGES or written.startswith(folder):
        return written
    return folder + written


def named_paths() -> set[str]:
    """Every file and folder (``a/b/``) the package map names, with the folders above
    each."""
    found = set()
    for folder, written in map_rows():
        found.add(folder)
        for name in written:
            path = resolve(folder, name)
            found.add(path)
            parts = path.rstrip("/").split("/")
            found |= {"/".join(parts[:n]) + "/" for n in range(1, len(parts))}
    return found


def code_modules() -> tuple[set[str], set[str]]:
    """The modules (``workbench/models/service.py``) and the packages and folders of
    modules (``workbench/models/container/``) of the two packages, as the map must name
    them."""
    modules, folders = set(), set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if SKIPPED_DIRS & set(rel.parts[:-1]):
                continue
            folders.add(rel.parent.as_posix() + "/")
            if rel.name not in SKIPPED_FILES:
                modules.add(rel.as_posix())
    return modules, folders - {f"{package}/" for package in PACKAGES}


def test_the_package_map_names_every_module_and_package():
    named = named_paths()
    modules, folders = code_modules()
    missing = sorted((modules | folders) - named)
    assert not missing, f"the package map (docs/architecture.md) does not name {missing}"


def test_every_python_file_the_package_map_names_exists():
    stale = sorted(
        path
        for folder, written in map_rows()
        for path in (resolve(folder, name) for name in written)
        if path.endswith(".py") and not (ROOT / path).is_file()
    )
    assert not stale, f"the package map (docs/architecture.md) names files that are gone: {stale}"


# --- the other lists ------------------------------------------------------------------------


def test_the_job_kinds_listed_are_the_kinds_the_runner_has(tmp_path: Path):
    wb = Workbench.from_settings(Settings(home=tmp_path, backend="fake"))
    try:
        registered = set(wb.jobs.runner.kinds)
    finally:
        wb.close()
    listed = [spans(row[0])[0] for row in table(section("Jobs"), "Kind")]
    assert len(listed) == len(set(listed))
    assert set(listed) == registered


def test_the_tabs_listed_are_the_panels_tabs(monkeypatch: pytest.MonkeyPatch):
    from workbench.widgets.panel import WorkbenchPanel

    # the tabs as the panel makes them; no section made (it would ask a server)
    monkeypatch.setattr(WorkbenchPanel, "section", lambda self, index: None)
    client = SimpleNamespace(me=lambda: SimpleNamespace(username="alice", role="admin"))
    panel = WorkbenchPanel(client)  # type: ignore[arg-type]
    listed = [row[0].strip("*") for row in table(section("The side panel"), "Tab")]
    assert listed == list(panel.tabs.titles)


def test_the_concepts_name_every_table_of_the_registry():
    listed = {  # a column (``model_versions.source``) names its table
        name.split(".")[0]
        for row in table(section("Concepts"), "Concept")
        for name in spans(row[1])
    }
    assert listed == set(Base.metadata.tables)


def test_the_migrations_listed_are_the_revisions():
    versions = ROOT / "workbench" / "registry" / "migrations" / "versions"
    revisions = sorted(p.stem for p in versions.glob("*.py") if p.name != "__init__.py")
    listed = [spans(row[0])[0] for row in table(section("Migrations"), "Revision")]
    assert listed == revisions


def test_the_authorization_resources_listed_are_the_handlers():
    declared = {
        match
        for path in (ROOT / "workbench_ext").rglob("*.py")
        if "lab" not in path.relative_to(ROOT).parts
        for match in re.findall(r'^\s+auth_resource = "([^"]+)"', path.read_text(), re.M)
    }
    text = section("Identity and access")
    sentence = text[text.index("authorization resource") :].split(")")[0]
    assert set(spans(sentence)) == declared


def test_the_benchmarks_listed_are_the_scripts():
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    listed = [spans(row[0])[0] for row in table(section("Benchmarks"), "Script")]
    assert len(listed) == len(set(listed))
    assert set(listed) == scripts
