"""The Datasets section in a real JupyterLab: the digits dataset and its class histogram."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, PANEL_ID, REPO, LabServer, open_workbench_panel
from workbench.config import default_owner

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def examples(lab_server: LabServer) -> None:
    """The example datasets, registered for the server's owner as `scripts/start` does."""
    subprocess.run(
        [
            sys.executable,
            str(REPO / "examples/datasets/load_examples.py"),
            "--owner",
            default_owner(),
        ],
        env={**os.environ, "WORKBENCH_HOME": str(lab_server.home)},
        check=True,
        capture_output=True,
    )


def widen_sidebar(page: Page, width: int = 620) -> None:
    """Drag the sidebar's edge as a user would, to give the panel room."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(width, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()


def test_digits_dataset_with_its_class_histogram(
    page: Page, lab_server: LabServer, examples: None
) -> None:
    frame = open_workbench_panel(page, lab_server)
    widen_sidebar(page)
    listing = frame.locator(".wb-datasets-list select")
    expect(listing.locator("option", has_text="digits")).to_have_count(1)
    listing.select_option(label=listing.locator("option", has_text="digits").inner_text())

    expect(frame.locator("h3", has_text="digits")).to_be_visible()
    histogram = frame.locator(".wb-dataset-histogram .js-plotly-plot")
    expect(histogram.locator(".bars path")).to_have_count(10, timeout=30_000)
    expect(histogram.locator(".gtitle")).to_contain_text("digits")
    expect(frame.locator("text=1438 samples")).to_be_visible()
    expect(frame.locator(".widget-image").first).to_be_visible()  # sample previews

    histogram.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(f"#{PANEL_ID}").screenshot(path=str(ARTIFACTS / "datasets-panel-digits.png"))
    page.screenshot(path=str(ARTIFACTS / "datasets-panel-lab.png"))
