"""The panel's charts: a plotly figure kept in Python and sent whole, as JupyterLab's
plotly output, each time it is drawn (:class:`Chart`), and :func:`chart` to make one from
its traces and layout."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from workbench.widgets.common import escape

#: the MIME type JupyterLab's plotly extension draws (Voila's pages load it too)
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class Chart(w.Output):
    """A plotly figure, drawn in the browser from its JSON by JupyterLab's plotly renderer,
    as wide as the panel (it follows the panel's width), or ``empty`` said in words while
    no trace has a point.

    Not a ``go.FigureWidget``: that is an anywidget whose front end must load plotly.js
    within 2 s of the page asking, and on a busy machine it does not (the chart stays
    blank, "[anywidget] Failed to initialize model"). Here the figure lives in Python and
    each :meth:`draw` sends it whole, as an output, which the page draws whenever it gets
    to it. Change the figure inside ``with chart.drawing() as figure:``, or draw another.
    """

    def __init__(self, figure: go.Figure, empty: str, config: dict[str, Any] | None = None) -> None:
        super().__init__(layout=w.Layout(width="100%"))
        self.empty = empty
        self.config = {"displaylogo": False, "responsive": True, **(config or {})}
        self.draw(figure)

    @contextmanager
    def drawing(self) -> Iterator[go.Figure]:
        """The figure to change; drawn again when the block ends."""
        with self.figure.batch_update():
            yield self.figure
        self.draw(self.figure)

    def draw(self, figure: go.Figure) -> None:
        self.figure = figure
        if not any(_has_points(trace) for trace in figure.data):
            note = f"<div class='wb-chart-empty' style='{EMPTY_STYLE}'>{escape(self.empty)}</div>"
            data = {"text/html": note, "text/plain": self.empty}
        else:
            bundle = json.loads(figure.to_json(validate=False))
            data = {PLOTLY_MIME: {**bundle, "config": self.config}}
        self.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


#: how an empty chart says so
EMPTY_STYLE = "padding:14px 8px;color:var(--jp-ui-font-color2, #757575);font-style:italic"


def _has_points(trace: Any) -> bool:
    return any(len(getattr(trace, axis, None) or ()) for axis in ("y", "z"))


def chart(data: Sequence[Any] = (), *, empty: str, **layout: Any) -> Chart:
    """A plotly chart, ``empty`` said while it has no points; ``layout``: the keywords of
    ``go.Layout`` (no ``width``: the chart follows the panel's)."""
    layout.setdefault("autosize", True)
    return Chart(go.Figure(data=list(data), layout=go.Layout(**layout)), empty)
