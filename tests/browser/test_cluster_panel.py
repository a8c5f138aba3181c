"""The Cluster tab in a real JupyterLab: the one node of the Docker Engine, chosen in the
list, with its resources and what runs on it; the server's owner (an admin) gets the drain
buttons, and a drain says why a single engine cannot (screenshot in test-artifacts)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, LabServer, open_workbench_panel
from tests.browser.test_datasets_panel import widen_sidebar

pytestmark = [pytest.mark.browser, pytest.mark.docker]


def test_the_engine_node_with_its_runs_and_a_refused_drain(page: Page, lab_server: LabServer):
    frame = open_workbench_panel(page, lab_server)
    widen_sidebar(page)
    frame.locator(".lm-TabBar-tab", has_text="Cluster").first.click()

    nodes = frame.locator("select.wb-cluster-list, .wb-cluster-list select").first
    expect(nodes).to_contain_text(" · engine · ready · active · ")
    nodes.select_option(index=0)
    expect(frame.get_by_text("resources", exact=True)).to_be_visible()
    expect(frame.get_by_text("Docker", exact=False).first).to_be_visible()
    frame.get_by_role("button", name="Drain").click()
    expect(frame.get_by_text("no other node to move its work to", exact=False)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "cluster-tab.png"))
