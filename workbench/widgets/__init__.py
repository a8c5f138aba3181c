"""ipywidgets panels of the Workbench (the only package that imports ipywidgets).

They talk to the server only through :class:`workbench.client.WorkbenchClient`, so the
same panel works in the JupyterLab side panel, in a notebook and in a Voila dashboard.
"""

from workbench.widgets.algorithms import AlgorithmsSection
from workbench.widgets.panel import WorkbenchPanel
from workbench.widgets.training import TrainingSection

__all__ = ["AlgorithmsSection", "TrainingSection", "WorkbenchPanel"]
