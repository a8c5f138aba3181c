"""Services over REST, through the Python client and the CLI, against a real server process
and the Docker Engine: serve an ONNX version, scale, stop and start, list and show, delete;
the errors a user gets."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import add_environment
from tests.live.test_cli import run
from tests.serving.models import CNN_SIGNATURE, make_cnn
from workbench.config import Settings
from workbench.errors import InferenceError, InvalidInput, NotFound
from workbench.models.schemas import NewVersion
from workbench.registry.models import User
from workbench.services import Workbench

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.usefixtures("no_service_left")]


@pytest.fixture(scope="module")
def version(live, python_env_image, tmp_path_factory) -> int:
    """bob's ONNX CNN version, in the python environment."""
    folder = tmp_path_factory.mktemp("svc") / "cnn"
    make_cnn(folder / "model.onnx")
    (folder / "signature.json").write_text(json.dumps(CNN_SIGNATURE))
    wb = Workbench.from_settings(Settings(home=live.server.home))
    try:
        with wb.registry.session() as s:
            bob = s.scalar(sa.select(User.id).where(User.username == "bob"))
            assert bob is not None
            model = wb.model_versions.model_for(
                s, name="cnn-live", owner_id=bob, visibility="private"
            )
            model_id = model.id
        env = add_environment(
            wb, name="python-svc", framework="python", image_ref=python_env_image,
            owner_id=bob, visibility="private", state="ready",
        )  # fmt: skip
        lineage = NewVersion(environment_id=env)
        return wb.model_versions.register_version(model_id, folder, lineage, staging="live").id
    finally:
        wb.close()


def predict(address: str | None) -> list[float]:
    assert address
    x = np.zeros((1, 8, 8), np.float32).tolist()
    r = httpx.post(f"http://{address}/predict", json={"image": x}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["scores"]


def test_serve_scale_stop_start_and_delete(live, version):
    bob = live.client("bob")
    service = bob.services.create("cnn-live", version)
    assert service.state == "running" and service.format == "native"
    assert len(predict(service.replica_states[0].address)) == 3
    service = bob.services.scale(service.id, 2)
    assert [r.index for r in service.replica_states] == [0, 1]
    assert predict(service.replica_states[1].address) == predict(service.replica_states[0].address)
    # the endpoint through the Workbench server: the simple route, V2 in JSON and binary
    relayed = bob.services.predict(service.id, {"image": np.zeros((1, 8, 8)).tolist()})
    assert relayed["scores"] == predict(service.replica_states[0].address)
    x = np.zeros((1, 1, 8, 8), np.float32)
    tensor = {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32"}
    request = {"inputs": [{**tensor, "data": x.ravel().tolist()}]}
    answer = bob.services.infer(service.id, "cnn-live", request)
    assert answer["outputs"][0]["data"] == pytest.approx(relayed["scores"], rel=1e-5)
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": 256}}]})
    relay = f"{live.server.url}workbench/api/v1/services/{service.id}/endpoint"
    r = httpx.post(
        f"{relay}/v2/models/cnn-live/infer",
        content=header.encode() + x.tobytes(),
        headers={
            "Authorization": f"token {live.bob}",
            "Inference-Header-Content-Length": str(len(header)),
        },
    )
    assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [1, 3]
    with pytest.raises(NotFound):  # alice sees no private service of bob's
        live.client("alice").services.predict(service.id, {"image": x[0].tolist()})
    bad = httpx.post(
        f"{relay}/predict", json={"picture": 1}, headers={"Authorization": f"token {live.bob}"}
    )
    assert bad.status_code == 400 and "the model takes" in bad.json()["error"]

    # its metrics and logs, by the client and the CLI
    reading = bob.services.metrics(service.id)
    assert [r.index for r in reading.replicas] == [0, 1]
    assert sum(r.requests for r in reading.replicas) >= 4  # the predictions above
    assert all(r.latency.count == r.requests and not r.error for r in reading.replicas)
    logs = bob.services.logs(service.id)
    assert [log.index for log in logs] == [0, 1]
    assert all("serving cnn-live v1 (onnx runtime" in log.text for log in logs)
    sample = json.dumps({"image": np.zeros((1, 8, 8)).tolist()})
    out = run(live, "service", "predict", str(service.id), sample, token=live.bob)
    answer, took = out.splitlines()  # the answer on stdout, its latency on stderr
    assert json.loads(answer)["scores"] == relayed["scores"] and took.endswith(" ms)")
    out = run(live, "service", "logs", str(service.id), "--replica", "1", token=live.bob)
    assert "--- replica 1" in out and "replica 0" not in out
    out = run(live, "service", "metrics", str(service.id), "--seconds", "0.5", token=live.bob)
    assert "2 replicas" in out and "req/s" in out
    assert bob.services.stop(service.id).state == "stopped"
    assert len(bob.services.start(service.id).replica_states) == 2

    listed = run(live, "service", "list", token=live.bob)
    assert "cnn-live" in listed and "running" in listed and "2/2" in listed
    out = run(live, "service", "scale", str(service.id), "1", token=live.bob)
    assert "1 replica ready" in out and "1/1" in out
    shown = json.loads(run(live, "service", "show", str(service.id), token=live.bob))
    assert shown["replicas"] == 1 and shown["state"] == "running"
    assert "deleted" in run(live, "service", "delete", str(service.id), token=live.bob)
    assert bob.services.list() == []


def test_the_errors_a_user_gets(live, version):
    bob, alice = live.client("bob"), live.client("alice")
    with pytest.raises(NotFound):
        bob.services.create("nothing", 999_999)
    with pytest.raises(InvalidInput) as name:
        bob.services.create("Bad Name", version)
    assert "name" in name.value.message
    with pytest.raises(InvalidInput, match="no verified onnx format"):
        bob.services.create("cnn-onnx", version, format="onnx")
    with pytest.raises(NotFound):
        alice.services.get(424242)
    with pytest.raises(NotFound):
        alice.services.metrics(424242)
    idle = bob.services.create("cnn-idle", version, replicas=0)
    try:
        with pytest.raises(NotFound):  # private: alice does not see it
            alice.services.logs(idle.id)
        with pytest.raises(NotFound, match="has no replica 3"):
            bob.services.logs(idle.id, replica=3)
        with pytest.raises(InvalidInput, match="tail"):
            bob.services.logs(idle.id, tail=0)
        assert bob.services.metrics(idle.id).replicas == []
        with pytest.raises(InferenceError, match="no replica ready"):  # the endpoint's 503
            bob.services.predict(idle.id, {"image": np.zeros((1, 8, 8)).tolist()})
    finally:
        bob.services.delete(idle.id)
