"""Fixtures of the environment tests: the definitions, a stand-in Workbench wheel, and a
real Docker Engine with the base image for the ``docker`` tests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "envs"


@pytest.fixture
def envs_root() -> Path:
    return ENVS


@pytest.fixture
def fake_wheel(tmp_path: Path) -> Path:
    """A minimal wheel standing in for Workbench's (no pip wheel, no labextension)."""
    wheel = tmp_path / "dist" / "workbench-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    metadata = (
        "Metadata-Version: 2.4\nName: workbench\nVersion: 0.1.0\n"
        "Requires-Dist: httpx>=0.27\n"
        "Requires-Dist: anywidget<0.12,>=0.11\n"
        "Requires-Dist: psycopg[binary]>=3.2; extra == 'postgres'\n"
        "Provides-Extra: postgres\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("workbench/__init__.py", "")
        archive.writestr("workbench-0.1.0.dist-info/METADATA", metadata)
    return wheel
