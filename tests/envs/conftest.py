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
    metadata = (  # the shape of the real one: base, the model server's, the server's
        "Metadata-Version: 2.4\nName: workbench\nVersion: 0.1.0\n"
        "Requires-Dist: httpx>=0.27\n"
        "Requires-Dist: numpy>=1.26; extra == 'serve'\n"
        "Requires-Dist: uvloop>=0.21; sys_platform != 'win32' and extra == 'serve'\n"
        "Requires-Dist: anywidget<0.12,>=0.11; extra == 'server'\n"
        "Requires-Dist: sqlalchemy<2.2,>=2.1; extra == 'server'\n"
        "Requires-Dist: workbench[serve]; extra == 'server'\n"
        "Requires-Dist: psycopg[binary]>=3.2; extra == 'postgres'\n"
        "Provides-Extra: postgres\nProvides-Extra: serve\nProvides-Extra: server\n"
    )
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("workbench/__init__.py", "")
        archive.writestr("workbench-0.1.0.dist-info/METADATA", metadata)
    return wheel
