"""A workspace opened from the side panel, in a real JupyterLab and Chromium: create it
in the Workspaces tab, start it, open its JupyterLab through the proxy, screenshot it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, LabServer, open_workbench_panel
from tests.conftest import add_environment
from workbench.config import Settings
from workbench.services import Workbench

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def environment(lab_server: LabServer, python_env_image: str) -> int:
    wb = Workbench.from_settings(Settings(home=lab_server.home))
    env_id = add_environment(
        wb,
        name="python (browser test)",
        framework="python",
        image_ref=python_env_image,
        owner_id=1,
        visibility="public",
    )
    wb.close()
    return env_id


def test_open_a_workspace_from_the_panel(
    page: Page, lab_server: LabServer, environment: int
) -> None:
    frame = open_workbench_panel(page, lab_server)
    frame.locator(".lm-TabBar-tab", has_text="Workspaces").click()
    frame.locator("button:visible", has_text="Refresh").click()
    frame.locator(
        ".jupyter-widget-Collapse-header, .lm-AccordionPanel-title", has_text="New workspace"
    ).first.click()
    frame.locator(".wb-ws-name input").fill("browser-ws")
    frame.locator(".wb-ws-name input").press("Enter")
    frame.locator(".wb-ws-environment select").select_option(label="python (browser test) (python)")
    frame.locator(".wb-ws-create").click()
    expect(frame.locator("text=created browser-ws").first).to_be_visible(timeout=30_000)

    frame.locator(".wb-ws-start").click()
    link = frame.locator(".wb-ws-open a")
    expect(link).to_be_visible(timeout=120_000)
    with page.context.expect_page() as opened:
        link.click()
    lab = opened.value
    lab.set_viewport_size({"width": 1400, "height": 900})
    lab.wait_for_selector("#jupyterlab-splash", state="detached", timeout=90_000)
    expect(lab.locator(".jp-DirListing-content")).to_contain_text("code", timeout=30_000)
    assert "/workbench/proxy/workspaces/" in lab.url
    listing = lab.locator(".jp-DirListing-content")
    for folder in ("code", "docker_image", "help_doc", "model"):
        expect(listing).to_contain_text(folder)
    expect(lab.locator(".jp-LauncherCard").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    lab.screenshot(path=str(ARTIFACTS / "workspace-jupyterlab.png"))
    page.screenshot(path=str(ARTIFACTS / "workspace-panel.png"))
