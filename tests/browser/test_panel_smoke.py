"""Smoke test of the Workbench side panel in a real JupyterLab and Chromium."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, LabServer, open_workbench_panel

pytestmark = pytest.mark.browser


def test_workbench_panel_renders_in_left_sidebar(page: Page, lab_server: LabServer) -> None:
    frame = open_workbench_panel(page, lab_server)

    # The panel sits in the left sidebar, and its Voila page rendered the ipywidgets UI.
    expect(page.locator("#jp-left-stack #workbench-panel")).to_be_visible()
    expect(frame.locator(".lm-TabBar-tab", has_text="Datasets").first).to_be_visible()
    # The Launcher offers the panel too.
    expect(page.locator(".jp-LauncherCard", has_text="Workbench")).to_be_visible()

    # One Voila kernel for the whole panel, the page's widgets connected to it; any other
    # is the one kept warm for the next page (WarmKernels), connected to nothing.
    deadline = time.monotonic() + 15
    while True:
        kernels = lab_server.api("api/kernels")
        connected = [k for k in kernels if k["connections"] >= 1]
        if len(connected) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(connected) == 1, kernels

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panel-smoke.png"))


PLOTLY_DEMO = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": (
                "import ipywidgets as w\n"
                "import plotly.graph_objects as go\n"
                "from workbench.widgets.charts import chart\n"
                "fig = chart([go.Bar(x=['a', 'b', 'c'], y=[3, 1, 2])], empty='none', height=240)\n"
                "tab = w.Tab(children=[fig, w.Label('second')])\n"
                "tab.titles = ('Chart', 'Other')\n"
                "tab"
            ),
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 4,
}


def test_voila_renders_widgets_and_plotly(page: Page, lab_server: LabServer) -> None:
    """The stack the panel relies on: ipywidgets and the panel's charts (a plotly figure as
    an output, drawn by JupyterLab's plotly renderer) render in Voila on this server."""
    (lab_server.root_dir / "plotly_demo.ipynb").write_text(json.dumps(PLOTLY_DEMO))

    page.goto(lab_server.lab_url("voila/render/plotly_demo.ipynb"))

    expect(page.locator(".lm-TabBar-tab", has_text="Chart")).to_be_visible(timeout=90_000)
    expect(page.locator(".js-plotly-plot .bars path").first).to_be_visible(timeout=30_000)
