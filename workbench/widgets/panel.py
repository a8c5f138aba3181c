"""The whole side panel: one Tab per :class:`~workbench.widgets.common.Section`. A new
section is made in ``__init__`` and added to ``self.sections``."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.widgets.algorithms import AlgorithmsSection
from workbench.widgets.common import Section
from workbench.widgets.datasets import DatasetsSection
from workbench.widgets.models import ModelsSection
from workbench.widgets.services import ServicesSection
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
        options = {"is_admin": me.role == "admin", "poll_interval": poll_interval}
        self.datasets = DatasetsSection(client, **options)
        self.workspaces = WorkspacesSection(client, **options)
        self.algorithms = AlgorithmsSection(client, **options)
        self.training = TrainingSection(client, **options)
        self.models = ModelsSection(client, **options)
        self.services = ServicesSection(client, **options)
        #: the tabs, in order
        self.sections: list[Section[Any]] = [
            self.datasets,
            self.workspaces,
            self.algorithms,
            self.training,
            self.models,
            self.services,
        ]
        self.tabs = w.Tab(
            children=self.sections, titles=tuple(section.title for section in self.sections)
        )
        # some tabs list what the others make: fresh lists when they are opened
        self.tabs.observe(lambda ch: self._opened(ch["new"]), names="selected_index")
        header = w.HTML(f"<b>Workbench</b> · signed in as <code>{me.username}</code> ({me.role})")
        super().__init__([header, self.tabs], **kwargs)
        for section in self.sections:
            section.refresh()

    def _opened(self, index: int | None) -> None:
        section = self.sections[index] if index is not None else None
        if section is not None and section.refresh_on_open:
            section.refresh()

    def stop_polling(self) -> None:
        """Stop following running tasks, loading images and services (a closed panel)."""
        for section in self.sections:
            section.stop_polling()

    @classmethod
    def from_env(cls) -> WorkbenchPanel:
        """A panel for the server this kernel belongs to (``WORKBENCH_URL``/``_TOKEN``)."""
        return cls(WorkbenchClient.from_env())
