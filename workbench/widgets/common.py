"""Pieces every section of the panel shares."""

from __future__ import annotations

import html

import ipywidgets as w

from workbench.errors import WorkbenchError

#: a row of controls that wraps in a narrow sidebar
WRAP = w.Layout(flex_flow="row wrap", align_items="center")
CONFIRM_DELETE = "Confirm delete"


def escape(text: str) -> str:
    return html.escape(text, quote=True)


class Status(w.HTML):
    """One line telling the user what happened, errors in red with what to do."""

    def ok(self, text: str) -> None:
        self.value = f"<span style='color:#1b5e20'>{escape(text)}</span>"

    def error(self, exc: WorkbenchError) -> None:
        self.value = f"<span style='color:#b71c1c'><b>{exc.code}</b>: {escape(exc.message)}</span>"
