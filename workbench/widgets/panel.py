"""The whole side panel: one Tab per :class:`~workbench.widgets.section.Section`. A new
section is added to :data:`SECTIONS`, with a :class:`SectionTab` that names it."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.widgets.algorithms import AlgorithmsSection
from workbench.widgets.cluster import ClusterSection
from workbench.widgets.datasets import DatasetsSection
from workbench.widgets.models import ModelsSection
from workbench.widgets.section import Section
from workbench.widgets.services import ServicesSection
from workbench.widgets.training import TrainingSection
from workbench.widgets.workspaces import WorkspacesSection

#: the panel's own rules, for a sidebar: tabs as wide as their names (two rows when the
#: sidebar is narrower than them), the tab bar kept in view while the tab scrolls, and
#: descriptions as wide as their words
PANEL_STYLE = """<style>
.wb-panel .widget-tab > .lm-TabBar {
  position: sticky; top: 0; z-index: 5; height: auto; min-height: 0;
  background: var(--jp-layout-color1, #fff);
}
.wb-panel .widget-tab > .lm-TabBar .lm-TabBar-content { flex-wrap: wrap; }
.wb-panel .widget-tab > .lm-TabBar .lm-TabBar-tab {
  flex: 1 1 auto; min-width: max-content; padding: 0 8px;
}
.wb-panel .widget-label { min-width: max-content; }
</style>"""


S = TypeVar("S", bound=Section[Any])

#: the tabs, in order
SECTIONS: tuple[type[Section[Any]], ...] = (
    DatasetsSection,
    WorkspacesSection,
    AlgorithmsSection,
    TrainingSection,
    ModelsSection,
    ServicesSection,
    ClusterSection,
)


class SectionTab(Generic[S]):
    """A panel's attribute that names the section of one tab (``panel.datasets``): read, it
    is that section, made first if its tab was never opened (:meth:`WorkbenchPanel.section`)."""

    def __init__(self, kind: type[S]) -> None:
        self.kind = kind

    @overload
    def __get__(self, panel: None, owner: type[WorkbenchPanel]) -> SectionTab[S]: ...

    @overload
    def __get__(self, panel: WorkbenchPanel, owner: type[WorkbenchPanel]) -> S: ...

    def __get__(
        self, panel: WorkbenchPanel | None, owner: type[WorkbenchPanel]
    ) -> S | SectionTab[S]:
        if panel is None:  # read on the class
            return self
        made = panel.section(SECTIONS.index(self.kind))
        assert isinstance(made, self.kind)
        return made


class WorkbenchPanel(w.VBox):
    """The tabs of :data:`SECTIONS`, each section made (and its list fetched) when its tab
    is first opened: a panel opens with one section's widgets, not all seven's (about 900
    widget models, each one a message the browser must handle before the panel answers)."""

    def __init__(
        self, client: WorkbenchClient, *, poll_interval: float = 1.0, **kwargs: Any
    ) -> None:
        """``poll_interval``: seconds between two looks at a running task or a loading
        image (the task list follows at three times that)."""
        self.client = client
        me = client.me()
        self._options = {"is_admin": me.role == "admin", "poll_interval": poll_interval}
        #: the sections made so far, by tab
        self.made: dict[int, Section[Any]] = {}
        self.tabs = w.Tab(
            children=[w.VBox() for _ in SECTIONS],
            titles=tuple(kind.title for kind in SECTIONS),
        )
        # a tab opened: its section made, or (some tabs list what the others make) refreshed
        self.tabs.observe(lambda ch: self._opened(ch["new"]), names="selected_index")
        header = w.HTML(
            f"{PANEL_STYLE}<b>Workbench</b> · signed in as <code>{me.username}</code> ({me.role})"
        )
        super().__init__([header, self.tabs], **kwargs)
        self.add_class("wb-panel")
        self.section(0)

    def section(self, index: int) -> Section[Any]:
        """The section of tab ``index``, made (with its list fetched) if it was not yet."""
        if index not in self.made:
            made = SECTIONS[index](self.client, **self._options)
            self.made[index] = made
            self.tabs.children[index].children = (made,)
            made.refresh()
        return self.made[index]

    datasets = SectionTab(DatasetsSection)
    workspaces = SectionTab(WorkspacesSection)
    algorithms = SectionTab(AlgorithmsSection)
    training = SectionTab(TrainingSection)
    models = SectionTab(ModelsSection)
    services = SectionTab(ServicesSection)
    cluster = SectionTab(ClusterSection)

    def _opened(self, index: int | None) -> None:
        if index is None:
            return
        if index not in self.made:
            self.section(index)
        elif self.made[index].refresh_on_open:
            self.made[index].refresh()

    def stop_polling(self) -> None:
        """Stop following running tasks, loading images and services (a closed panel)."""
        for section in self.made.values():
            section.stop_polling()

    @classmethod
    def from_env(cls) -> WorkbenchPanel:
        """A panel for the server this kernel belongs to (``WORKBENCH_URL``/``_TOKEN``)."""
        return cls(WorkbenchClient.from_env())
