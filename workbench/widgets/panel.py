"""The whole side panel: one Tab per area. Later areas add their section here."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.widgets.algorithms import AlgorithmsSection
from workbench.widgets.datasets import DatasetsSection
from workbench.widgets.training import TrainingSection
from workbench.widgets.workspaces import WorkspacesSection


class WorkbenchPanel(w.VBox):
    def __init__(
        self, client: WorkbenchClient, *, poll_interval: float = 1.0, **kwargs: Any
    ) -> None:
        """``poll_interval``: seconds between two looks at a running task or a loading
        image (the task list follows at three times that)."""
        self.client = client
        me = client.me()
        admin = me.role == "admin"
        self.datasets = DatasetsSection(client, is_admin=admin)
        self.workspaces = WorkspacesSection(client)
        self.algorithms = AlgorithmsSection(client, is_admin=admin, poll_interval=poll_interval)
        self.training = TrainingSection(client, is_admin=admin, poll_interval=poll_interval)
        self.tabs = w.Tab(
            children=[self.datasets, self.workspaces, self.algorithms, self.training],
            titles=("Datasets", "Workspaces", "Algorithms", "Training"),
        )
        # the later tabs list what the earlier ones make: fresh lists when they are opened
        self.tabs.observe(lambda ch: self._opened(ch["new"]), names="selected_index")
        header = w.HTML(f"<b>Workbench</b> · signed in as <code>{me.username}</code> ({me.role})")
        super().__init__([header, self.tabs], **kwargs)
        self.datasets.refresh()
        self.workspaces.refresh()
        self.algorithms.refresh()
        self.training.refresh()

    def _opened(self, index: int | None) -> None:
        section = self.tabs.children[index] if index is not None else None
        if isinstance(section, AlgorithmsSection | TrainingSection):
            section.refresh()

    def stop_polling(self) -> None:
        """Stop following running tasks and loading images (a closed panel)."""
        self.algorithms.images.poller.stop()
        self.training.stop_polling()

    @classmethod
    def from_env(cls) -> WorkbenchPanel:
        """A panel for the server this kernel belongs to (``WORKBENCH_URL``/``_TOKEN``)."""
        return cls(WorkbenchClient.from_env())
