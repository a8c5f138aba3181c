"""The Services panel, driven as a user would, against a real server and the Docker Engine:
publish a version from the form (its default format), test it online with the form made
from its V2 metadata (the simple route and V2; a wrong shape gets the server's message),
scale it to 2 from the panel, watch the live charts fill while a load runs, read a
replica's log, stop and start it (the address kept), and delete it."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path

import docker
import httpx
import ipywidgets as w
import joblib
import numpy as np
import pytest

from tests.docker_fixtures import echo_image_tar
from tests.live.test_training_widgets import wait_until
from tests.models_fixtures import register_classifiers
from workbench.config import Settings
from workbench.registry.models import ModelVersion
from workbench.services import Workbench
from workbench.widgets import WorkbenchPanel
from workbench.widgets.services import ServicesSection

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.usefixtures("no_service_left")]


@pytest.fixture(scope="module")
def served(live, python_env_image, tmp_path_factory) -> tuple[int, list[int], Path]:
    folder = tmp_path_factory.mktemp("served")
    model, versions = register_classifiers(
        live.server.home, python_env_image, folder, name="served"
    )
    wb = Workbench.from_settings(Settings(home=live.server.home))
    try:
        with wb.registry.session() as s:
            key = s.get_one(ModelVersion, versions[-1]).storage_key
        return model, versions, wb.store.path(key) / "model.joblib"
    finally:
        wb.close()


def shown_key(section: ServicesSection) -> str:
    """The endpoint's key the section shows (once, after a create or a rotation)."""
    found = re.search(r"class='wb-service-key-value'>([^<]+)<", section.key_box.value)
    assert found, section.key_box.value
    return html.unescape(found.group(1))


def load(address: str, key: str, seconds: float, stop: threading.Event) -> int:
    """Requests on the endpoint for ``seconds`` (or until ``stop``): how many got a 200."""
    ok, deadline = 0, time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://{address}", timeout=10, headers=headers) as http:
        while time.monotonic() < deadline and not stop.is_set():
            r = http.post("/predict", json={"features": [0.1, 0.2, 0.3, 0.4]})
            ok += r.status_code == 200
    return ok


def test_publish_test_scale_watch_and_stop_from_the_panel(live, served):
    model_id, (_, newest), model_file = served
    panel = WorkbenchPanel(live.client("alice"), poll_interval=0.3)
    section = panel.services
    assert section.title in panel.tabs.titles

    # publish: the newest version first, its default serving format offered first
    section.pick_model.value = model_id
    assert section.pick_version.value == newest
    assert section.pick_format.options[0] == ("default: native", "")
    assert section.new_name.value == "served"
    assert section.pick_version.label.startswith("v2 · native")  # its formats in its label
    # a name the user typed stays when the model is picked again; the suggestion follows it
    section.new_name.value = "mine"
    section.pick_model.value = None
    section.pick_model.value = model_id
    assert section.new_name.value == "mine"
    section.new_name.value = ""
    section.pick_model.value = None
    section.pick_model.value = model_id
    assert section.new_name.value == "served"
    section.publish_button.click()
    service = wait_until(
        lambda: (s := section.selected) is not None and s.state == "running" and s, 180, "deploy"
    )
    assert service.name == "served" and service.format == "native"
    # the form itself, not the placeholder a render shows while the service was deploying
    wait_until(
        lambda: [c for c in section.test_inputs.children if not isinstance(c, w.HTML)],
        30,
        "the test form",
    )
    assert "r0" in section.replica_table.value and "running" in section.replica_table.value
    assert f"http://{service.address}" in section.summary.value
    # the endpoint's key, shown this once, with a call that sends it
    key = shown_key(section)
    assert f"Authorization: Bearer {key}" in html.unescape(section.key_box.value)
    assert "those with its key" in section.summary.value

    # the online test: the form has the model's input, filled with a sample of its shape
    (box,) = section.test_inputs.children
    field = box.input  # a tensor: JSON, said so
    assert field.description == "features" and json.loads(field.value) == [0, 0, 0, 0]
    assert box.note.value.endswith(" · JSON</small>")
    sample = [0.5, 1.0, -0.3, 2.0]
    field.value = json.dumps(sample)
    section.send_button.click()
    assert "answered in" in section.answer_status.value, section.answer_status.value
    expected = int(joblib.load(model_file).predict(np.array([sample]))[0])
    answer = json.loads(html.unescape(re.sub(r"<[^>]+>", "", section.answer.value)))
    assert answer["label"] == expected and len(answer["probabilities"]) == 3
    section.route.value = "infer"
    section.send_button.click()
    assert "answered in" in section.answer_status.value
    assert "outputs" in section.answer.value and "probabilities" in section.answer.value
    field.value = "[1, 2]"  # a wrong shape: the model server's message, by either route
    section.send_button.click()
    assert "inference_error" in section.answer_status.value
    assert "has shape [1, 2], the model takes [N, 4]" in section.answer_status.value
    section.route.value = "predict"
    section.send_button.click()
    assert "one sample of the model is [4]" in section.answer_status.value
    field.value = "[1, 2"
    section.send_button.click()
    assert "features takes JSON (array), e.g. [0.5, 1.0]" in section.answer_status.value

    # scale to 2 from the panel
    section.scale_to.value = 2
    section.scale_button.click()
    # while the second starts, the first still serves, and the panel says so
    assert "r0" in section.replica_table.value, section.replica_table.value
    assert "1/2 replicas" in section.listing.label or "2/2 replicas" in section.listing.label
    wait_until(lambda: "2/2 replicas" in section.listing.label, 180, "2 replicas")
    assert "r1" in section.replica_table.value
    assert "done" in section.deploy_status.value

    # the live charts fill while a load runs through the endpoint
    stop = threading.Event()
    answered: list[int] = []
    loader = threading.Thread(target=lambda: answered.append(load(service.address, key, 30, stop)))
    loader.start()
    try:
        wait_until(
            lambda: any(p.request_rate > 5 and p.replicas == 2 for p in section._history),
            30,
            "a reading with the load",
        )
    finally:
        stop.set()
        loader.join()
    assert answered[0] > 0
    assert section.live_chart is not None

    def chart_lines() -> dict[str, list[float]]:
        traces = section.live_chart.figure.data
        return {trace.name: [y for y in trace.y if y is not None] for trace in traces}

    # the wrong shapes sent above were errors, the load not: the error rate comes back to 0
    # once the readings no longer cover them (a reading that failed under the load counts
    # what came before it in the next)
    lines = wait_until(
        lambda: ((found := chart_lines()).get("errors/s") or [None])[-1] == 0 and found,
        30,
        "errors/s back to 0",
    )
    assert set(lines) == {
        "requests/s",
        "errors/s",
        "p50",
        "p95",
        "p99",
        "mean batch",
        "queue depth",
    }
    assert max(lines["requests/s"]) > 5
    assert max(lines["p50"]) > 0 and max(lines["p99"]) >= max(lines["p50"])
    assert max(lines["mean batch"]) >= 1
    assert "req/s" in section.now.value

    # a replica's log
    section.log_replica.value = 1
    section.log_button.click()
    assert "serving served v2 (sklearn runtime" in section.log_text.value

    # stop and start: the replicas go and come back behind the same address
    section.stop_button.click()
    wait_until(lambda: section.selected.state == "stopped", 120, "the stop")
    wait_until(lambda: "No replica runs" in section.replica_table.value, 30, "no replicas")

    def placeholder() -> bool:  # the panel's poll renders the table first, then the form
        (shown, *_) = section.test_inputs.children or (None,)
        return isinstance(shown, w.HTML) and "The form appears when a replica runs" in shown.value

    # what runs, not what ran: no live line, no test form for a service that serves nothing
    wait_until(placeholder, 30, "the form's placeholder")
    assert section.now.value == ""
    # nor the last answer, a Send button, or the charts of replicas that are gone
    assert section.answer.value == "" and section.send_row.layout.display == "none"
    assert len(section.live_chart.figure.data) == 0
    section.start_button.click()
    wait_until(lambda: "2/2 replicas" in section.listing.label, 180, "the start")
    assert section.selected.address == service.address

    def predict(key: str) -> httpx.Response:
        return httpx.post(
            f"http://{service.address}/predict",
            json={"features": sample},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    assert predict(key).json() == answer

    # a replica that dies is shown as it is, without a click: the list and its table follow
    # what runs (the server's watch then replaces it)
    (killed,) = [r for r in section.selected.replica_states if r.index == 1]
    docker.from_env().containers.get(killed.run_id).kill()
    wait_until(
        lambda: (
            killed.run_id[:12] not in section.replica_table.value
            or "1/2 replicas" in section.listing.label
        ),
        60,
        "the panel to see the dead replica",
    )
    wait_until(
        lambda: "2/2 replicas" in section.listing.label and section.selected.state == "running",
        120,
        "its replacement",
    )

    # a new key from the panel: shown once, the old one refused at once
    section.rotate_button.click()
    new_key = shown_key(section)
    assert new_key != key and predict(new_key).json() == answer
    assert predict(key).status_code == 401

    section.delete_button.click()  # asks first
    section.delete_button.click()
    assert section.selected is None
    assert "deleted served" in section.status.value
    panel.stop_polling()


def test_publish_an_inference_image_and_test_it_by_its_api_spec(
    live, docker_backend, base_image, tmp_path
):
    """Manual 2.7.1, the second way: an algorithm's inference image (uploaded as a tar)
    published from the panel; the test form is made from its API spec."""
    alice = live.client("alice")
    spec = {
        "route": "/predict",
        "params": [
            {"name": "text", "type": "string", "example": "hello", "description": "to echo"}
        ],
    }
    algorithm = alice.algorithms.create(
        name="echo-ui", purpose="text", sub_purpose="classification", predict={"api_spec": spec}
    )
    alice.algorithms.upload_image(
        algorithm.id, "predict", echo_image_tar(docker_backend, base_image, tmp_path, "7")
    )
    panel = WorkbenchPanel(alice, poll_interval=0.3)
    section = panel.services
    section.serve_from.value = "image"
    assert section.pick_model.layout.display == "none"
    assert (section.pick_algorithm.value, section.new_name.value) == (algorithm.id, "echo-ui")
    section.publish_button.click()
    service = wait_until(
        lambda: (s := section.selected) is not None and s.state == "running" and s, 120, "deploy"
    )
    assert service.format == "image" and "inference image" in section.summary.value
    assert "POST <code>/predict</code>" in section.summary.value
    (box,) = section.test_inputs.children
    field = box.input  # a string: a text field, no JSON quotes
    assert isinstance(field, w.Text) and (field.description, field.value) == ("text", "hello")
    assert "string: to echo" in box.note.value and section.route.layout.display == "none"
    field.value = "hi there"
    section.send_button.click()
    assert "answered in" in section.answer_status.value, section.answer_status.value
    answer = json.loads(html.unescape(re.sub(r"<[^>]+>", "", section.answer.value)))
    assert answer == {"build": "7", "text": "hi there", "model_dir": ""}
    wait_until(lambda: "serve no Prometheus /metrics" in section.now.value, 10, "the note")
    section.delete_button.click()
    section.delete_button.click()
    panel.stop_polling()
    alice.algorithms.delete(algorithm.id)
