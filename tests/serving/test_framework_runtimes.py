"""The model server's TorchScript and TensorFlow SavedModel runtimes, each in its own
environment image on the real Docker Engine (the frameworks are not in the Workbench's own
environment): a small model is made and its answers computed in one container, then served
in another as a replica runs (uid 1000, limits, the model read-only); Triton's client reads
its metadata and gets the same answers, in binary tensors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from tests.serving.models import CNN_SIGNATURE
from workbench.backends.base import Limits, Mount, RunSpec, RunState
from workbench.backends.docker import DockerBackend

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TORCHSCRIPT = """
import json, numpy as np, torch
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 3)
).eval()
module = torch.jit.script(net)
module.save("/out/model.pt")
x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
with torch.no_grad():
    y = module(torch.from_numpy(x)).numpy()
np.savez("/out/expected.npz", x=x, y=y)
json.dump(SIGNATURE, open("/out/signature.json", "w"))
"""

SAVEDMODEL = """
import numpy as np, tensorflow as tf
class Scorer(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.stateless_normal([4, 3], seed=[1, 2]))
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def __call__(self, features):
        return {"scores": tf.nn.softmax(tf.matmul(features, self.w))}
scorer = Scorer()
tf.saved_model.save(scorer, "/out/model", signatures={"serving_default": scorer.__call__})
x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
np.savez("/out/expected.npz", x=x, y=scorer(tf.constant(x))["scores"].numpy())
"""

CASES = {
    # runtime: (the image fixture, the script, the input's name, the platform)
    "torchscript": (
        "pytorch_env_image",
        TORCHSCRIPT.replace("SIGNATURE", json.dumps(CNN_SIGNATURE)),
        "image",
        "pytorch_libtorch",
    ),
    "savedmodel": ("tensorflow_env_image", SAVEDMODEL, "features", "tensorflow_savedmodel"),
}
USER = "1000:1000"


@pytest.mark.parametrize("runtime", sorted(CASES))
def test_a_framework_model_is_served_in_its_environment_image(
    runtime: str, request: pytest.FixtureRequest, docker_backend: DockerBackend, tmp_path: Path
):
    fixture, script, input_name, platform = CASES[runtime]
    image = request.getfixturevalue(fixture)
    out = tmp_path / "model"
    out.mkdir()
    out.chmod(0o777)  # written by uid 1000
    stamp = int(time.time() * 1000)
    maker = docker_backend.run(
        RunSpec(
            name=f"wbtest-make-{runtime}-{stamp}",
            image=image,
            command=("python", "-c", script),
            mounts=(Mount(out, "/out"),),
            limits=Limits(cpus=1, memory_mb=2048),
            user=USER,
        )
    )
    deadline = time.monotonic() + 180
    while (info := docker_backend.status(maker.id)).state == RunState.RUNNING:
        assert time.monotonic() < deadline, "the model is still being made"
        time.sleep(0.5)
    logs = "\n".join(docker_backend.logs(maker.id))
    docker_backend.remove(maker.id)
    assert info.exit_code == 0, logs
    expected = np.load(out / "expected.npz")

    server = docker_backend.run(
        RunSpec(
            name=f"wbtest-serve-{runtime}-{stamp}",
            image=image,
            command=(
                "python",
                "-m",
                "workbench.serving",
                "/workbench/model",
                "--runtime",
                runtime,
                "--name",
                "framework",
            ),
            mounts=(Mount(out, "/workbench/model", read_only=True),),
            ports={8080: 0},
            limits=Limits(cpus=1, memory_mb=2048),
            user=USER,
        )
    )
    try:
        port = docker_backend.status(server.id).ports[8080]
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            state = docker_backend.status(server.id).state
            assert state == RunState.RUNNING, "\n".join(docker_backend.logs(server.id))
            try:
                if client.is_model_ready("framework"):
                    break
            except Exception:  # not listening yet
                pass
            assert time.monotonic() < deadline, "\n".join(docker_backend.logs(server.id))
            time.sleep(0.5)
        metadata = client.get_model_metadata("framework")
        assert metadata["platform"] == platform
        assert [i["name"] for i in metadata["inputs"]] == [input_name]
        assert metadata["outputs"][0]["name"] == "scores"
        x = expected["x"]
        tensor = triton.InferInput(input_name, list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        result = client.infer("framework", [tensor])
        np.testing.assert_allclose(result.as_numpy("scores"), expected["y"], rtol=1e-5, atol=1e-6)
        client.close()
    finally:
        docker_backend.stop(server.id, timeout=5)
        docker_backend.remove(server.id)
