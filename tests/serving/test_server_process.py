"""``python -m workbench.serving`` as a real process (granian, one worker), checked with
Triton's own HTTP client as a conformance peer: server and model metadata, the model
configuration, and inference in JSON and in binary; then a model that cannot load."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton

from tests.serving.models import make_cnn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(model: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    command = [sys.executable, "-m", "workbench.serving", str(model), "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    model = make_cnn(tmp_path_factory.mktemp("served") / "cnn.onnx")
    process, port = start(model, "--runtime", "onnx", "--name", "cnn", "--version", "2")
    url = f"127.0.0.1:{port}"
    client = triton.InferenceServerClient(url=url)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.is_server_ready():
                break
        except Exception:  # not listening yet
            pass
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the server did not get ready in 60 s"
        time.sleep(0.2)
    yield url, model
    process.terminate()
    process.wait(10)
    client.close()


def test_triton_reads_metadata_and_config(served):
    url, _ = served
    client = triton.InferenceServerClient(url=url)
    assert client.is_server_live() and client.is_model_ready("cnn")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("cnn", "2")
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    config = client.get_model_config("cnn")
    assert config["max_batch_size"] == 32 and config["input"][0]["dims"] == [1, 8, 8]


@pytest.mark.parametrize("binary", [False, True])
def test_triton_infers_in_json_and_binary(served, binary):
    url, model = served
    x = np.random.default_rng(3).standard_normal((4, 1, 8, 8)).astype(np.float32)
    tensor = triton.InferInput("image", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary)
    wanted = triton.InferRequestedOutput("scores", binary_data=binary)
    client = triton.InferenceServerClient(url=url)
    result = client.infer("cnn", [tensor], outputs=[wanted], request_id="r1")
    assert result.get_response()["id"] == "r1"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        result.as_numpy("scores"), session.run(None, {"image": x})[0], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(triton.InferenceServerException, match="the model takes FP32"):
        wrong = triton.InferInput("image", list(x.shape), "FP64")
        wrong.set_data_from_numpy(x.astype(np.float64), binary_data=binary)
        client.infer("cnn", [wrong])


def test_a_model_that_cannot_load_ends_the_process(tmp_path):
    process, _ = start(tmp_path, "--runtime", "onnx")
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "holds no onnx model" in output
