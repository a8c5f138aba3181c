"""The local multi-node swarm the cluster tests run on (issue 18's harness): three ready
nodes, a replicated service spread one task a node and answering at its task addresses on
an overlay network (no routing mesh here), and a drained node's task placed elsewhere."""

from __future__ import annotations

import uuid
from typing import Any

import docker
import pytest

from tests.conftest import until
from tests.docker_fixtures import LocalSwarm

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: asks each task address of a service for / and prints the answers' statuses
PROBE = (
    "import socket, sys, urllib.request as u; "
    "ips = sorted({a[4][0] for a in socket.getaddrinfo('tasks.' + sys.argv[1], 8000)}); "
    "print(len(ips), *[u.urlopen(f'http://{ip}:8000/', timeout=5).status for ip in ips])"
)


def _running(service: Any) -> list[dict[str, Any]]:
    return [t for t in service.tasks() if t["Status"]["State"] == "running"]


def test_three_nodes_form_a_swarm(local_swarm: LocalSwarm):
    manager = local_swarm.client()
    nodes = manager.nodes.list()
    assert len(nodes) == 3
    assert {n.attrs["Status"]["State"] for n in nodes} == {"ready"}
    assert sorted(n.attrs["Spec"]["Labels"]["workbench.test-node"] for n in nodes) == [
        "1",
        "2",
        "3",
    ]
    assert [n.attrs["Spec"]["Role"] for n in nodes].count("manager") == 1


def test_a_service_spreads_over_the_nodes_answers_and_leaves_a_drained_node(
    local_swarm: LocalSwarm, base_image: str
):
    local_swarm.load(base_image)
    manager = local_swarm.client()
    # by id: a node pulls a tag from a registry first, and none is reachable from these
    image = manager.images.get(base_image).id
    name = f"wbtest-{uuid.uuid4().hex[:8]}"
    network = manager.networks.create(name, driver="overlay", attachable=True)
    service = manager.services.create(
        image,
        ["python3", "-m", "http.server", "8000"],
        name=name,
        mode=docker.types.ServiceMode("replicated", replicas=3),
        networks=[name],
        endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
        preferences=[("spread", "node.labels.workbench.test-node")],
    )
    try:
        tasks = until(lambda: len(running := _running(service)) == 3 and running, 60, 0.5)
        assert len({t["NodeID"] for t in tasks}) == 3, "one task a node"
        answers = manager.containers.run(
            image, ["python3", "-c", PROBE, name], network=name, remove=True
        )
        assert answers.decode().split() == ["3", "200", "200", "200"]

        drained = next(n for n in manager.nodes.list() if n.id == tasks[0]["NodeID"])
        spec = drained.attrs["Spec"]
        drained.update({**spec, "Availability": "drain"})
        moved = until(
            lambda: (
                len(running := _running(service)) == 3
                and drained.id not in {t["NodeID"] for t in running}
                and running
            ),
            60,
            0.5,
        )
        assert {t["NodeID"] for t in moved} <= {n.id for n in manager.nodes.list()} - {drained.id}
        drained.reload()
        drained.update({**drained.attrs["Spec"], "Availability": "active"})
    finally:
        service.remove()
        until(lambda: _removed(network), 30, 0.5)  # once the tasks have left it


def _removed(network: Any) -> bool:
    try:
        network.remove()
    except docker.errors.APIError:  # still in use by a task being removed
        return False
    return True
