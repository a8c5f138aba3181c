"""The swarm backend's replicated services on the local three-node swarm: spread over the
nodes, and healed by the engine alone (no watch of Workbench's runs here): a killed
replica comes back, and a drained node's replica starts on another node."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.conftest import until
from tests.docker_fixtures import LocalSwarm
from workbench.backends.base import (
    HealthCheck,
    Network,
    Replica,
    ReplicatedSpec,
    Rollout,
    RunSpec,
    RunState,
)
from workbench.backends.swarm import SwarmBackend

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SERVER = ("sh", "-c", "exec python3 -m http.server 8000")


@pytest.fixture
def service(
    local_swarm: LocalSwarm, base_image: str
) -> Iterator[tuple[SwarmBackend, ReplicatedSpec]]:
    local_swarm.load(base_image)
    backend = SwarmBackend(local_swarm.client())
    key = uuid.uuid4().hex[:12]
    run = RunSpec(
        name=f"wbtest-{key}",
        image=base_image,
        command=SERVER,
        labels={"wbtest.service": key},
        network=Network(f"wbtest-{key}", remove_when_empty=True),
        read_only_root=True,
        tmpfs={"/tmp": 16},
        user="1000:1000",
    )
    spec = ReplicatedSpec(run, 3, 8000, HealthCheck("/", ready_timeout_s=60))
    yield backend, spec
    backend.remove_replicated(run.labels)


def running(backend: SwarmBackend, spec: ReplicatedSpec) -> list[Replica]:
    replicas = backend.replicas(spec.run.labels, spec.port)
    return [r for r in replicas if r.run.state is RunState.RUNNING]


def node_of(manager: docker.DockerClient, replica: Replica) -> str:
    return str(manager.api.inspect_task(replica.run.id)["NodeID"])


def test_the_engine_spreads_heals_and_moves_replicas_by_itself(
    local_swarm: LocalSwarm, service: tuple[SwarmBackend, ReplicatedSpec]
) -> None:
    backend, spec = service
    manager = local_swarm.client()
    sent: list[list[str]] = []
    ready = backend.deploy_replicated(spec, Rollout(sent.append))
    assert [r.slot for r in ready] == [0, 1, 2] and sent == [[r.target for r in ready]]
    assert len({node_of(manager, r) for r in ready}) == 3, "one replica a node"

    # kill replica 0's container on its node: the engine starts a new task for its slot
    nodes = {local_swarm.client(i).info()["Swarm"]["NodeID"]: i for i in range(3)}
    task = manager.api.inspect_task(ready[0].run.id)
    on = local_swarm.client(nodes[task["NodeID"]])
    killed = time.monotonic()
    on.containers.get(task["Status"]["ContainerStatus"]["ContainerID"]).kill()
    back = until(
        lambda: (
            len(now := running(backend, spec)) == 3
            and ready[0].run.id not in {r.run.id for r in now}
            and now
        ),
        60,
        0.5,
    )
    print(f"a killed replica was replaced by the engine in {time.monotonic() - killed:.1f} s")
    assert [r.slot for r in back] == [0, 1, 2]

    # drain replica 1's node: its replica starts elsewhere, the others stay
    drained = manager.nodes.get(node_of(manager, back[1]))
    drained.update({**drained.attrs["Spec"], "Availability": "drain"})
    try:
        moved = until(
            lambda: (
                len(now := running(backend, spec)) == 3
                and drained.id not in {node_of(manager, r) for r in now}
                and now
            ),
            60,
            0.5,
        )
        assert {back[0].run.id, back[2].run.id} <= {r.run.id for r in moved}
    finally:
        drained.reload()
        drained.update({**drained.attrs["Spec"], "Availability": "active"})
