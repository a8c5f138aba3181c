"""A workspace opened from the side panel, in a real JupyterLab and Chromium: create it
in the Workspaces tab, start it, open its JupyterLab through the proxy on the workspace's
own origin, where its script cannot use this server's API as the user; screenshot it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, LabServer, open_workbench_panel
from tests.conftest import add_environment
from workbench.config import Settings
from workbench.services import Workbench

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]

#: what a script in a workspace's JupyterLab would try with the user's cookies: mint a
#: token on this server, once with the XSRF header (needs CORS), once as a plain form
STEAL_A_TOKEN = """async (api) => {
  const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1];
  const tries = [];
  try {
    const r = await fetch(api, {method: "POST", credentials: "include",
      headers: {"X-XSRFToken": xsrf}, body: JSON.stringify({name: "stolen"})});
    tries.push("read " + r.status + " " + await r.text());
  } catch (e) { tries.push("refused " + e); }
  await fetch(api, {method: "POST", credentials: "include", mode: "no-cors",
    body: new URLSearchParams({_xsrf: xsrf, name: "stolen"})});
  return tries;
}"""


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


def minted(lab_server: LabServer) -> list[tuple[int, str, str]]:
    """The server's tokens (id, name, scope): their ``last_used_at`` moves on with every
    call the open panel makes."""
    tokens = lab_server.api("workbench/api/v1/tokens")
    return [(t["id"], t["name"], t["scope"]) for t in tokens]


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
    # its own origin: the same host, another port
    assert urlsplit(lab.url).hostname == urlsplit(lab_server.url).hostname
    assert urlsplit(lab.url).port != urlsplit(lab_server.url).port
    listing = lab.locator(".jp-DirListing-content")
    for folder in ("code", "docker_image", "help_doc", "model"):
        expect(listing).to_contain_text(folder)
    expect(lab.locator(".jp-LauncherCard").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    lab.screenshot(path=str(ARTIFACTS / "workspace-jupyterlab.png"))
    page.screenshot(path=str(ARTIFACTS / "workspace-panel.png"))

    # the attack its own origin stops: script in a workspace's JupyterLab (whose owner
    # controls what it runs) calling this server's API as whoever opened it
    before = minted(lab_server)
    tries = lab.evaluate(STEAL_A_TOKEN, f"{lab_server.url}workbench/api/v1/tokens")
    assert tries[0].startswith("refused"), tries  # the browser never read an answer
    assert minted(lab_server) == before  # and nothing was minted
