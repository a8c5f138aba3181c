"""ipywidgets panels of the Workbench (the only package that imports ipywidgets).

They talk to the server only through :class:`workbench.client.WorkbenchClient`, so the
same panel works in the JupyterLab side panel, in a notebook and in a Voila dashboard.
Each tab is a :class:`~workbench.widgets.section.Section` (its docstring is the contract of
a new one); :class:`WorkbenchPanel` puts them together. :class:`ModelsDashboard` is the
reviewers' read-only page.
"""

from workbench.widgets.algorithms import AlgorithmsSection
from workbench.widgets.datasets import DatasetsSection
from workbench.widgets.models import ModelsSection
from workbench.widgets.models_dashboard import ModelsDashboard
from workbench.widgets.panel import WorkbenchPanel
from workbench.widgets.section import Section
from workbench.widgets.services import ServicesSection
from workbench.widgets.training import TrainingSection
from workbench.widgets.workspaces import WorkspacesSection

__all__ = [
    "AlgorithmsSection",
    "DatasetsSection",
    "ModelsDashboard",
    "ModelsSection",
    "Section",
    "ServicesSection",
    "TrainingSection",
    "WorkbenchPanel",
    "WorkspacesSection",
]
