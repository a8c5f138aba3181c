"""``workbench cluster`` on the local three-node swarm, at the service: each node with its
labels and the replica of this server's service that runs there, named for its owner and
an admin; a member may not drain; an admin's drain empties the node, its replica started
on another by the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.conftest import served
from tests.conftest import add_people, make_workbench, until
from tests.docker_fixtures import LocalSwarm
from workbench.backends.base import Rollout
from workbench.backends.swarm import SwarmBackend
from workbench.cluster.service import ClusterService
from workbench.deployments.jobs import service_labels
from workbench.errors import PermissionDenied
from workbench.registry.models import Service

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_nodes_show_where_each_replica_runs_and_a_drain_moves_it(
    local_swarm: LocalSwarm, base_image: str, tmp_path: Path
) -> None:
    local_swarm.load(base_image)
    wb = make_workbench(tmp_path / "home", backend="fake")
    people = add_people(wb)  # alice: an admin; bob: a member
    with wb.registry.session() as s:
        row = Service(name="spread", owner_id=people.bob.id, visibility="private")
        s.add(row)
        s.flush()
        service_id = row.id
    swarm = SwarmBackend(local_swarm.client(), registry=local_swarm.registry)
    cluster = ClusterService(
        wb.registry, backend_factory=lambda: swarm, instance=wb.settings.instance
    )
    labels = service_labels(wb.settings.instance, service_id)
    swarm.deploy_replicated(served(base_image, labels=labels), Rollout(print))
    drained = ""
    try:
        nodes = cluster.nodes(people.bob)
        assert sorted(n.labels["workbench.test-node"] for n in nodes) == ["1", "2", "3"]
        assert {n.state for n in nodes} == {"ready"} and [n.role for n in nodes].count(
            "manager"
        ) == 1
        replicas = sorted(r.name for n in nodes for r in n.runs)
        assert replicas == [f"service spread, replica {i}" for i in range(3)]
        assert all(len(n.runs) == 1 for n in nodes), "one replica a node"
        assert {r.owner for n in cluster.nodes(people.alice) for r in n.runs} == {"bob"}

        with pytest.raises(PermissionDenied):
            cluster.set_availability(people.bob, nodes[0].id, "drain")
        drained = nodes[0].id
        assert cluster.set_availability(people.alice, drained, "drain").availability == "drain"

        def moved() -> bool:
            now = {n.id: n for n in cluster.nodes(people.alice)}
            return not now[drained].runs and sum(len(n.runs) for n in now.values()) == 3

        until(moved, 60, 0.5)
    finally:
        if drained:
            cluster.set_availability(people.alice, drained, "active")
        swarm.remove_replicated(labels)
        wb.close()
