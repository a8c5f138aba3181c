"""A real multi-node Docker Swarm on this one machine (``scripts/swarm-nodes``): three
dockerd nodes, each in a network namespace of its own on a host bridge, node 1 the
manager. Made once per session and removed after it; the main engine is not touched."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "swarm-nodes"


@dataclass(frozen=True)
class LocalSwarm:
    #: each node's ``DOCKER_HOST``; the first is the manager's
    nodes: tuple[str, ...]

    def client(self, node: int = 0) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.nodes[node], timeout=60)

    def load(self, image: str) -> None:
        """Copy ``image`` of the main engine into every node (no registry between them)."""
        subprocess.run([str(SCRIPT), "load", image], check=True, capture_output=True)


def _script(*args: str) -> str:
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"scripts/swarm-nodes {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="session")
def local_swarm() -> Iterator[LocalSwarm]:
    try:
        swarm = LocalSwarm(tuple(_script("up", "3").split()))
        yield swarm
    finally:  # a swarm that came up half way goes too
        _script("down")
