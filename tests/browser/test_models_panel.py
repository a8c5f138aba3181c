"""The Models section in a real JupyterLab: a model whose newest version was converted and
benchmarked for real (jobs the server runs in the python environment's image), its
benchmark charts (latency percentiles and throughput by batch size, one line per format),
the best format per budget, two versions compared side by side, and a model trained
elsewhere imported with the panel's form."""

from __future__ import annotations

import time
from pathlib import Path

import joblib
import numpy as np
import pytest
from playwright.sync_api import Page, expect
from sklearn.linear_model import LogisticRegression

from tests.browser.conftest import ARTIFACTS, PANEL_ID, LabServer, open_workbench_panel
from tests.browser.test_datasets_panel import widen_sidebar
from tests.models_fixtures import register_classifiers
from workbench.config import default_owner
from workbench.models.formats import IMPORT_KINDS

pytestmark = [pytest.mark.browser, pytest.mark.docker]
API = "workbench/api/v1"


def wait_for_job(lab_server: LabServer, job_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while (job := lab_server.api(f"{API}/jobs/{job_id}"))["state"] not in (
        "succeeded",
        "failed",
        "stopped",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["state"] == "succeeded", job
    return job


@pytest.fixture(scope="module")
def flowers(
    lab_server: LabServer, python_env_image: str, tmp_path_factory
) -> tuple[int, list[int]]:
    """The classifiers' model; its second version converted and benchmarked through REST."""
    folder: Path = tmp_path_factory.mktemp("browser-models")
    model, versions = register_classifiers(
        lab_server.home, python_env_image, folder, owner=default_owner(), name="flowers-ui"
    )
    newest = versions[-1]
    started = lab_server.api(f"{API}/model-versions/{newest}/conversions", "POST", json={})
    wait_for_job(lab_server, started["job_id"])
    started = lab_server.api(
        f"{API}/model-versions/{newest}/benchmarks", "POST", json={"max_batch": 8, "window_s": 0.2}
    )
    wait_for_job(lab_server, started["job_id"])
    return model, versions


def test_benchmark_charts_and_a_comparison(page: Page, lab_server: LabServer, flowers) -> None:
    frame = open_workbench_panel(page, lab_server)
    widen_sidebar(page)
    frame.locator(".lm-TabBar-tab", has_text="Models").first.click()
    listing = frame.locator(".wb-models-list select")
    option = listing.locator("option", has_text="flowers-ui")
    expect(option).to_have_count(1)
    listing.select_option(label=option.inner_text())
    expect(frame.locator("h3", has_text="flowers-ui")).to_be_visible()

    # the newest version: its formats and the benchmark's charts
    expect(frame.locator(".wb-model-formats-table")).to_contain_text("verified")
    charts = frame.locator(".wb-model-charts .js-plotly-plot")
    expect(charts).to_have_count(2, timeout=30_000)
    # three formats measured (native, onnx, onnx-optimized): p50/p95/p99 lines each
    expect(charts.nth(0).locator(".scatterlayer .trace")).to_have_count(9, timeout=30_000)
    expect(charts.nth(1).locator(".scatterlayer .trace")).to_have_count(3)
    expect(charts.nth(1).locator(".scatterlayer .trace").first.locator("path.point")).to_have_count(
        4
    )  # batch sizes 1, 2, 4, 8
    expect(frame.locator(".wb-model-best-table")).to_contain_text("ms")
    expect(frame.locator(".wb-model-best")).to_contain_text("measured on")
    link = frame.locator("a", has_text="Open the reviewers' dashboard")
    # where the link really leads from the panel's page: the dashboard's stable URL, on the
    # model and version shown
    model_id, (_, newest) = flowers
    assert link.evaluate("a => a.href") == (
        f"{lab_server.url}workbench/dashboard/models?model={model_id}&version={newest}"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    frame.locator(".wb-model-charts").scroll_into_view_if_needed()
    page.locator(f"#{PANEL_ID}").screenshot(path=str(ARTIFACTS / "models-panel-benchmark.png"))

    # compare the two versions
    pick = frame.locator(".wb-model-compare-pick select")
    pick.select_option([f"v1 (id {flowers[1][0]})", f"v2 (id {flowers[1][1]})"])
    frame.locator("button.wb-model-compare").click()
    table = frame.locator(".wb-model-comparison-table")
    expect(table).to_contain_text("accuracy")
    expect(table).to_contain_text("C *")
    bars = frame.locator(".wb-model-compare-chart .js-plotly-plot")
    expect(bars).to_have_count(2, timeout=30_000)
    expect(bars.nth(0).locator(".barlayer .trace")).to_have_count(2)
    table.scroll_into_view_if_needed()
    page.locator(f"#{PANEL_ID}").screenshot(path=str(ARTIFACTS / "models-panel-compare.png"))


def test_a_reviewer_reads_the_dashboard(page: Page, lab_server: LabServer, flowers) -> None:
    """The read-only dashboard at the link the panel gives: open on that model and version,
    the same versions, formats and charts, and no button that changes anything; the first
    version (never converted) says so without advising a Convert it does not offer."""
    model_id, (first, newest) = flowers
    page.goto(
        lab_server.lab_url("workbench/dashboard/models", f"model={model_id}&version={newest}")
    )
    expect(page.locator("h2", has_text="Workbench · models")).to_be_visible(timeout=60_000)
    expect(page.locator("h3", has_text="flowers-ui")).to_be_visible()  # opened on it
    expect(page.locator(".wb-model-versions-table")).to_contain_text("verified")
    charts = page.locator(".wb-model-charts .js-plotly-plot")
    expect(charts.nth(1).locator(".scatterlayer .trace")).to_have_count(3, timeout=30_000)
    expect(page.locator("button.wb-model-convert")).to_be_hidden()
    expect(page.locator("button.wb-model-benchmark")).to_be_hidden()
    expect(page.locator("button", has_text="Delete")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "models-dashboard-linked.png"), full_page=True)
    version = page.locator(".wb-model-version select")
    version.select_option(label=version.locator("option", has_text=f"id {first}").inner_text())
    expect(page.locator(".wb-model-formats")).to_contain_text("Not converted yet.")
    expect(page.locator(".wb-model-formats")).not_to_contain_text("Convert makes")
    page.set_viewport_size({"width": 900, "height": 1400})
    page.screenshot(path=str(ARTIFACTS / "models-dashboard.png"), full_page=True)


def test_import_a_model_from_the_panel(
    page: Page, lab_server: LabServer, flowers, tmp_path: Path
) -> None:
    """The Import form: a pickled classifier on the server's disk becomes a model, checked
    in a container; the panel shows it with the pickle's warning."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    path = tmp_path / "iris-from-home.joblib"
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
    frame = open_workbench_panel(page, lab_server)
    widen_sidebar(page)
    frame.locator(".lm-TabBar-tab", has_text="Models").first.click()
    frame.get_by_text("Import a model trained elsewhere", exact=True).click()
    frame.get_by_placeholder("model.onnx, net.zip... (relative to the notebook)").fill(str(path))
    kind = frame.get_by_role("combobox", name="Kind")
    kind.select_option(label=f"pickle: {IMPORT_KINDS['pickle'][0]}")
    frame.get_by_placeholder("yours, or a new name").fill("iris-from-home")
    frame.locator("button.wb-model-import").click()
    expect(frame.get_by_text("imported as iris-from-home v1")).to_be_visible(timeout=120_000)
    expect(frame.get_by_text("runs any code", exact=False).first).to_be_visible()
    expect(frame.locator(".wb-model-versions-table")).to_contain_text("sklearn")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(f"#{PANEL_ID}").screenshot(path=str(ARTIFACTS / "models-panel-import.png"))
