"""The Workbench's Jupyter server extension: REST API, side panel and (later) workspace proxy.

Handlers here are thin: they authenticate, parse, call a service from ``workbench`` and
render its result or error. All domain logic lives in the ``workbench`` package.
"""

from __future__ import annotations

from typing import Any

from workbench_ext.app import WorkbenchApp

__all__ = ["WorkbenchApp"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "workbench_ext", "app": WorkbenchApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "@workbench/panel"}]
