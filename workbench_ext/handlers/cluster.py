"""/cluster/nodes: the machines runs are placed on, with what runs on each (a user: their
own runs, the others counted; an admin: all), and an admin's drain, pause or activate."""

from __future__ import annotations

from workbench.cluster.schemas import AvailabilityChange, NodeView
from workbench_ext.handlers.base import API, WorkbenchHandler
from workbench_ext.handlers.resource import service_call

#: the path parameter of one node's routes
NODE = {"node_id": str}


class ClusterHandlerBase(WorkbenchHandler):
    """Nodes change under their reader: no answer about them is cached."""

    auth_resource = "workbench:cluster"

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")


class NodesHandler(ClusterHandlerBase):
    get = service_call(
        "The nodes: labels, resources, state, and what of mine runs on each (admins: all)",
        lambda wb: wb.cluster.nodes,
        response=list[NodeView],
    )


class NodeAvailabilityHandler(ClusterHandlerBase):
    post = service_call(
        "Drain a node (what runs moves to the others), pause it or make it active (admins)",
        lambda wb: wb.cluster.set_availability,
        AvailabilityChange,
        NodeView,
        path=NODE,
        spread=True,
    )


handlers = [
    (rf"{API}/cluster/nodes", NodesHandler),
    (rf"{API}/cluster/nodes/([^/]+)/availability", NodeAvailabilityHandler),
]
