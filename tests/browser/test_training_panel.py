"""A training task run from the side panel, in a real JupyterLab and Chromium: the wizard
in the Training tab, Save and start, the metrics chart and the log tail filling in while
the run goes, then its evaluation; a screenshot of the panel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from tests.browser.conftest import ARTIFACTS, PANEL_ID, LabServer, open_workbench_panel
from tests.browser.test_datasets_panel import widen_sidebar
from tests.conftest import add_online_dataset
from tests.live.test_training_widgets import add_trainable_algorithm, build_train_image
from workbench.backends.docker import DockerBackend
from workbench.config import Settings, default_owner
from workbench.services import Workbench

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.slow]

ALGORITHM = "tiny-trainer"
DATASET = "browser-classes"


@pytest.fixture(scope="module")
def online_algorithm(
    lab_server: LabServer,
    docker_backend: DockerBackend,
    python_env_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[int]:
    """An online algorithm whose training image is a tiny run on the python environment
    (logs, a metrics line every half second, an evaluation, a model), and an online
    dataset of its purpose, both the server owner's."""
    folder = tmp_path_factory.mktemp("training")
    image = build_train_image(
        docker_backend, python_env_image, folder / "image", "wbtest/panel-train:browser"
    )
    wb = Workbench.from_settings(Settings(home=lab_server.home))
    owner = wb.users.ensure_owner(default_owner())
    algorithm = add_trainable_algorithm(wb, owner.id, image, ALGORITHM)
    add_online_dataset(wb, owner, folder, {"0": 8, "1": 8, "2": 8, "3": 8}, DATASET)
    wb.close()
    yield algorithm
    docker_backend.remove_image(image)


def click_next(frame: FrameLocator, step: str) -> None:
    frame.locator(".wb-wizard-next").click()
    expect(frame.locator(f"text=: {step}").first).to_be_visible()


def test_train_from_the_wizard_and_watch_it_live(
    page: Page, lab_server: LabServer, online_algorithm: int
) -> None:
    page.set_viewport_size({"width": 1400, "height": 1500})
    frame = open_workbench_panel(page, lab_server)
    widen_sidebar(page, 700)
    frame.locator(".lm-TabBar-tab", has_text="Training").first.click()
    frame.locator(
        ".jupyter-widget-Collapse-header, .lm-AccordionPanel-title", has_text="New training task"
    ).first.click()

    # the wizard, step by step
    expect(frame.locator("text=Step 1 of 6").first).to_be_visible()
    frame.locator(".wb-wizard-purpose select").select_option("image")
    click_next(frame, "Name")
    frame.locator(".wb-wizard-name input").fill("browser-run")
    frame.locator(".wb-wizard-name input").press("Enter")
    click_next(frame, "Algorithm")
    frame.locator(".wb-wizard-algorithm-source button", has_text="Public").click()
    algorithms = frame.locator(".wb-wizard-algorithm select")
    expect(algorithms.locator("option", has_text=ALGORITHM)).to_have_count(1)
    algorithms.select_option(label=algorithms.locator("option", has_text=ALGORITHM).inner_text())
    expect(frame.locator("text=2 parameters").first).to_be_visible()
    click_next(frame, "Dataset")
    datasets = frame.locator(".wb-wizard-dataset select")
    expect(datasets.locator("option", has_text=DATASET)).to_have_count(1)
    datasets.select_option(label=datasets.locator("option", has_text=DATASET).inner_text())
    expect(frame.locator("text=split by this ratio").first).to_be_visible()
    click_next(frame, "Parameters")
    epochs = frame.locator(".wb-param-EPOCHS input")
    expect(epochs).to_have_value("4")
    epochs.fill("ten")
    epochs.press("Enter")
    expect(frame.locator("text=EPOCHS must be an int").first).to_be_visible()
    epochs.fill("10")
    epochs.press("Enter")
    click_next(frame, "Resources")
    frame.locator(".wb-wizard-save-start").click()
    expect(frame.locator("text=browser-run").first).to_be_visible()

    # live: points on the metrics chart and lines in the log while it runs
    points = frame.locator(".wb-training-metrics .js-plotly-plot .scatterlayer path.point")
    expect(points.nth(3)).to_be_attached(timeout=120_000)  # 2 metrics x 2 epochs
    log = frame.locator(".wb-training-log")
    expect(log).to_contain_text("epoch 2/10")
    expect(frame.locator(".wb-task-summary")).to_contain_text("state running")
    expect(log).not_to_contain_text("saved the model")  # still running: it was live
    ARTIFACTS.mkdir(exist_ok=True)
    panel = page.locator(f"#{PANEL_ID}")
    frame.locator(".wb-training-metrics").scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "training-panel-live.png"))

    # then the evaluation, the confusion matrix and the model version
    evaluation = frame.locator(".wb-training-evaluation")
    expect(evaluation).to_contain_text("accuracy", timeout=120_000)
    expect(evaluation.locator(".wb-eval-classes tbody tr")).to_have_count(4)
    expect(points).to_have_count(20)  # loss and accuracy for 10 epochs
    expect(log).to_contain_text("saved the model")
    expect(frame.locator(".wb-training-model")).to_contain_text(" v1 (id ")
    # a chart first shown now: plotly.js draws it a few seconds later on a busy machine
    heatmap = frame.locator(".wb-training-confusion .js-plotly-plot .heatmaplayer")
    expect(heatmap).to_be_visible(timeout=30_000)

    frame.locator(".wb-training-list").scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "training-panel.png"))
    frame.locator(".wb-training-confusion").scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "training-panel-confusion.png"))

    # the algorithm it used, in the Algorithms tab
    frame.locator(".lm-TabBar-tab", has_text="Algorithms").first.click()
    listing = frame.locator(".wb-algorithms-list select")
    listing.select_option(label=listing.locator("option", has_text=ALGORITHM).inner_text())
    expect(frame.locator("h3", has_text=ALGORITHM)).to_be_visible()
    expect(frame.locator("text=passes over the train split").first).to_be_visible()
    frame.locator("h3", has_text=ALGORITHM).scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "algorithms-panel.png"))
