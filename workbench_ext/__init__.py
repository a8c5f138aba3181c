"""The Workbench's Jupyter server extension: REST API, side panel and (later) workspace proxy.

Handlers here are thin: they authenticate, parse, call a service from ``workbench`` and
render its result or error. All domain logic lives in the ``workbench`` package.
"""

from __future__ import annotations

import warnings
from typing import Any

from workbench_ext.app import WorkbenchApp

__all__ = ["WorkbenchApp"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # Voila shows traitlets' deprecation warnings (a filter it adds on import), and
    # notebook_shim then reads every trait of the server while it links, the deprecated
    # ServerApp.token included: a warning about a setting nobody made. The server finds
    # its extensions (here) after importing Voila and before linking them.
    warnings.filterwarnings(
        "ignore", message="ServerApp.token config is deprecated", category=DeprecationWarning
    )
    return [{"module": "workbench_ext", "app": WorkbenchApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "@workbench/panel"}]
