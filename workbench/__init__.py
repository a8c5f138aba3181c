"""Workbench: from a trained model to an online service, inside JupyterLab.

This package is the core: registry, artifact store, services and backends. It never
imports Jupyter or ipywidgets (those live in ``workbench_ext`` and ``workbench.widgets``).
"""

__version__ = "0.1.0"
