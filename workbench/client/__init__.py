"""A Python client of the Workbench REST API (used by the CLI, the widgets and notebooks).

    from workbench.client import WorkbenchClient
    wb = WorkbenchClient.from_env()          # WORKBENCH_URL / WORKBENCH_TOKEN, or `workbench login`
    ds = wb.datasets.create(name="digits", purpose="image", sub_purpose="classification",
                            format="dir", split_mode="independent")
    wb.datasets.upload(ds.id, "train", "digits-train.zip", progress=print)

Errors come back as the same exception classes the server raised (``workbench.errors``).
Long operations (builds, image loads, pulls) are jobs on the server: the methods that start
one wait for it by default (``wait=True``) and raise its error if it fails; ``wait=False``
returns at once, and ``client.jobs`` follows it.
"""

from workbench.client._http import Progress
from workbench.client.core import WorkbenchClient

__all__ = ["Progress", "WorkbenchClient"]
