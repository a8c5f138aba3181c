"""The Algorithms panel, driven as a user would (values set, buttons clicked), against a real
server: create and edit an algorithm from the form, filters, errors shown as the server's
message; on the Docker Engine, a workspace tar's validation report before its image can be
used, an upload with a progress bar, online and offline, delete."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import add_environment
from tests.live.test_training_widgets import wait_until
from tests.live.test_workspace_widgets import PANEL_TABS
from workbench.config import Settings
from workbench.services import Workbench
from workbench.widgets import WorkbenchPanel


def tiny_image_tar(path: Path, tag: str, cmd: list[str] | None) -> Path:
    """A ``docker save`` tar of a one-layer image (a file, nothing to run): enough to be
    checked and loaded, and small."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        script = b"print('trained')\n"
        info = tarfile.TarInfo("app/train.py")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
    layer_bytes = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/bin:/bin"], "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"],
        },
    }
    blob = json.dumps(config).encode()
    config_name = f"{hashlib.sha256(blob).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            (config_name, blob),
            ("layer/layer.tar", layer_bytes),
        ):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


@pytest.fixture
def panel(live):
    panel = WorkbenchPanel(live.client("alice"), poll_interval=0.2)
    yield panel
    panel.stop_polling()


def test_create_edit_and_filter_from_the_form(panel, live):
    section = panel.algorithms
    assert panel.tabs.titles == PANEL_TABS
    form = section.form
    form.name.value = "panel-bayes"
    form.description.value = "naive Bayes on words"
    form.purpose.value = "text"
    assert list(form.sub_purpose.options) == ["classification", "ner"]
    form.train.command.value = "python /app/train.py"
    form.train.args.value = "--verbose 'two words'"
    form.train.params.add_button.click()
    name, kind, default, description = form.train.params.rows[0]
    name.value, kind.value, default.value, description.value = "EPOCHS", "int", "10", "passes"
    form.train.params.add_button.click()
    name, kind, default, _ = form.train.params.rows[1]
    name.value, kind.value, default.value = "ALPHA", "float", "1.5"
    form.predict.api_params.add_button.click()
    api_name, _, _, example, note = form.predict.api_params.rows[0]
    api_name.value, example.value, note.value = "text", "a goal", "text to classify"
    form.save_button.click()
    assert "created panel-bayes" in section.status.value, form.message.value

    algo = section.selected
    assert algo is not None and algo.name == "panel-bayes" and algo.state == "draft"
    assert algo.train.settings.command == ["python", "/app/train.py"]
    assert algo.train.settings.args == ["--verbose", "two words"]
    assert algo.train.settings.env["EPOCHS"].default == 10
    assert algo.predict.settings.api_spec.params[0].example == "a goal"
    settings = section.settings.value
    for words in ("EPOCHS", "passes", "ALPHA", "1.5", "POST /predict", "a goal", "missing"):
        assert words in settings, words

    # edit: the form holds its values; a parameter removed, the description changed
    section.edit_button.click()
    assert section.form_box.selected_index == 0 and form.editing == algo.id
    assert form.name.value == "panel-bayes" and len(form.train.params.rows) == 2
    assert form.train.args.value == "--verbose 'two words'"
    form.train.params.remove(1)
    form.description.value = "multinomial naive Bayes"
    form.save_button.click()
    edited = live.client("alice").algorithms.get(algo.id)
    assert list(edited.train.settings.env) == ["EPOCHS"]
    assert edited.description == "multinomial naive Bayes"
    assert "ALPHA" not in section.settings.value

    # filters
    section.show_only.value = "mine"
    assert algo.id in [value for _, value in section.listing.options]
    section.purpose.value = "image"
    assert algo.id not in [value for _, value in section.listing.options]
    section.purpose.value = "all"
    section.show_only.value = "preset"
    assert algo.id not in [value for _, value in section.listing.options]
    section.show_only.value = "all"
    section.listing.value = algo.id

    # no training image yet: the server says why it cannot go online
    section.publish_button.click()
    assert "conflict" in section.status.value and "training image" in section.status.value

    # delete asks first
    section.delete_button.click()
    assert section.delete_button.description == "Confirm delete"
    section.delete_button.click()
    assert "deleted panel-bayes" in section.status.value
    assert algo.id not in [value for _, value in section.listing.options]


def test_the_server_message_is_shown_for_bad_settings(panel):
    form = panel.algorithms.form
    form.name.value = "panel-bad"
    form.train.params.add_button.click()
    name, kind, default, _ = form.train.params.rows[0]
    name.value, kind.value, default.value = "EPOCHS", "int", "many"
    form.save_button.click()
    assert "invalid_input" in form.message.value and "many" in form.message.value
    default.value = "3"
    name.value = "DATASET_DIR"
    form.save_button.click()
    assert "DATASET_DIR" in form.message.value and "set by the platform" in form.message.value
    form.train.command.value = "python 'unbalanced"
    form.save_button.click()
    assert "check the quotes" in form.message.value


@pytest.fixture
def workspace(live, python_env_image, tmp_path):
    """alice's workspace whose docker_image/ holds a good tar, a damaged one and a badly
    named one (as a build, or a user in its JupyterLab, would leave them)."""
    wb = Workbench.from_settings(Settings(home=live.server.home))
    env_id = add_environment(
        wb,
        name="python-algo-live",
        framework="python",
        image_ref=python_env_image,
        owner_id=1,
        visibility="public",
    )
    ws = live.client("alice").workspaces.create(
        name="algo-ws",
        purpose="text",
        sub_purpose="classification",
        environment_id=env_id,
        code={"kind": "scaffold", "prefix": "demo", "api_names": ["classify"]},
    )
    images = wb.workspaces.folder(ws.id) / "docker_image"
    wb.close()
    images.mkdir(exist_ok=True)
    tiny_image_tar(
        images / "train-tiny.tar", "wbtest/panel-tiny-train:1", ["python3", "/app/train.py"]
    )
    (images / "train-broken.tar").write_bytes(b"not a tar at all")
    tiny_image_tar(images / "Tiny Train.tar", "wbtest/panel-tiny-odd:1", ["python3"])
    yield ws
    live.client("alice").workspaces.delete(ws.id)


@pytest.mark.docker
@pytest.mark.slow
def test_a_workspace_tar_is_checked_before_it_is_used(panel, live, workspace, tmp_path):
    section = panel.algorithms
    section.form.name.value = "panel-from-ws"
    section.form.purpose.value = "text"
    section.form.save_button.click()
    algo = section.selected
    images = section.images
    assert images.kind.value == "train" and images.source.value == "workspace"
    assert workspace.id in [value for _, value in images.workspace.options]

    images.workspace.value = workspace.id
    tars = [value for _, value in images.tar.options]
    assert tars == [None, "Tiny Train.tar", "train-broken.tar", "train-tiny.tar"]
    assert images.use_button.disabled

    images.tar.value = "train-broken.tar"
    assert "Problems" in images.report.value and "not a tar archive" in images.report.value
    assert images.use_button.disabled
    images.tar.value = "Tiny Train.tar"
    assert "not kind-name.tar" in images.report.value and images.use_button.disabled

    images.tar.value = "train-tiny.tar"
    report = images.report.value
    for words in ("No problems", "wbtest/panel-tiny-train:1", "sha256:", "/app/train.py", "8080"):
        assert words in report, words
    assert not images.use_button.disabled
    images.use_button.click()  # queues the load: the panel follows its job
    wait_until(lambda: images.progress.bar_style == "success", 60, "the load to be followed")
    assert images.progress.value == 100
    assert "the train image is ready" in images.status.value
    train = live.client("alice").algorithms.get(algo.id).train
    assert train.state == "ready" and train.source == "workspace"
    assert f"workspace {workspace.id}" in section.settings.value
    assert train.image_ref in section.settings.value

    # a predict image may not come from a train tar: the list follows the kind
    images.kind.value = "predict"
    assert [value for _, value in images.tar.options] == [None, "Tiny Train.tar"]

    # an upload with a progress bar
    images.source.value = "upload"
    images.server_path.value = str(
        tiny_image_tar(
            tmp_path / "predict.tar", "wbtest/panel-tiny-api:1", ["python3", "-m", "api"]
        )
    )
    images.upload_button.click()
    wait_until(lambda: images.progress.value == 100, 60, "the upload's load")
    assert live.client("alice").algorithms.get(algo.id).predict.state == "ready"
    assert "predict.tar" in section.settings.value

    section.publish_button.click()
    assert section.selected.state == "online" and section.offline_button.layout.display == ""
    section.offline_button.click()
    assert section.selected.state == "offline"
    section.delete_button.click()
    section.delete_button.click()
    assert "deleted panel-from-ws" in section.status.value


def test_others_see_a_preset_but_may_not_change_it(live):
    preset = live.client("alice").algorithms.create(
        name="panel-preset", purpose="image", sub_purpose="classification", visibility="preset"
    )
    bob = WorkbenchPanel(live.client("bob")).algorithms
    assert "preset" not in bob.visibility.options and "preset" not in bob.form.visibility.options
    bob.show_only.value = "preset"
    bob.listing.value = preset.id
    assert "panel-preset" in bob.summary.value and bob.details.layout.display == ""
    bob.delete_button.click()
    bob.delete_button.click()
    assert "forbidden" in bob.status.value
    live.client("alice").algorithms.delete(preset.id)
