"""``client.cluster``: the nodes runs are placed on, what runs on each, and an admin's
drain."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from workbench.client._http import LONG, parse_list
from workbench.cluster.schemas import Availability, NodeView

if TYPE_CHECKING:
    from workbench.client.core import WorkbenchClient


class ClusterAPI:
    """The nodes: labels, resources, state, and what of mine runs on each."""

    def __init__(self, client: WorkbenchClient) -> None:
        self._c = client

    def nodes(self) -> list[NodeView]:
        return parse_list(NodeView, self._c.json("GET", "/cluster/nodes"))

    def set_availability(self, node_id: str, availability: Availability) -> NodeView:
        """``drain`` (what runs moves to the other nodes), ``pause`` or ``active``; admins."""
        data = self._c.json(
            "POST",
            f"/cluster/nodes/{quote(node_id, safe='')}/availability",
            json={"availability": availability},
            timeout=LONG,
        )
        return NodeView.model_validate(data)
