"""The reviewers' read-only page of the models (a Voila page at
``{base_url}workbench/dashboard/models``): :class:`ModelsDashboard`, the Models section
without its actions."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import ipywidgets as w

from workbench.client import WorkbenchClient
from workbench.widgets.common import escape
from workbench.widgets.models import ModelsSection


class ModelsDashboard(w.VBox):
    """The reviewers' read-only view of the models (a Voila page at
    ``{base_url}workbench/dashboard/models``): the Models section without its actions,
    opened on ``model_id`` and ``version_id`` where given (the link's ``?model=&version=``)."""

    def __init__(
        self,
        client: WorkbenchClient,
        model_id: int | None = None,
        version_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        me = client.me()
        self.models = ModelsSection(client, read_only=True)
        header = w.HTML(
            "<h2 style='margin:4px 0'>Workbench · models</h2><small>Read-only: versions, "
            f"evaluation, formats and benchmarks, as <code>{escape(me.username)}</code> sees "
            "them.</small>"
        )
        super().__init__([header, self.models], **kwargs)
        self.models.refresh()
        if model_id is not None:
            self.models.select(model_id)
            if version_id in [value for _, value in self.models.version.options]:
                self.models.version.value = version_id

    @classmethod
    def from_env(cls) -> ModelsDashboard:
        """A dashboard for the server this kernel belongs to (``WORKBENCH_URL``/``_TOKEN``),
        on the model and version its page's query names (Voila's ``QUERY_STRING``)."""
        query = parse_qs(os.environ.get("QUERY_STRING", ""))

        def number(name: str) -> int | None:
            value = query.get(name, [""])[0]
            return int(value) if value.isdigit() else None

        return cls(WorkbenchClient.from_env(), number("model"), number("version"))
