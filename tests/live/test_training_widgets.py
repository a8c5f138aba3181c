"""The Training panel, driven as a user would, against a real server and Docker Engine: the
wizard's steps and checks (a parameter of the wrong type is shown before anything is
sent), a task saved and one saved and started, followed live to its evaluation and model;
stop, retry, edit, transfer training and delete."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.archives import image_classes
from tests.conftest import add_algorithm, add_online_dataset
from workbench.backends.docker import DockerBackend
from workbench.config import Settings
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.widgets import WorkbenchPanel
from workbench.widgets.training import TrainingSection
from workbench.widgets.training_wizard import TrainingWizard

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: a tiny training run that follows docs/contracts.md: it logs, appends a metrics line
#: every PAUSE seconds for EPOCHS epochs, then writes its evaluation and a model
TRAIN_PY = """\
import json, os, time
from pathlib import Path

info = json.loads((Path(os.environ["DATASET_DIR"]) / "dataset.json").read_text())
classes = info["classes"]
epochs, pause = int(os.environ["EPOCHS"]), float(os.environ["PAUSE"])
print(f"training on {info['samples']['train']} samples of {len(classes)} classes", flush=True)
for epoch in range(1, epochs + 1):
    time.sleep(pause)
    loss, accuracy = round(1 / epoch, 4), round(1 - 0.4 / epoch, 4)
    print(f"epoch {epoch}/{epochs} loss={loss} accuracy={accuracy}", flush=True)
    with open(os.environ["METRICS_FILE"], "a") as f:
        f.write(json.dumps({"epoch": epoch, "loss": loss, "accuracy": accuracy}) + "\\n")
n = len(classes)
per = max(info["samples"]["test"] // n, 2)
matrix = [[per if i == j else 0 for j in range(n)] for i in range(n)]
matrix[0][0], matrix[0][n - 1] = per - 1, matrix[0][n - 1] + 1
Path(os.environ["EVALUATION_FILE"]).write_text(
    json.dumps({"labels": classes, "confusion_matrix": matrix, "metrics": {"epochs": epochs}})
)
(Path(os.environ["MODEL_DIR"]) / "model.json").write_text(json.dumps({"classes": classes}))
print("saved the model", flush=True)
"""
TRAIN_PARAMS = {
    "EPOCHS": {"type": "int", "default": 4, "description": "passes over the train split"},
    "PAUSE": {"type": "float", "default": 0.5, "description": "seconds per epoch"},
}


def build_train_image(backend: DockerBackend, env_image: str, folder: Path, tag: str) -> str:
    """``tag``: the tiny training run on top of the python environment's image."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN_PY)
    (folder / "Dockerfile").write_text(
        f'FROM {env_image}\nCOPY train.py /app/train.py\nCMD ["python", "/app/train.py"]\n'
    )
    list(backend.build_image(folder, tag))
    return tag


def add_trainable_algorithm(wb: Workbench, owner_id: int, image_ref: str, name: str) -> int:
    """An online, public image-classification algorithm whose training image is
    ``image_ref`` (and a predict image still to come), as the algorithm library leaves one
    after a load."""
    image = wb.backend().inspect_image(image_ref)
    algorithm_id = add_algorithm(
        wb,
        owner_id,
        {
            "env": TRAIN_PARAMS,
            "image_ref": image_ref,
            "digest": image.id,
            "size": image.size,
            "source": "upload",
            "source_detail": f"{name}.tar",
        },
        name=name,
        description="logs, metrics each epoch, an evaluation and a model",
    )
    with wb.registry.session() as s:
        s.add(m.AlgorithmImage(algorithm_id=algorithm_id, kind="predict"))
    return algorithm_id


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return result


@dataclass(frozen=True)
class Setup:
    algorithm: int
    by_ratio: int  # a dataset with a train archive only
    independent: int  # a dataset with its own test archive


@pytest.fixture(scope="module")
def setup(live, docker_backend, python_env_image, tmp_path_factory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("training")
    image = build_train_image(
        docker_backend, python_env_image, folder / "image", "wbtest/panel-train:live"
    )
    wb = Workbench.from_settings(Settings(home=live.server.home))
    alice = wb.users.find("alice")
    assert alice is not None
    algorithm = add_trainable_algorithm(wb, alice.id, image, "panel-tiny")
    by_ratio = add_online_dataset(wb, alice, folder, {"0": 6, "1": 6, "2": 6}, "panel-digits")
    wb.close()
    client = live.client("alice")
    ds = client.datasets.create(
        name="panel-split",
        purpose="image",
        sub_purpose="classification",
        format="dir",
        split_mode="independent",
    )
    client.datasets.upload(ds.id, "train", image_classes(folder / "t.zip", {"a": 4, "b": 4}))
    client.datasets.upload(ds.id, "test", image_classes(folder / "s.zip", {"a": 2, "b": 2}))
    client.datasets.publish(ds.id)
    yield Setup(algorithm, by_ratio, ds.id)
    docker_backend.remove_image(image)


@pytest.fixture
def training(live) -> Iterator[TrainingSection]:
    panel = WorkbenchPanel(live.client("alice"), poll_interval=0.2)
    yield panel.training
    panel.stop_polling()


def through_the_wizard(
    wizard: TrainingWizard, setup: Setup, name: str, **params: str
) -> TrainingWizard:
    """Purpose, name, algorithm, dataset and parameters, up to the last step."""
    wizard.purpose.value, wizard.sub_purpose.value = "image", "classification"
    wizard.next_button.click()
    wizard.name.value = name
    wizard.next_button.click()
    wizard.algorithm_source.value = "public"
    wizard.algorithm.value = setup.algorithm
    wizard.next_button.click()
    wizard.dataset.value = setup.by_ratio
    wizard.next_button.click()
    for key, value in params.items():
        wizard.params[key][1].value = value
    wizard.next_button.click()
    assert wizard.step == 5, wizard.message.value
    return wizard


def test_the_wizard_checks_each_step_and_saves_a_draft(training, setup, live):
    wizard = training.wizard
    assert wizard.step == 0 and wizard.next_button.layout.display == ""
    assert wizard.save_button.layout.display == "none"
    wizard.purpose.value = "image"
    wizard.next_button.click()
    wizard.next_button.click()
    assert wizard.step == 1 and "Give the task a name" in wizard.message.value
    wizard.name.value = "panel-draft"
    wizard.next_button.click()

    # algorithms: online ones of the purpose, from the chosen source
    assert wizard.step == 2
    assert [v for _, v in wizard.algorithm.options] == [setup.algorithm]  # alice's own
    wizard.algorithm_source.value = "preset"
    assert (
        list(wizard.algorithm.options) == [] and "No online preset" in wizard.algorithm_info.value
    )
    wizard.next_button.click()
    assert wizard.step == 2 and "Choose an online algorithm" in wizard.message.value
    wizard.algorithm_source.value = "public"
    wizard.algorithm.value = setup.algorithm
    assert "2 parameters" in wizard.algorithm_info.value
    wizard.next_button.click()

    # datasets: the ratio only for one without a test set
    assert wizard.step == 3
    assert {setup.by_ratio, setup.independent} <= {v for _, v in wizard.dataset.options}
    wizard.dataset.value = setup.independent
    assert wizard.train_ratio.layout.display == "none"
    assert "own test set" in wizard.split_note.value
    wizard.dataset.value = setup.by_ratio
    assert wizard.train_ratio.layout.display == "" and wizard.train_ratio.value == 0.8
    wizard.train_ratio.value = 0.75
    wizard.next_button.click()

    # parameters: prefilled with the defaults, checked against their types
    assert wizard.step == 4
    epochs = wizard.params["EPOCHS"][1]
    assert (epochs.value, wizard.params["PAUSE"][1].value) == ("4", "0.5")
    epochs.value = "three"
    assert "EPOCHS must be an int" in wizard.params["EPOCHS"][2].value
    wizard.next_button.click()
    assert wizard.step == 4 and "Fix the parameter EPOCHS" in wizard.message.value
    epochs.value = "3"
    assert wizard.params["EPOCHS"][2].value == ""
    wizard.next_button.click()

    assert wizard.step == 5 and wizard.next_button.layout.display == "none"
    assert wizard.save_button.layout.display == "" and wizard.save_start_button.layout.display == ""
    wizard.cpus.value = 1
    wizard.save_button.click()
    assert "panel-draft" in training.status.value and "draft" in training.status.value
    task = training.selected
    assert task is not None and task.state == "draft"
    assert (task.parameters, task.train_ratio) == ({"EPOCHS": 3, "PAUSE": 0.5}, 0.75)
    assert training.detail.start_button.layout.display == ""
    assert wizard.step == 0 and wizard.name.value == ""

    # edit it: the wizard comes back with its values
    training.detail.edit_button.click()
    assert training.forms.selected_index == 0 and wizard.editing == task.id
    assert (wizard.name.value, wizard.algorithm.value, wizard.dataset.value) == (
        "panel-draft",
        setup.algorithm,
        setup.by_ratio,
    )
    assert wizard.params["EPOCHS"][1].value == "3" and wizard.train_ratio.value == 0.75
    wizard.name.value = "panel-draft-2"
    for _ in range(4):
        wizard.next_button.click()
    wizard.save_button.click()
    assert live.client("alice").training.get(task.id).name == "panel-draft-2"

    # the server's refusals are shown as they come
    wizard.go(0)
    through_the_wizard(wizard, setup, "too-big")
    wizard.cpus.value = 250
    wizard.save_button.click()
    assert "invalid_input" in wizard.message.value and "CPU" in wizard.message.value

    training.detail.delete_button.click()
    assert training.detail.delete_button.description == "Confirm delete"
    training.detail.delete_button.click()
    assert "deleted panel-draft-2" in training.status.value
    assert task.id not in [v for _, v in training.listing.options]


def test_save_and_start_then_follow_the_run_live(training, setup, live):
    wizard = through_the_wizard(training.wizard, setup, "panel-run", EPOCHS="6")
    wizard.save_start_button.click()
    assert "panel-run" in training.status.value and "started" in training.status.value
    task = training.selected
    assert task.state in ("queued", "running")
    detail = training.detail
    assert detail.poller.running and detail.stop_button.layout.display == ""

    # live, while it runs: the log and the metrics come in
    wait_until(lambda: len(detail.points.get("loss", ((), ()))[0]) >= 2, 120, "2 epochs")
    assert detail.task.state == "running"
    assert "epoch 2/6" in detail.log_view.value
    wait_until(lambda: detail.task.state == "succeeded", 120, "the run to succeed")
    # the status lines follow the task: no "started" left beside a task that has ended
    wait_until(lambda: "panel-run succeeded" in training.status.value, 10, "the status")
    assert "panel-run succeeded" in detail.status.value
    assert not detail.poller.running
    traces = {trace.name: trace for trace in detail.chart.figure.data}
    assert set(traces) == {"loss", "accuracy"}
    assert list(traces["loss"].x) == [1, 2, 3, 4, 5, 6]
    # on axes of their own (a loss and a rate), over one epoch axis at the bottom
    assert traces["loss"].yaxis != traces["accuracy"].yaxis
    assert detail.chart.figure.layout.xaxis2.title.text == "epoch"
    assert "saved the model" in detail.log_view.value

    # then the evaluation, the confusion matrix and the model version
    evaluation = detail.evaluation.value
    for words in (
        "accuracy",
        "F1 (macro)",
        "wb-eval-classes",
        "<td style='padding:1px 6px'>2</td>",
    ):
        assert words in evaluation, words
    heat = detail.confusion.figure.data[0]
    assert list(heat.x) == ["0", "1", "2"] and len(heat.z) == 3
    assert detail.confusion_box.children == (detail.confusion,)
    assert "panel-run v1 (id " in detail.model.value
    assert detail.retry_button.layout.display == "" and detail.transfer_button.layout.display == ""
    wait_until(lambda: "succeeded" in training.listing.label, 10, "the list to follow")

    # transfer training: the wizard comes back from the model version
    detail.transfer_button.click()
    wizard = training.wizard
    done = live.client("alice").training.get(task.id)
    assert wizard.base_model_version_id == done.model_version_id
    assert wizard.algorithm.value == setup.algorithm and wizard.dataset.value == setup.by_ratio
    assert wizard.params["EPOCHS"][1].value == "6"
    assert "Transfer training from" in wizard.transfer_note.value
    for _ in range(4):
        wizard.next_button.click()
    wizard.save_button.click()
    transfer = training.selected
    assert transfer.id != task.id and transfer.base_model_version_id == done.model_version_id
    assert f"from model version #{done.model_version_id}" in training.detail.summary.value

    # or from the models: a model and one of its versions
    training.wizard.reset()
    training.models.load()
    training.models.model.value = done.model_id
    assert [v for _, v in training.models.version.options] == [done.model_version_id]
    assert "accuracy 0." in training.models.version.label
    training.models.button.click()
    assert wizard.base_model_version_id == done.model_version_id
    assert wizard.name.value == "panel-run-v1-transfer" and wizard.step == 1

    # a run is stopped, then retried as a new run
    training.listing.value = task.id
    first_run = detail.job_id
    detail.retry_button.click()
    assert "restarted" in detail.status.value and detail.job_id != first_run
    assert "saved the model" not in detail.log_view.value  # the new run's log
    detail.stop_button.click()
    assert live.client("alice").training.get(task.id).state == "stopped"
    assert detail.retry_button.layout.display == ""
