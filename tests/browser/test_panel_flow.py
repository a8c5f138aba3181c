"""The whole path from the side panel, as a new modeler walks it, in a real JupyterLab and
Chromium on the real Docker Engine: a text dataset made and uploaded in the Datasets tab,
a training task from the wizard (the preset text-bayes algorithm), its conversion and
benchmark, a second version by transfer training, the two compared, the first published,
tested online, scaled to two replicas and stopped, then the reviewers' dashboard.

At each step it asserts on what is drawn: every chart shown has traces with data, the
status beside the button says what that click did (never an older action's words), the
replica counts are those the server runs; and it saves a screenshot per step
(``test-artifacts/flow-NN-<step>.png``). Before the walk it measures the panel's time to
interactive after a reload (``test-artifacts/flow-panel-load.json``). No console error
may come from the panel's page.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, FrameLocator, Locator, Page, Request, expect

from tests.browser.conftest import ARTIFACTS, PANEL_ID, REPO, LabServer, open_workbench_panel
from tests.browser.test_datasets_panel import widen_sidebar
from tests.conftest import add_algorithm, add_environment, make_datasets
from workbench.backends.docker import DockerBackend
from workbench.config import Settings, default_owner
from workbench.services import Workbench

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]

API = "workbench/api/v1"
DATASET = "stdlib-texts"
TASK = "texts-bayes"
ALGORITHM = REPO / "examples" / "algorithms" / "text-bayes"
#: the panel's time to interactive after a reload, from JupyterLab's load (issue 16)
INTERACTIVE_WITHIN_S = 3.0
#: when the page's elements appear, in the page's own clock (survives the reload)
TIMELINE = """
window.__wbTimes = {};
new MutationObserver(() => {
  const times = window.__wbTimes, now = performance.now();
  const splash = document.getElementById('jupyterlab-splash');
  if (splash && !times.splashShown) times.splashShown = now;
  if (!splash && times.splashShown && !times.labLoaded) times.labLoaded = now;
}).observe(document, {subtree: true, childList: true});
"""


@pytest.fixture(scope="module")
def text_bayes(
    lab_server: LabServer,
    docker_backend: DockerBackend,
    python_env_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Path]]:
    """The preset text-bayes algorithm online (its training image built FROM the python
    environment, which serves its models), and the example texts' two archives on disk."""
    folder = tmp_path_factory.mktemp("flow")
    tag = "wbtest/text-bayes-train:flow"
    list(
        docker_backend.build_image(
            ALGORITHM / "train", tag, build_args={"WORKBENCH_ENV_IMAGE": python_env_image}
        )
    )
    spec = json.loads((ALGORITHM / "algorithm.json").read_text())
    image = docker_backend.inspect_image(tag)
    wb = Workbench.from_settings(Settings(home=lab_server.home))
    try:
        owner = wb.users.ensure_owner(default_owner())
        environment = add_environment(
            wb,
            name="python-flow",
            framework="python",
            image_ref=python_env_image,
            owner_id=owner.id,
            visibility="public",
        )
        add_algorithm(
            wb,
            owner.id,
            {"env": spec["train"]["env"], "image_ref": tag, "digest": image.id, "size": image.size},
            name=spec["name"],
            description=spec["description"],
            purpose=spec["purpose"],
            sub_purpose=spec["sub_purpose"],
            environment_id=environment,
        )
    finally:
        wb.close()
    archives = make_datasets().make_texts(folder, max_per_class=40)
    yield archives.train, archives.test
    for service in lab_server.api(f"{API}/services"):
        lab_server.api(f"{API}/services/{service['id']}", "DELETE")
    docker_backend.remove_image(tag)


class Walk:
    """The page and panel of the walk, its screenshots and the console's errors."""

    def __init__(self, page: Page, lab_server: LabServer) -> None:
        self.page, self.server = page, lab_server
        self.frame: FrameLocator = page.frame_locator(f"#{PANEL_ID} iframe")
        self.shots: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []  # requests: what a console's "Failed to load" was
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _failed(self, request: Request) -> None:
        self.failed.append(f"{request.url} ({request.failure})")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"flow-{len(self.shots) + 1:02d}-{name}.png"
        self.page.locator(f"#{PANEL_ID}").screenshot(path=str(path))
        self.shots.append(path.name)

    def tab(self, name: str) -> None:
        self.frame.locator(".lm-TabBar-tab", has_text=name).first.click()

    def form(self, title: str) -> None:
        header = ".jupyter-widget-Collapse-header, .lm-AccordionPanel-title"
        self.frame.locator(header, has_text=title).first.click()

    def pick(self, select: Locator, text: str) -> None:
        """Choose the one option of ``select`` that contains ``text``."""
        option = select.locator("option", has_text=text)
        expect(option).to_have_count(1)
        select.select_option(label=option.inner_text())


def charts_drawn(scope: Locator, count: int) -> None:
    """``count`` plotly charts in ``scope``, each with at least one trace that has data
    (points, bars or a heatmap): no empty axes."""
    charts = scope.locator(".js-plotly-plot")
    expect(charts).to_have_count(count, timeout=60_000)
    data = ".scatterlayer .trace path.point, .scatterlayer .trace path.js-line, .barlayer .point"
    for i in range(count):
        expect(charts.nth(i).locator(data).first).to_be_attached(timeout=60_000)


def time_to_interactive(walk: Walk) -> dict[str, Any]:
    """Reload JupyterLab (the panel open, the server warm) and time the panel: from the
    reload's start and from JupyterLab's load (its splash gone) to the panel's list."""
    page = walk.page
    page.add_init_script(TIMELINE)
    runs = []
    for _ in range(3):
        _wait_for_a_warm_kernel(walk.server)
        page.reload()
        loading = page.locator(f"#{PANEL_ID} .jp-WorkbenchPanel-loading")
        expect(loading).to_be_visible()  # branded, not Voila's spinner
        expect(loading).to_contain_text("Workbench")
        walk.frame.locator(".wb-datasets-list select").wait_for(timeout=90_000)
        now = page.evaluate("performance.now()")
        expect(loading).to_be_hidden()
        times = page.evaluate("window.__wbTimes")
        runs.append(
            {
                "from_reload_s": round(now / 1000, 2),
                "from_lab_loaded_s": round((now - times["labLoaded"]) / 1000, 2),
            }
        )
    figures = {
        "runs": runs,
        "median_from_lab_loaded_s": statistics.median(r["from_lab_loaded_s"] for r in runs),
        "median_from_reload_s": statistics.median(r["from_reload_s"] for r in runs),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "flow-panel-load.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("panel time to interactive:", json.dumps(figures))
    return figures


def _wait_for_a_warm_kernel(server: LabServer, timeout: float = 60) -> None:
    """Until the server holds a kernel no page is connected to and that is idle: the warm
    one (WarmKernels), started a few seconds after the last page took the previous one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels = server.api("api/kernels")
        if any(k["connections"] == 0 and k["execution_state"] == "idle" for k in kernels):
            return
        time.sleep(0.5)
    raise AssertionError(f"no warm kernel after {timeout:.0f} s: {kernels}")


def replicas_running(server: LabServer, name: str) -> tuple[int, int]:
    """(running, desired) replicas of the service ``name``, as the server sees them."""
    (service,) = [s for s in server.api(f"{API}/services") if s["name"] == name]
    running = sum(1 for r in service["replica_states"] if r["state"] == "running")
    return running, service["replicas"]


def test_the_whole_path_from_the_panel(
    page: Page, lab_server: LabServer, text_bayes: tuple[Path, Path]
) -> None:
    train_zip, test_zip = text_bayes
    page.set_viewport_size({"width": 1600, "height": 1000})
    walk = Walk(page, lab_server)
    frame = walk.frame
    open_workbench_panel(page, lab_server)

    # 0. the panel's time to interactive after a reload, the server warm
    figures = time_to_interactive(walk)
    assert figures["median_from_lab_loaded_s"] < INTERACTIVE_WITHIN_S, figures
    widen_sidebar(page, 760)
    walk.shot("panel-loaded")

    # 1. a dataset: made, both archives uploaded, put online
    walk.form("New dataset")
    create = frame.locator(".wb-dataset-create")
    create.get_by_role("textbox", name="Name", exact=True).fill(DATASET)
    create.get_by_role("combobox", name="Purpose", exact=True).select_option("text")
    create.get_by_role("combobox", name="Format", exact=True).select_option("dir")
    create.get_by_role("combobox", name="Test set", exact=True).select_option("independent")
    create.get_by_role("button", name="Create", exact=True).click()
    expect(frame.locator("h3", has_text=DATASET)).to_be_visible()
    for split, archive in (("train", train_zip), ("test", test_zip)):
        frame.locator(".wb-dataset-split button", has_text=split).click()
        with page.expect_file_chooser() as chooser:
            frame.locator(".wb-dataset-file").click()
        chooser.value.set_files(archive)
        expect(frame.locator(".wb-dataset-file")).to_contain_text("(1)")
        frame.locator(".wb-dataset-upload").click()
        expect(frame.locator(".wb-dataset-upload-status")).to_contain_text(
            f"{archive.name}: ", timeout=60_000
        )
        expect(frame.locator(".wb-dataset-upload-status")).to_contain_text("7 classes")
    frame.get_by_role("button", name="Publish").click()
    expect(frame.locator(".wb-dataset-action-status")).to_contain_text(f"{DATASET} is online")
    charts_drawn(frame.locator(".wb-dataset-histogram"), 1)
    expect(frame.locator(".wb-dataset-histogram .bars path")).to_have_count(7)
    walk.shot("dataset")

    # 2. the wizard: a training task of text-bayes on it, started
    walk.tab("Training")
    walk.form("New training task")
    frame.locator(".wb-wizard-purpose select").select_option("text")
    for step in ("Name", "Algorithm", "Dataset", "Parameters", "Resources"):
        if step == "Algorithm":
            frame.locator(".wb-wizard-name input").fill(TASK)
            frame.locator(".wb-wizard-name input").press("Enter")
        if step == "Dataset":
            frame.locator(".wb-wizard-algorithm-source button", has_text="Public").click()
            walk.pick(frame.locator(".wb-wizard-algorithm select"), "text-bayes")
        if step == "Parameters":
            walk.pick(frame.locator(".wb-wizard-dataset select"), DATASET)
        frame.locator(".wb-wizard-next").click()
        expect(frame.locator(f"text=: {step}").first).to_be_visible()
    walk.shot("wizard")
    frame.locator(".wb-wizard-save-start").click()

    # 3. the task: its metrics drawn, its evaluation, its model version
    summary = frame.locator(".wb-task-summary")
    expect(summary).to_contain_text(TASK)
    expect(frame.locator(".wb-training-model")).to_contain_text(" v1 (id ", timeout=300_000)
    expect(summary).to_contain_text("state succeeded")  # never "started" once it is done
    expect(frame.locator(".wb-training-evaluation")).to_contain_text("accuracy")
    charts_drawn(frame.locator(".wb-training-metrics"), 1)
    expect(frame.locator(".wb-training-confusion .js-plotly-plot .heatmaplayer")).to_be_visible(
        timeout=30_000
    )
    frame.locator(".wb-training-metrics").scroll_into_view_if_needed()
    walk.shot("task")

    # 4. transfer training from that version: a second version of the same model
    frame.locator(".wb-task-transfer").click()
    expect(frame.locator("text=Transfer training from").first).to_be_visible()
    for step in ("Algorithm", "Dataset", "Parameters", "Resources"):
        frame.locator(".wb-wizard-next").click()
        expect(frame.locator(f"text=: {step}").first).to_be_visible()
    frame.locator(".wb-wizard-save-start").click()
    expect(frame.locator(".wb-training-model")).to_contain_text(" v2 (id ", timeout=300_000)
    expect(summary).to_contain_text("from model version #")
    walk.shot("transfer")

    # 5. the model: v1 converted, then benchmarked, its charts drawn
    walk.tab("Models")
    walk.pick(frame.locator(".wb-models-list select"), TASK)
    walk.pick(frame.locator(".wb-model-version select"), "v1 ")
    frame.locator("button.wb-model-convert").click()
    formats = frame.locator(".wb-model-formats")
    expect(formats).to_contain_text("verified", timeout=300_000)
    walk.shot("converted")
    frame.locator(".wb-model-charts").scroll_into_view_if_needed()
    frame.get_by_role("combobox", name="Up to batch", exact=True).select_option("4")
    frame.locator("button.wb-model-benchmark").click()
    charts_drawn(frame.locator(".wb-model-charts"), 2)
    expect(frame.locator(".wb-model-best")).to_contain_text("measured on", timeout=300_000)
    walk.shot("benchmark")

    # 6. compare v1 and v2: the table and both bar charts drawn, the answer beside Compare
    pick = frame.locator(".wb-model-compare-pick select")
    versions = [o for o in pick.locator("option").all_inner_texts() if o.startswith("v")]
    pick.select_option(versions)
    frame.locator("button.wb-model-compare").click()
    expect(frame.locator(".wb-model-comparison-table")).to_contain_text("accuracy")
    charts_drawn(frame.locator(".wb-model-compare-chart"), 2)
    frame.locator(".wb-model-compare-chart").scroll_into_view_if_needed()
    walk.shot("compare")
    dashboard = frame.locator("a", has_text="Open the reviewers' dashboard").evaluate("a => a.href")

    # 7. publish: the newest version that is converted (v1) is offered first
    walk.tab("Services")
    walk.form("Publish a model version")
    walk.pick(frame.get_by_role("combobox", name="Model", exact=True), TASK)
    expect(frame.get_by_role("combobox", name="Version", exact=True)).to_contain_text(
        "v1 · native, onnx"
    )
    frame.locator("button.wb-service-publish").click()
    expect(frame.locator(".wb-service-summary")).to_contain_text("running", timeout=180_000)
    expect(frame.locator(".wb-replicas-table")).to_contain_text("r0")
    walk.shot("published")

    # 8. the online test: a text field that takes text; the answer names the classes
    field = frame.locator(".wb-service-input textarea")
    expect(field).to_be_visible(timeout=60_000)
    field.fill("Return the logger with the specified name, creating it if necessary.")
    frame.locator("button.wb-service-send").click()
    expect(frame.locator(".wb-service-answer-status")).to_contain_text("answered in")
    answer = frame.locator(".wb-service-answer")
    expect(answer).to_contain_text("probabilities")
    expect(answer.locator(".wb-service-classes")).to_contain_text("logging")
    answer.scroll_into_view_if_needed()
    walk.shot("online-test")

    # 9. scale to 2: the list and the table say what runs
    frame.locator(".wb-service-scale-to input").fill("2")
    frame.locator("button.wb-service-scale").click()
    expect(frame.locator(".wb-replicas-table")).to_contain_text("r1", timeout=180_000)
    listing = frame.locator(".wb-services-list select option").first
    expect(listing).to_contain_text("2/2 replicas", timeout=60_000)
    assert replicas_running(lab_server, TASK) == (2, 2)
    expect(frame.locator(".wb-service-deploy-status")).to_contain_text("done")
    charts_drawn(frame.locator(".wb-service-charts"), 1)
    frame.locator(".wb-service-charts").scroll_into_view_if_needed()
    walk.shot("scaled")

    # 10. stop: nothing runs, and the panel says so (no test form, no live line)
    frame.locator("button.wb-service-stop").click()
    expect(frame.locator(".wb-service-summary")).to_contain_text("stopped", timeout=120_000)
    expect(listing).to_contain_text("0/2 replicas", timeout=60_000)
    assert replicas_running(lab_server, TASK)[0] == 0
    expect(frame.locator(".wb-service-deploy-status")).to_contain_text("done")
    expect(frame.locator(".wb-service-deploy-status")).not_to_contain_text("started")
    expect(field).to_be_hidden()
    expect(frame.locator("button.wb-service-send")).to_be_hidden()
    expect(answer).to_be_empty()  # the answer of replicas that are gone
    walk.shot("stopped")

    # 11. the reviewers' dashboard, from the link: on that model, its charts drawn, read-only
    page.goto(dashboard)
    expect(page.locator("h3", has_text=TASK)).to_be_visible(timeout=60_000)
    charts_drawn(page.locator(".wb-model-charts"), 2)
    expect(page.locator("button.wb-model-convert")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"flow-{len(walk.shots) + 1:02d}-dashboard.png"))

    print("screenshots:", ", ".join(walk.shots))
    assert walk.errors == [], "\n".join([*walk.errors, "failed requests:", *walk.failed])
