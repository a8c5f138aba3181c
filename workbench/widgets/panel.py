"""The whole side panel: one Tab per area. Later areas add their section here."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.widgets.datasets import DatasetsSection
from workbench.widgets.workspaces import WorkspacesSection


class WorkbenchPanel(w.VBox):
    def __init__(self, client: WorkbenchClient, **kwargs: Any) -> None:
        self.client = client
        me = client.me()
        self.datasets = DatasetsSection(client, is_admin=me.role == "admin")
        self.workspaces = WorkspacesSection(client)
        self.tabs = w.Tab(
            children=[self.datasets, self.workspaces], titles=("Datasets", "Workspaces")
        )
        header = w.HTML(f"<b>Workbench</b> · signed in as <code>{me.username}</code> ({me.role})")
        super().__init__([header, self.tabs], **kwargs)
        self.datasets.refresh()
        self.workspaces.refresh()

    @classmethod
    def from_env(cls) -> WorkbenchPanel:
        """A panel for the server this kernel belongs to (``WORKBENCH_URL``/``_TOKEN``)."""
        return cls(WorkbenchClient.from_env())
