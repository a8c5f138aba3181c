"""Choosing a backend by name, and the package's public surface."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench.backends
from workbench.backends import get_backend
from workbench.backends.docker import DockerBackend
from workbench.backends.fake import FakeBackend
from workbench.backends.local import LocalBackend
from workbench.errors import InvalidInput


def test_the_public_surface_is_declared_once():
    assert set(workbench.backends.__all__) == {
        "BACKEND_NAMES",
        "MANAGED_LABEL",
        "Backend",
        "BackendError",
        "BackendUnavailable",
        "BuildFailed",
        "ImageInfo",
        "ImageNotFound",
        "Limits",
        "Mount",
        "RunInfo",
        "RunNotFound",
        "RunSpec",
        "RunState",
        "Unsupported",
        "get_backend",
    }
    assert all(hasattr(workbench.backends, name) for name in workbench.backends.__all__)


def test_names_pick_their_backend(tmp_path: Path):
    assert isinstance(get_backend("fake", tmp_path), FakeBackend)
    local = get_backend("local", tmp_path)
    assert isinstance(local, LocalBackend)
    assert local.state_dir == tmp_path


def test_an_unknown_name_lists_the_known_ones(tmp_path: Path):
    with pytest.raises(InvalidInput, match="auto, docker, local, fake"):
        get_backend("kubernetes", tmp_path)


def test_auto_falls_back_to_local_without_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")

    assert isinstance(get_backend("auto", tmp_path), LocalBackend)


@pytest.mark.docker
def test_auto_takes_docker_when_it_answers(tmp_path: Path):
    assert isinstance(get_backend("auto", tmp_path), DockerBackend)
