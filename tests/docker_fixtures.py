"""Session fixtures for tests on the real Docker Engine: the backend, the local base image
and the `python` environment image (built once per machine: EnvBuilder skips a build when
the image already carries the same hash)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from workbench.backends.base import BackendUnavailable, BuildFailed
from workbench.backends.docker import DockerBackend
from workbench.environments import DEFAULT_BASE_IMAGE, EnvBuilder, load_definition

REPO = Path(__file__).resolve().parents[1]
PYTHON_ENV_TAG = "workbench/env-python:test"


def host_ca_bundle() -> Path | None:
    """This machine's CA store: containers trust the site's re-signing CA only through it."""
    path = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    return path if path.is_file() else None


def env_builder(backend: DockerBackend) -> EnvBuilder:
    return EnvBuilder(
        backend,
        extra_ca_bundle=host_ca_bundle(),
        pip_index_url=os.environ.get("WORKBENCH_PIP_INDEX_URL") or None,
    )


@pytest.fixture(scope="session")
def docker_backend() -> DockerBackend:
    try:
        return DockerBackend.from_env()
    except BackendUnavailable as exc:
        pytest.fail(f"{exc.message} Or deselect these tests with -m 'not docker'.")


@pytest.fixture(scope="session")
def base_image(docker_backend: DockerBackend) -> str:
    """The local base image, made by scripts/base-image when missing (about 45 s)."""
    started = time.monotonic()
    done = subprocess.run(
        [str(REPO / "scripts" / "base-image")], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/base-image failed:\n{done.stderr[-3000:]}")
    print(f"\nscripts/base-image: {time.monotonic() - started:.1f} s, {done.stdout.strip()}")
    return DEFAULT_BASE_IMAGE


@pytest.fixture(scope="session")
def python_env_image(docker_backend: DockerBackend, base_image: str) -> str:
    """envs/python built offline-first from the base image (about a minute when cold)."""
    definition = load_definition(REPO / "envs", "python")
    started = time.monotonic()
    try:
        lines = list(env_builder(docker_backend).build(definition, PYTHON_ENV_TAG))
    except BuildFailed as exc:
        pytest.fail(exc.message)
    size = docker_backend.inspect_image(PYTHON_ENV_TAG).size
    print(
        f"\nenvs/python -> {PYTHON_ENV_TAG}: {time.monotonic() - started:.1f} s "
        f"({lines[-1]}), {size / 1e6:.0f} MB"
    )
    return PYTHON_ENV_TAG
