"""The Cluster tab: the nodes runs are placed on, each with its labels, resources and
state, and what of mine runs on it (an admin: all, with their owners); an admin drains a
node, pauses it or makes it active again."""

from __future__ import annotations

import ipywidgets as w

from workbench.cluster.schemas import Availability, NodeView
from workbench.widgets.common import escape, heading_html, state_html, table_html
from workbench.widgets.section import Section


class ClusterSection(Section[NodeView]):
    area = "cluster"
    noun = "node"
    refresh_on_open = True  # what runs where changes with every other tab's work
    empty_hint = "The backend has no node to show."

    def build_details(self) -> w.Box:
        self.summary = w.HTML()
        self.runs_table = w.HTML()
        self.runs_table.add_class("wb-cluster-runs")
        self.availability_buttons = {
            availability: w.Button(description=text, icon=icon, tooltip=tip)
            for availability, text, icon, tip in (
                ("drain", "Drain", "sign-out", "Move what runs here to the other nodes"),
                ("pause", "Pause", "pause", "Keep what runs here; place nothing new here"),
                ("active", "Activate", "play", "Place work here again"),
            )
        }
        for availability, button in self.availability_buttons.items():
            button.on_click(lambda _, a=availability: self.set_availability(a))
        actions = w.HBox(list(self.availability_buttons.values()))
        actions.layout.display = "" if self.is_admin else "none"  # an admin's
        return w.VBox([self.summary, self.runs_table, actions])

    def fetch(self) -> list[NodeView]:
        return self.client.cluster.nodes()

    def label(self, node: NodeView) -> str:
        count = len(node.runs) + node.others
        return (
            f"{node.name} · {node.role} · {node.state} · {node.availability} · "
            f"{count} run{'' if count == 1 else 's'}"
        )

    def render(self, node: NodeView) -> None:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(node.labels.items())) or "-"
        gpus = f", {node.gpus} GPU" if node.gpus else ""
        rows = [
            ("id", f"<code>{escape(node.id)}</code>"),
            ("state", f"{state_html(node.state)} · {escape(node.availability)}"),
            ("address", escape(node.address or "this machine alone")),
            ("resources", f"{node.cpus:g} CPUs, {node.memory_mb / 1024:.1f} GiB{gpus}"),
            ("labels", escape(labels)),
            ("engine", escape(node.engine)),
        ]
        self.summary.value = heading_html(node.name) + table_html(["", ""], rows)
        runs = [[escape(r.kind), escape(r.name), escape(r.owner)] for r in node.runs]
        others = (
            f"<div><i>and {node.others} run{'' if node.others == 1 else 's'} of other "
            "users</i></div>"
            if node.others
            else ""
        )
        self.runs_table.value = (
            table_html(["what", "", "owner"], runs)
            if runs
            else "<i>Nothing of yours runs here.</i>"
        ) + others
        for availability, button in self.availability_buttons.items():
            button.disabled = node.availability == availability

    def set_availability(self, availability: Availability) -> None:
        done = {"drain": "drained", "pause": "paused", "active": "active again"}[availability]
        self.act(
            lambda node_id: self.client.cluster.set_availability(str(node_id), availability), done
        )
