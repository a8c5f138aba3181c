"""The Models panel, driven as a user would, against a real server and the Docker Engine:
choose a model and a version, convert it and benchmark it with the panel's buttons (real
jobs in the python environment's image, followed with the progress bar), see the charts'
lines and the best format per budget, and compare two versions side by side."""

from __future__ import annotations

import pytest

from tests.live.test_training_widgets import wait_until
from tests.models_fixtures import register_classifiers
from workbench.widgets import WorkbenchPanel

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def classifiers(live, python_env_image, tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifiers")
    return register_classifiers(live.server.home, python_env_image, folder)


def test_convert_benchmark_and_compare_from_the_panel(live, classifiers):
    model_id, (first, second) = classifiers
    panel = WorkbenchPanel(live.client("alice"), poll_interval=0.2)
    section = panel.models
    section.listing.value = model_id
    assert "flowers" in section.summary.value and "tabular" in section.summary.value
    assert section.version.value == second  # the newest first
    assert "Not converted yet" in section.formats.value

    section.convert_button.click()
    # what the job says, not a library's stderr: its kind, id, state and message or progress
    assert section.job_status.value.startswith("convert job ")
    wait_until(lambda: section.progress.bar_style in ("success", "danger"), 180, "the conversion")
    assert section.progress.bar_style == "success", section.job_status.value
    formats = section.formats.value
    assert formats.count(">verified<") == 2, formats  # onnx and onnx-optimized
    assert "nothing in this model is quantized to INT8" in formats  # a linear model: no MatMul

    section.max_batch.value = 4
    section.benchmark_button.click()
    wait_until(lambda: section.progress.bar_style in ("success", "danger"), 300, "the benchmark")
    assert section.progress.bar_style == "success", section.job_status.value
    names = {trace.name for trace in section.throughput.figure.data}
    assert names == {"native", "onnx", "onnx-optimized"}
    assert len(section.latency.figure.data) == 3 * len(names)  # p50, p95, p99 per format
    assert all(list(trace.x) == [1, 2, 4] for trace in section.throughput.figure.data)
    assert "Best format per p99 budget" in section.best.value
    assert "default format" in section.best.value

    # Compare answers beside its button, not in the status line at the top
    section.compare_pick.value = (second,)
    section.compare_button.click()
    assert "two or more" in section.compare_status.value
    assert "two or more" not in section.status.value
    section.compare_pick.value = (second, first)
    section.compare_button.click()
    assert "2 versions compared" in section.compare_status.value
    table = section.comparison.value
    assert "C *" in table and "accuracy" in table  # C differs between the two
    assert "native best samples/s" in table  # the benchmarked one has figures, the other "-"
    charts = section.compare_box.children[0].children
    titles = [c.figure.layout.title.text for c in charts]
    assert titles == ["Evaluation", "Best samples/s by format"]
    assert {bar.name for bar in charts[0].figure.data} == {"flowers v1", "flowers v2"}
