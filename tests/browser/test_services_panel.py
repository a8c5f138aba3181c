"""The Services section in a real JupyterLab: a model version published from the panel's
form (a real service: replicas in the python environment's image behind the HAProxy
endpoint), tested online with the form made from its V2 metadata, scaled to 2 replicas
with the panel's button, and watched on the live charts while a load runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, PANEL_ID, LabServer, open_workbench_panel
from tests.browser.test_datasets_panel import widen_sidebar
from tests.models_fixtures import register_classifiers
from workbench.config import default_owner

pytestmark = [pytest.mark.browser, pytest.mark.docker]
API = "workbench/api/v1"
NAME = "iris-online"


@pytest.fixture(scope="module")
def version(lab_server: LabServer, python_env_image: str, tmp_path_factory) -> Iterator[int]:
    """A classifier's newest version; the services made from it deleted afterwards."""
    folder: Path = tmp_path_factory.mktemp("browser-services")
    _, versions = register_classifiers(
        lab_server.home, python_env_image, folder, owner=default_owner(), name=NAME
    )
    yield versions[-1]
    for service in lab_server.api(f"{API}/services"):
        lab_server.api(f"{API}/services/{service['id']}", "DELETE")


def load(address: str, key: str, stop: threading.Event, answered: list[int]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://{address}", timeout=10, headers=headers) as http:
        while not stop.is_set():
            r = http.post("/predict", json={"features": [0.1, 0.2, 0.3, 0.4]})
            answered.append(r.status_code)


def test_publish_test_scale_and_watch(page: Page, lab_server: LabServer, version: int) -> None:
    frame = open_workbench_panel(page, lab_server)
    widen_sidebar(page)
    frame.locator(".lm-TabBar-tab", has_text="Services").first.click()

    # publish the newest version with its default format
    frame.get_by_text("Publish a model version", exact=True).click()
    models = frame.get_by_role("combobox", name="Model")
    models.select_option(label=models.locator("option", has_text=NAME).inner_text())
    # the newest of the two versions (neither converted), its formats in its label
    expect(frame.get_by_role("combobox", name="Version")).to_contain_text("v2 · native")
    expect(frame.get_by_role("textbox", name="Name")).to_have_value(NAME)
    frame.locator("button.wb-service-publish").click()
    summary = frame.locator(".wb-service-summary")
    expect(summary).to_contain_text("running", timeout=120_000)
    expect(frame.locator(".wb-replicas-table")).to_contain_text("r0")
    # the endpoint's key, shown this once, with a call that sends it
    key = frame.locator(".wb-service-key-value").inner_text()
    expect(frame.locator(".wb-service-key")).to_contain_text(f"Authorization: Bearer {key}")

    # the online test: the form from the model's V2 metadata
    field = frame.locator(".wb-service-input textarea")
    expect(field).to_have_value("[0, 0, 0, 0]", timeout=30_000)
    field.fill("[0.5, 1.0, -0.3, 2.0]")
    frame.locator("button.wb-service-send").click()
    expect(frame.locator(".wb-service-answer-status")).to_contain_text("answered in")
    expect(frame.locator(".wb-service-answer")).to_contain_text("probabilities")
    frame.locator(".wb-service-answer").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(f"#{PANEL_ID}").screenshot(path=str(ARTIFACTS / "services-panel-test.png"))

    # scale to 2 with the panel's button
    frame.locator(".wb-service-scale-to input").fill("2")
    frame.locator("button.wb-service-scale").click()
    expect(frame.locator(".wb-replicas-table")).to_contain_text("r1", timeout=120_000)
    expect(frame.locator(".wb-services-list select option").first).to_contain_text(
        "2/2 replicas", timeout=30_000
    )

    # the live charts while a load runs on the endpoint
    (service,) = [s for s in lab_server.api(f"{API}/services") if s["name"] == NAME]
    stop, answered = threading.Event(), []
    loader = threading.Thread(target=load, args=(service["address"], key, stop, answered))
    loader.start()
    try:
        now = frame.locator(".wb-service-now")
        expect(now).to_contain_text("2 replicas read", timeout=30_000)
        deadline = time.monotonic() + 30
        while " 0.0 req/s" in now.inner_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert " 0.0 req/s" not in now.inner_text(), now.inner_text()
        charts = frame.locator(".wb-service-charts .js-plotly-plot")
        expect(charts).to_have_count(1)
        frame.locator(".wb-service-charts").scroll_into_view_if_needed()
        # three charts: request and error rates; p50, p95, p99; mean batch and queue depth
        expect(charts.locator(".subplot")).to_have_count(3)
        expect(charts.locator(".scatterlayer .trace")).to_have_count(7, timeout=30_000)
        time.sleep(3)  # a few more readings on the charts
        page.locator(f"#{PANEL_ID}").screenshot(path=str(ARTIFACTS / "services-panel-live.png"))
    finally:
        stop.set()
        loader.join()
    assert answered and set(answered) == {200}
