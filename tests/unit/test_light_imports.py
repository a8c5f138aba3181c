"""What the client and the model server load: neither the registry (SQLAlchemy, Alembic),
nor the engine's SDK, nor Jupyter, nor the widgets. They are installed without the
server's packages (``pip install workbench``, ``workbench[serve]`` in the environment
images), so a module of theirs that pulled one in would fail there; here it fails in a
fresh interpreter that has them all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: the server's packages (the ``server`` extra): never loaded by the client or the model server
HEAVY = (
    "alembic",
    "anywidget",
    "docker",
    "ipywidgets",
    "jupyter_server",
    "jupyterlab",
    "PIL",
    "plotly",
    "sqlalchemy",
    "tornado",
    "voila",
)
#: the model server's (the ``serve`` extra): never loaded by the client
SERVE = ("httptools", "numpy", "orjson", "prometheus_client", "uvloop")


def loaded(*modules: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    "modules",
    [
        ("workbench.client",),
        ("workbench.cli",),
        # what the CLI's client commands and the widgets read besides the client
        (
            "workbench.deployments.metrics",
            "workbench.jobs.schemas",
            "workbench.models.formats",
            "workbench.schemas.quotas",
        ),
        # what a training script imports in its container (the standard library only)
        ("workbench.training.contract",),
    ],
)
def test_the_client_loads_none_of_the_servers_packages(modules):
    assert loaded(*modules) & {*HEAVY, *SERVE} == set()


def test_the_model_server_loads_none_of_the_servers_packages():
    found = loaded("workbench.serving.__main__", "workbench.serving.http")
    assert found & set(HEAVY) == set()
    assert {"numpy", "orjson", "prometheus_client"} <= found  # it did load the model server
