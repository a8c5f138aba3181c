"""The model server inside an environment image on the real Docker Engine, as a service's
replica will run it: the image carries it (the Workbench wheel and its dependencies), the
model is mounted read-only, the container runs as uid 1000 with limits, and Triton's client
gets a correct answer through the published port."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton

from tests.serving.models import make_cnn
from workbench.backends.base import Limits, Mount, RunSpec, RunState
from workbench.backends.docker import DockerBackend

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_python_environment_image_serves_an_onnx_model(
    docker_backend: DockerBackend, python_env_image: str, tmp_path: Path
):
    model = make_cnn(tmp_path / "model" / "model.onnx")
    tmp_path.joinpath("model").chmod(0o755)
    run = docker_backend.run(
        RunSpec(
            name=f"wbtest-serve-{int(time.time() * 1000)}",
            image=python_env_image,
            command=(
                "python",
                "-m",
                "workbench.serving",
                "/workbench/model",
                "--runtime",
                "onnx",
                "--name",
                "cnn",
            ),
            mounts=(Mount(model.parent, "/workbench/model", read_only=True),),
            ports={8080: 0},
            limits=Limits(cpus=1, memory_mb=512),
            user="1000:1000",
        )
    )
    try:
        port = docker_backend.status(run.id).ports[8080]
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            info = docker_backend.status(run.id)
            assert info.state == RunState.RUNNING, "\n".join(docker_backend.logs(run.id))
            try:
                if client.is_model_ready("cnn"):
                    break
            except Exception:  # not listening yet
                pass
            assert time.monotonic() < deadline, "\n".join(docker_backend.logs(run.id))
            time.sleep(0.3)
        x = np.random.default_rng(5).standard_normal((2, 1, 8, 8)).astype(np.float32)
        tensor = triton.InferInput("image", [2, 1, 8, 8], "FP32")
        tensor.set_data_from_numpy(x, binary_data=True)
        result = client.infer("cnn", [tensor])
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(
            result.as_numpy("scores"), session.run(None, {"image": x})[0], rtol=1e-5, atol=1e-6
        )
        client.close()
    finally:
        docker_backend.stop(run.id, timeout=5)
        docker_backend.remove(run.id)
