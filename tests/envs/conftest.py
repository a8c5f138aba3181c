"""Fixtures of the environment tests: the definitions, a stand-in Workbench wheel, and a
real Docker Engine with the base image for the ``docker`` tests."""

from __future__ import annotations

import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.backends.base import BackendUnavailable
from workbench.backends.docker import DockerBackend
from workbench.environments import DEFAULT_BASE_IMAGE

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


@pytest.fixture(scope="session")
def docker_backend() -> DockerBackend:
    try:
        return DockerBackend.from_env()
    except BackendUnavailable as exc:
        pytest.fail(f"{exc.message} Or deselect these tests with -m 'not docker'.")


@pytest.fixture(scope="session")
def base_image(docker_backend: DockerBackend) -> Iterator[str]:
    """The local base image, made by scripts/base-image when missing (about 45 s)."""
    started = time.monotonic()
    done = subprocess.run(
        [str(REPO / "scripts" / "base-image")], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/base-image failed:\n{done.stderr[-3000:]}")
    print(f"\nscripts/base-image: {time.monotonic() - started:.1f} s, {done.stdout.strip()}")
    yield DEFAULT_BASE_IMAGE
