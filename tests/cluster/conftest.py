"""The cluster tests: a real multi-node Docker Swarm on this one machine (the ``local_swarm``
fixture of ``tests/docker_fixtures.py``), and the replicated service they deploy on it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from workbench.backends.base import HealthCheck, Network, ReplicatedSpec, RunSpec

#: a server answering / on port 8000 (python3 is in the base image)
SERVER = ("sh", "-c", "exec python3 -m http.server 8000")


def served(
    image: str,
    command: Sequence[str] = SERVER,
    *,
    replicas: int = 3,
    labels: Mapping[str, str] | None = None,
) -> ReplicatedSpec:
    """``replicas`` runs of ``command`` (a server on port 8000 that answers /) as uid 1000
    with a read-only root and a /tmp, on a network of their own: named after a new key,
    and labelled with it unless ``labels`` says otherwise."""
    key = uuid.uuid4().hex[:12]
    run = RunSpec(
        name=f"wbtest-{key}",
        image=image,
        command=tuple(command),
        labels=dict(labels or {"wbtest.service": key}),
        network=Network(f"wbtest-{key}", remove_when_empty=True),
        read_only_root=True,
        tmpfs={"/tmp": 16},
        user="1000:1000",
    )
    return ReplicatedSpec(run, replicas, 8000, HealthCheck("/", ready_timeout_s=60))
