"""Choosing a backend by name, and the package's public surface."""

from __future__ import annotations

from pathlib import Path

import pytest

import workbench.backends
from workbench.backends import get_backend
from workbench.backends.docker import DockerBackend
from workbench.backends.fake import FakeBackend
from workbench.backends.local import LocalBackend
from workbench.errors import BackendUnavailable, InvalidInput


def test_the_public_surface_is_declared_once():
    assert set(workbench.backends.__all__) == {
        "BACKEND_NAMES",
        "MANAGED_LABEL",
        "NO_NETWORK",
        "Backend",
        "ImageInfo",
        "Limits",
        "Mount",
        "Network",
        "RunInfo",
        "RunSpec",
        "RunState",
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


@pytest.mark.parametrize("name", ["auto", "docker"])
def test_without_docker_auto_is_unavailable_never_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
):
    """The attack: a server whose Docker is down for a moment would fall back to running
    every user's files as its own processes, unboxed. It answers 503 instead."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")

    with pytest.raises(BackendUnavailable) as unavailable:
        get_backend(name, tmp_path)
    assert unavailable.value.status == 503
    assert "scripts/docker" in unavailable.value.message
    assert "WORKBENCH_BACKEND=local" in unavailable.value.message


@pytest.mark.docker
def test_auto_takes_docker_when_it_answers(tmp_path: Path):
    assert isinstance(get_backend("auto", tmp_path), DockerBackend)
