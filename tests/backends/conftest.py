"""The backends under test: the real Docker Engine, real local processes, the in-memory fake.

Docker tests need a running engine (scripts/docker) and the base image (scripts/base-image,
run here once if the image is missing, then reused: it is a cache, never removed). Every
container they make carries ``TEST_LABEL=SESSION`` and every image a tag under
``TAG_PREFIX``; both are removed at the end of the session. A failing test shows the state
and the logs of the runs it made.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.cleanup import SESSION, SUITE_LABEL
from tests.conftest import FAILED
from tests.docker_fixtures import LocalSwarm
from workbench.backends import Backend, RunInfo, RunSpec, RunState
from workbench.backends.base import HealthCheck, Network, ReplicatedSpec
from workbench.backends.docker import DockerBackend
from workbench.backends.fake import FakeBackend
from workbench.backends.local import LocalBackend
from workbench.backends.swarm import SwarmBackend
from workbench.errors import ImageNotFound

ROOT = Path(__file__).resolve().parents[2]
TEST_LABEL = SUITE_LABEL
TAG_PREFIX = f"wbtest-{SESSION}/"
BASE_IMAGE = os.environ.get("WORKBENCH_TEST_BASE_IMAGE", "workbench/base:bookworm")
KINDS = ("docker", "local", "fake")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the Docker cases of ``harness`` (done here and not in its params: this conftest
    may be imported before its marker is registered, which --strict-markers refuses)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("harness") in ("docker", "swarm"):
            item.add_marker("docker")


def sh(script: str) -> tuple[str, ...]:
    return ("sh", "-c", script)


@dataclass
class Harness:
    """One backend plus what a test needs around it: an image, unique run names, waits."""

    kind: str
    backend: Backend
    image: str
    tmp: Path
    made: list[str] = field(default_factory=list)
    #: the labels of the replicated services this test made
    services: list[dict[str, str]] = field(default_factory=list)

    def spec(self, what: str, command: Sequence[str] | None, **fields: Any) -> RunSpec:
        labels = {TEST_LABEL: SESSION, **fields.pop("labels", {})}
        name = f"wbt-{SESSION}-{what}-{uuid.uuid4().hex[:6]}"
        self.made.append(name)
        command = tuple(command) if command is not None else None
        return RunSpec(name=name, image=self.image, command=command, labels=labels, **fields)

    def script(
        self,
        spec: RunSpec,
        lines: Sequence[str] = (),
        *,
        exit_code: int | None = 0,
        start_error: str | None = None,
    ) -> None:
        """What the fake backend should pretend the command does (real backends run it)."""
        if isinstance(self.backend, FakeBackend):
            self.backend.script(spec.name, lines, exit_code=exit_code, start_error=start_error)

    def wait(self, run_id: str, state: RunState = RunState.EXITED, timeout: float = 30) -> RunInfo:
        deadline = time.monotonic() + timeout
        while (info := self.backend.status(run_id)).state is not state:
            assert time.monotonic() < deadline, f"{run_id} still {info.state} after {timeout} s"
            time.sleep(0.05)
        return info

    def report(self) -> str:
        """The state and last log lines of every run this test made (for failures)."""
        parts = []
        for name in self.made:
            try:
                info = self.backend.status(name)
                lines = list(self.backend.logs(name, tail=50))
            except Exception as exc:  # a missing run is fine to report as such
                parts.append(f"--- {name}: {type(exc).__name__}: {exc}")
                continue
            parts.append(f"--- {name}: {info}\n" + "\n".join(lines))
        return "\n".join(parts)

    def replicated(self, what: str, replicas: int, command: Sequence[str]) -> ReplicatedSpec:
        """A replicated service of ``replicas`` runs of ``command``, whose server listens on
        ``${PORT:-8000}`` (the local backend's processes are told their host port)."""
        labels = {"wbtest.service": uuid.uuid4().hex}
        self.services.append({TEST_LABEL: SESSION, **labels})
        # a network of its own, as a service's (the engine's default one has no addresses
        # on swarm)
        network = Network(f"wbt-{labels['wbtest.service'][:12]}", remove_when_empty=True)
        run = self.spec(what, command, ports={8000: 0}, labels=labels, network=network)
        return ReplicatedSpec(run, replicas, 8000, HealthCheck("/", ready_timeout_s=30))

    def cleanup(self) -> None:
        for labels in self.services:
            self.backend.remove_replicated(labels)
        for name in self.made:
            self.backend.remove(name)


# --- Docker ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A raw SDK client, to look at what the backend made the way `docker inspect` does."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"No Docker Engine answers ({exc}): start one with scripts/docker, or deselect "
            "these tests with -m 'not docker'."
        )
    yield client
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={SESSION}"}):
        container.remove(force=True, v=True)
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(TAG_PREFIX):
                with contextlib.suppress(docker.errors.APIError):  # e.g. still in use elsewhere
                    client.images.remove(tag)
    client.close()


@pytest.fixture(scope="session")
def docker_backend(docker_client: docker.DockerClient) -> DockerBackend:
    return DockerBackend.from_env()


@pytest.fixture(scope="session")
def base_image(docker_backend: DockerBackend, docker_client: docker.DockerClient) -> str:
    """The Debian base image with python3 (made by scripts/base-image if missing), pinned
    under a session tag: a rebuild of the shared tag meanwhile cannot pull it away."""
    try:
        docker_backend.inspect_image(BASE_IMAGE)
    except ImageNotFound:
        subprocess.run([ROOT / "scripts" / "base-image", "--tag", BASE_IMAGE], check=True)
    docker_client.api.tag(BASE_IMAGE, f"{TAG_PREFIX}base", "1")
    return f"{TAG_PREFIX}base:1"


@pytest.fixture(scope="session")
def swarm_backend(local_swarm: LocalSwarm, base_image: str) -> SwarmBackend:
    """The swarm backend on the manager of the local multi-node swarm (which holds the base
    image, :data:`BASE_IMAGE`); the other nodes pull it from the registry by digest."""
    local_swarm.load(BASE_IMAGE)
    return SwarmBackend(local_swarm.client(), registry=local_swarm.registry)


# --- local ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    backend = LocalBackend(tmp_path_factory.mktemp("local-backend"))
    yield backend
    for run in backend.list():
        backend.remove(run.id)


@pytest.fixture(scope="session")
def local_image(local_backend: LocalBackend, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty virtual environment: the local backend's image."""
    tag = f"{TAG_PREFIX}venv:1"
    for _ in local_backend.build_image(tmp_path_factory.mktemp("empty-context"), tag):
        pass
    return tag


# --- one fixture over all three -------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``harness`` runs a test on every backend, or on those ``@pytest.mark.backends``
    names (a contract point that does not apply to a backend is not run there at all)."""
    if "harness" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        metafunc.parametrize("harness", marker.args if marker else KINDS, indirect=True)


@pytest.fixture
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = make_harness(request, request.param, tmp_path)
    yield h
    if request.node.stash.get(FAILED, False):
        print(f"runs of the failed test on {h.kind}:\n{h.report()}")
    h.cleanup()


@pytest.fixture
def docker_h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The Docker backend alone, for what only it does."""
    h = make_harness(request, "docker", tmp_path)
    yield h
    if request.node.stash.get(FAILED, False):
        print(f"runs of the failed test:\n{h.report()}")
    h.cleanup()


@pytest.fixture
def local_h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The local backend alone, for what only it does."""
    h = make_harness(request, "local", tmp_path)
    yield h
    if request.node.stash.get(FAILED, False):
        print(f"runs of the failed test:\n{h.report()}")
    h.cleanup()


def make_harness(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Harness:
    if kind == "swarm":
        return Harness(kind, request.getfixturevalue("swarm_backend"), BASE_IMAGE, tmp_path)
    if kind == "docker":
        backend = request.getfixturevalue("docker_backend")
        return Harness(kind, backend, request.getfixturevalue("base_image"), tmp_path)
    if kind == "local":
        backend = request.getfixturevalue("local_backend")
        return Harness(kind, backend, request.getfixturevalue("local_image"), tmp_path)
    fake = FakeBackend()
    fake.add_image("fake/base:1")
    return Harness(kind, fake, "fake/base:1", tmp_path)
