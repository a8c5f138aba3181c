"""The swarm backend's replicated services on the local three-node swarm: spread over the
nodes, and healed by the engine alone (no watch of Workbench's runs here): a killed
replica comes back, and a drained node's replica starts on another node. Images reach the
nodes through the registry, by digest; a registry that is down, or a replica no node can
hold, fails the deploy within seconds and changes nothing that runs."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.cluster.conftest import served
from tests.conftest import until
from tests.docker_fixtures import LocalSwarm
from workbench.backends.base import (
    Limits,
    Mount,
    Replica,
    ReplicatedSpec,
    Rollout,
    RunState,
)
from workbench.backends.swarm import SwarmBackend
from workbench.backends.swarm_store import SHARED_LABEL
from workbench.errors import BackendError, JobFailed
from workbench.jobs.kinds import JobCancelled

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROLLOUT = Rollout(lambda targets: None)


@pytest.fixture
def service(
    local_swarm: LocalSwarm, base_image: str
) -> Iterator[tuple[SwarmBackend, ReplicatedSpec]]:
    local_swarm.load(base_image)
    backend = SwarmBackend(local_swarm.client(), registry=local_swarm.registry)
    spec = served(base_image)
    yield backend, spec
    backend.remove_replicated(spec.run.labels)


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


def test_a_new_image_reaches_every_node_by_digest_from_the_registry(
    local_swarm: LocalSwarm, service: tuple[SwarmBackend, ReplicatedSpec], tmp_path: Path
) -> None:
    backend, spec = service
    # an image only the manager holds: the other nodes can get it from the registry alone
    (tmp_path / "Dockerfile").write_text(
        f"FROM {spec.run.image}\nRUN echo {uuid.uuid4().hex} > /tmp/made-here\n"
    )
    tag = f"wbtest/only-on-the-manager:{uuid.uuid4().hex[:8]}"
    list(backend.build_image(tmp_path, tag))
    for node in range(1, 3):
        with pytest.raises(docker.errors.ImageNotFound):
            local_swarm.client(node).images.get(tag)

    ready = backend.deploy_replicated(replace(spec, run=replace(spec.run, image=tag)), ROLLOUT)

    manager = local_swarm.client()
    assert len({node_of(manager, r) for r in ready}) == 3
    images = {manager.api.inspect_task(r.run.id)["Spec"]["ContainerSpec"]["Image"] for r in ready}
    (image,) = images
    assert image.startswith(f"{local_swarm.registry}/wbtest/only-on-the-manager@sha256:")


def test_a_registry_that_is_down_fails_the_deploy_at_once_and_changes_nothing(
    local_swarm: LocalSwarm, service: tuple[SwarmBackend, ReplicatedSpec]
) -> None:
    backend, spec = service
    before = backend.deploy_replicated(replace(spec, replicas=1), ROLLOUT)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{s.getsockname()[1]}"
    elsewhere = SwarmBackend(local_swarm.client(), registry=down)

    started = time.monotonic()
    with pytest.raises(BackendError) as failed:
        elsewhere.deploy_replicated(replace(spec, replicas=1), replace(ROLLOUT, restart=True))

    assert time.monotonic() - started < 15
    assert f"pushing {spec.run.image} to the image registry {down} failed" in failed.value.message
    assert "services that run are not changed" in failed.value.message
    assert [r.run.id for r in running(backend, spec)] == [r.run.id for r in before]


def test_a_replica_no_node_can_hold_fails_within_seconds_saying_why(
    service: tuple[SwarmBackend, ReplicatedSpec],
) -> None:
    backend, spec = service
    huge = replace(spec.run, limits=Limits(memory_mb=64 << 20))  # 64 TiB
    started = time.monotonic()
    with pytest.raises(JobFailed) as failed:  # a new service: nothing of it is left
        backend.deploy_replicated(replace(spec, run=huge, replicas=1), ROLLOUT)
    assert time.monotonic() - started < 20
    assert "cannot run on any node of the swarm" in failed.value.message
    assert "insufficient resources" in failed.value.message
    assert backend.replicas(spec.run.labels, spec.port) == []

    before = backend.deploy_replicated(replace(spec, replicas=1), ROLLOUT)
    with pytest.raises(JobFailed):  # an update: the replica before it serves on
        backend.deploy_replicated(replace(spec, run=huge, replicas=1), ROLLOUT)
    after = until(lambda: (now := running(backend, spec)) and now, 30, 0.5)
    assert [r.run.id for r in after] == [r.run.id for r in before]


def services(swarm: LocalSwarm, spec: ReplicatedSpec) -> list[dict[str, Any]]:
    """The swarm's services of ``spec``, as the engine has them."""
    labels = [f"{k}={v}" for k, v in spec.run.labels.items()]
    return list(swarm.client().api.services(filters={"label": labels}))


def test_a_cancelled_deploy_puts_the_service_back_as_it_was(
    local_swarm: LocalSwarm, service: tuple[SwarmBackend, ReplicatedSpec]
) -> None:
    backend, spec = service
    one = replace(spec, replicas=1)
    backend.deploy_replicated(one, ROLLOUT)
    (before,) = services(local_swarm, spec)
    looks = iter(range(1000))

    def cancel_after_a_look() -> None:
        if next(looks) >= 2:  # the update has started
            raise JobCancelled("cancelled by its owner")

    with pytest.raises(JobCancelled):
        backend.deploy_replicated(
            one, Rollout(lambda t: None, check=cancel_after_a_look, restart=True)
        )

    (after,) = services(local_swarm, spec)
    assert after["Spec"]["TaskTemplate"] == before["Spec"]["TaskTemplate"], "rolled back"
    until(lambda: len(running(backend, spec)) == 1, 60, 0.5)


def test_a_node_without_the_shared_store_gets_no_replica(
    local_swarm: LocalSwarm, service: tuple[SwarmBackend, ReplicatedSpec]
) -> None:
    _, spec = service
    store = local_swarm.shared / uuid.uuid4().hex[:12]  # node 3 sees an empty folder there
    (store / "model").mkdir(parents=True)
    (store / "model" / "index.html").write_text("served from the shared store")
    backend = SwarmBackend(local_swarm.client(), registry=local_swarm.registry, shared=store)
    run = replace(
        spec.run,
        command=("python3", "-m", "http.server", "8000", "--directory", "/srv/model"),
        mounts=(Mount(store / "model", "/srv/model", read_only=True),),
    )
    logged: list[str] = []

    ready = backend.deploy_replicated(
        replace(spec, run=run, replicas=3), Rollout(lambda targets: None, log=logged.append)
    )

    manager = local_swarm.client()
    number = {n.id: n.attrs["Spec"]["Labels"]["workbench.test-node"] for n in manager.nodes.list()}
    placed = sorted(number[node_of(manager, r)] for r in ready)
    assert placed and set(placed) <= {"1", "2"}, placed
    labelled = {
        n.attrs["Spec"]["Labels"]["workbench.test-node"]
        for n in manager.nodes.list()
        if n.attrs["Spec"]["Labels"].get(SHARED_LABEL)
    }
    assert labelled == {"1", "2"}
    assert any("1 node(s) do not see the shared store" in line for line in logged), logged


def test_a_service_gone_already_is_removed_without_an_error(
    service: tuple[SwarmBackend, ReplicatedSpec],
) -> None:
    backend, _ = service
    # listed, then removed by another server (or by hand) before this one removes it
    backend._remove_service("wbtest-no-such-service")
