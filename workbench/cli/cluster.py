"""``workbench cluster``: the nodes runs are placed on, what of mine runs on each (an
admin: all), and an admin's drain, pause or activate."""

from __future__ import annotations

import click

from workbench.cli import common
from workbench.client import WorkbenchClient
from workbench.cluster.schemas import Availability, NodeView

cluster = click.Group("cluster", help="The nodes: list them, drain, pause or activate one.")


def _print_node(node: NodeView) -> None:
    where = f" at {node.address}" if node.address else ""
    labels = " ".join(f"{k}={v}" for k, v in sorted(node.labels.items()))
    gpus = f", {node.gpus} GPU" if node.gpus else ""
    click.echo(
        f"{node.id[:12]:<12}  {node.name}{where}  {node.role} {node.state} {node.availability}"
        f"  {node.cpus:g} CPUs, {node.memory_mb / 1024:.1f} GiB{gpus}  {node.engine}"
        + (f"  [{labels}]" if labels else "")
    )
    for run in node.runs:
        click.echo(f"    {run.name} ({run.owner})")
    if node.others:
        click.echo(f"    and {node.others} run{'' if node.others == 1 else 's'} of other users")


@common.list_command(cluster, "nodes", _print_node)
@common.json_option
def cluster_nodes(c: WorkbenchClient) -> list[NodeView]:
    """The nodes, each with what of mine runs on it."""
    return c.cluster.nodes()


@click.argument("node_id")
def _on_node(node_id: str) -> None:
    """A node, by its id (``workbench cluster nodes`` lists them)."""


def _availability(name: str, availability: Availability, help_text: str) -> None:
    """The command ``name``: make NODE_ID ``availability``, and print it then."""

    def change(c: WorkbenchClient, params: dict[str, str]) -> None:
        _print_node(c.cluster.set_availability(params["node_id"], availability))

    common.client_command(cluster, name, _on_node, change, help_text)


_availability(
    "drain", "drain", "Move what runs on NODE_ID elsewhere; place nothing there (admins)."
)
_availability("pause", "pause", "Keep what runs on NODE_ID; place nothing new there (admins).")
_availability("activate", "active", "Place work on NODE_ID again (admins).")
