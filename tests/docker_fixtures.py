"""Session fixtures for tests on the real Docker Engine: the backend, the local base image,
the `python`, `pytorch` and `tensorflow` environment images (built once per machine:
EnvBuilder skips a build when the image already carries the same hash) and the image
registry (`scripts/registry`), and a real multi-node swarm on this machine
(`scripts/swarm-nodes`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from workbench.backends.docker import DockerBackend
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.environments.builder import EnvBuilder
from workbench.environments.definition import load_definition
from workbench.errors import BackendUnavailable, BuildFailed

REPO = Path(__file__).resolve().parents[1]
#: the environment images' tag: another one (``WORKBENCH_TEST_ENV_TAG``) lets two checkouts
#: test side by side on one engine, each with images of its own Workbench wheel
ENV_TAG = os.environ.get("WORKBENCH_TEST_ENV_TAG") or "test"
PYTHON_ENV_TAG = f"workbench/env-python:{ENV_TAG}"
TENSORFLOW_ENV_TAG = f"workbench/env-tensorflow:{ENV_TAG}"


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


def python_env_image_for(backend: DockerBackend) -> str:
    """The base image and envs/python built if missing (scripts and benchmarks; the
    tests use the fixtures): the image's tag. Raises what the build raises."""
    subprocess.run([str(REPO / "scripts" / "base-image")], check=True, capture_output=True)
    list(env_builder(backend).build(load_definition(REPO / "envs", "python"), PYTHON_ENV_TAG))
    return PYTHON_ENV_TAG


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


def build_env(backend: DockerBackend, name: str, tag: str) -> str:
    """envs/<name> built from the base image as ``tag``, with the time and size printed."""
    definition = load_definition(REPO / "envs", name)
    started = time.monotonic()
    try:
        lines = list(env_builder(backend).build(definition, tag))
    except BuildFailed as exc:
        pytest.fail(exc.message)
    size = backend.inspect_image(tag).size
    print(
        f"\nenvs/{name} -> {tag}: {time.monotonic() - started:.1f} s "
        f"({lines[-1]}), {size / 1e6:.0f} MB"
    )
    return tag


@pytest.fixture(scope="session")
def python_env_image(docker_backend: DockerBackend, base_image: str) -> str:
    """envs/python built offline-first from the base image (about a minute when cold)."""
    return build_env(docker_backend, "python", PYTHON_ENV_TAG)


@pytest.fixture(scope="session")
def tensorflow_env_image(docker_backend: DockerBackend, base_image: str) -> str:
    """envs/tensorflow (TensorFlow CPU, Keras, tf2onnx): about 1.6 GB, a few minutes cold."""
    return build_env(docker_backend, "tensorflow", TENSORFLOW_ENV_TAG)


# --- the pytorch environment (examples/algorithms) ------------------------------------------

PYTORCH_ENV_TAG = f"workbench/env-pytorch:{ENV_TAG}"
TORCH_WHEEL_GLOB = "torch-2.13.0*.whl"


def torch_wheels_dir() -> Path | None:
    """The first folder holding a torch 2.13.0 wheel: ``WORKBENCH_ENV_WHEELS``, then the
    find-links of pip's configuration (files and ``PIP_FIND_LINKS``)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    values = [os.environ.get("WORKBENCH_ENV_WHEELS", ""), os.environ.get("PIP_FIND_LINKS", "")]
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            values.append(value.strip("'\""))
    for folder in (Path(v) for value in values for v in value.split()):
        if folder.is_dir() and any(folder.glob(TORCH_WHEEL_GLOB)):
            return folder
    return None


@pytest.fixture(scope="session")
def pytorch_env_image(docker_backend: DockerBackend, base_image: str) -> str:
    """envs/pytorch with this machine's torch wheel (about 100 s when cold)."""
    wheels = torch_wheels_dir()
    if wheels is None:
        pytest.fail(
            "no torch 2.13.0 wheel found to build envs/pytorch: put one "
            f"({TORCH_WHEEL_GLOB}) in a folder named by WORKBENCH_ENV_WHEELS or by pip's "
            "find-links (`pip config list`), or deselect these tests with -m 'not docker'."
        )
    definition = load_definition(REPO / "envs", "pytorch")
    builder = EnvBuilder(
        docker_backend,
        extra_ca_bundle=host_ca_bundle(),
        wheels_dir=wheels,
        pip_index_url=os.environ.get("WORKBENCH_PIP_INDEX_URL") or None,
    )
    started = time.monotonic()
    try:
        lines = list(builder.build(definition, PYTORCH_ENV_TAG))
    except BuildFailed as exc:
        pytest.fail(exc.message)
    size = docker_backend.inspect_image(PYTORCH_ENV_TAG).size
    print(
        f"\nenvs/pytorch -> {PYTORCH_ENV_TAG}: {time.monotonic() - started:.1f} s "
        f"({lines[-1]}), {size / 1e6:.0f} MB"
    )
    return PYTORCH_ENV_TAG


#: a small inference image by the contract: /health, and POST /predict answering which
#: build it is (ANSWER, baked in) and the text it got
ECHO_SERVER = """
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self.answer(200, {"status": "ok"})
        else:
            self.answer(404, {"error": f"no route GET {self.path}"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if "text" not in body:
            self.answer(400, {"error": "send {\\"text\\": ...}"})
        else:
            self.answer(200, {"build": os.environ["ANSWER"], "text": body["text"],
                              "model_dir": os.environ.get("MODEL_DIR", "")})

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def echo_image_tar(backend: DockerBackend, base: str, folder: Path, build: str) -> Path:
    """The echo inference image (build ``build``) from the base image, as a docker save
    tar, its tag removed from the engine again (the upload loads it)."""
    context = folder / f"echo-{build}"
    context.mkdir(parents=True)
    (context / "serve.py").write_text(ECHO_SERVER)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nENV ANSWER={build}\nCOPY serve.py /app/serve.py\n"
        'CMD ["python3", "/app/serve.py"]\n'
    )
    tag = f"wbtest/echo-predict:{build}-{int(time.time())}"
    list(backend.build_image(context, tag))
    tar = folder / f"predict-echo-{build}.tar"
    backend.save_image(tag, tar)
    backend.remove_image(tag)
    return tar


@dataclass(frozen=True)
class ImageRegistry:
    """The image registry ``scripts/registry`` runs (Debian's docker-registry) on a
    loopback address, which the engine pushes to and pulls from over plain HTTP."""

    #: ``host:port``
    host: str

    def push(self, image: str, name: str) -> str:
        """Push the local image ``image`` (a tag) as ``<host>/<name>`` (``repo:tag``), then
        take both tags off here, so that pulling it downloads it again; the reference."""
        reference = f"{self.host}/{name}"
        repository, tag = reference.rsplit(":", 1)
        client = docker.from_env()
        try:
            client.api.tag(image, repository, tag)
            for entry in client.api.push(repository, tag, stream=True, decode=True):
                assert "error" not in entry, entry
            client.api.remove_image(reference)
            client.api.remove_image(image)
        finally:
            client.close()
        return reference


@pytest.fixture(scope="session")
def image_registry() -> ImageRegistry:
    """The registry ``scripts/test`` started (``WORKBENCH_TEST_REGISTRY``), or started now."""
    host = os.environ.get("WORKBENCH_TEST_REGISTRY")
    if not host:
        started = subprocess.run(
            [str(REPO / "scripts" / "registry")], capture_output=True, text=True, check=False
        )
        if started.returncode != 0:
            pytest.fail(f"scripts/registry failed: {started.stderr.strip()}")
        host = started.stdout.strip()
    return ImageRegistry(host)


# --- a local multi-node swarm -------------------------------------------------------------

#: three dockerd nodes, each in a network namespace of its own on a host bridge, node 1 the
#: manager; made once per session and removed after it; the main engine is not touched
SWARM_SCRIPT = REPO / "scripts" / "swarm-nodes"


@dataclass(frozen=True)
class LocalSwarm:
    #: each node's ``DOCKER_HOST``; the first is the manager's
    nodes: tuple[str, ...]
    #: ``host:port`` of the image registry, the same on every node and here
    registry: str
    #: a folder every node sees, but node 3 (whose engine sees an empty one there): where
    #: a test puts a shared store
    shared: Path = (
        Path(os.environ.get("WORKBENCH_SWARM_DIR", "/var/lib/workbench-swarm")) / "shared"
    )

    def client(self, node: int = 0) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.nodes[node], timeout=60)

    def load(self, image: str) -> None:
        """Copy ``image`` of the main engine into every node (no registry between them)."""
        subprocess.run([str(SWARM_SCRIPT), "load", image], check=True, capture_output=True)


def _swarm_nodes(*args: str, registry: str = "127.0.0.1:5000") -> str:
    done = subprocess.run(
        [str(SWARM_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WORKBENCH_REGISTRY_ADDR": registry},
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/swarm-nodes {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="session")
def local_swarm(image_registry: ImageRegistry) -> Iterator[LocalSwarm]:
    """The nodes, each reaching the image registry at its own loopback address, as this
    host does."""
    try:
        swarm = LocalSwarm(
            tuple(_swarm_nodes("up", "3", registry=image_registry.host).split()),
            image_registry.host,
        )
        yield swarm
    finally:  # a swarm that came up half way goes too
        _swarm_nodes("down")
