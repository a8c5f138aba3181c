"""``python -m workbench.serving`` as a real process, checked with Triton's own HTTP client
as a conformance peer: server and model metadata, the model configuration, and inference in
JSON and in binary; then SIGTERM (what ``docker stop`` sends) and a model that cannot
load."""

from __future__ import annotations

import signal
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


def wait_ready(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: m\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:  # not listening yet
            pass
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the server did not get ready in 60 s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    model = make_cnn(tmp_path_factory.mktemp("served") / "cnn.onnx")
    process, port = start(model, "--runtime", "onnx", "--name", "cnn", "--version", "2")
    wait_ready(process, port)
    url = f"127.0.0.1:{port}"
    client = triton.InferenceServerClient(url=url)
    assert client.is_server_ready()
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


def test_sigterm_ends_the_server_at_once_when_it_owes_no_answer(tmp_path):
    model = make_cnn(tmp_path / "cnn.onnx")
    process, port = start(model, "--runtime", "onnx", "--name", "cnn")
    try:
        wait_ready(process, port)
        idle = socket.create_connection(("127.0.0.1", port))  # a kept-alive client
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: m\r\n\r\n")
        assert idle.recv(1000).startswith(b"HTTP/1.1 200")
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        assert process.returncode == 0, output
        assert time.monotonic() - sent < 2
        assert idle.recv(100) == b""  # closed by the server
        assert "serving cnn v1 (onnx runtime, inputs: image FP32 [-1, 1, 8, 8])" in output
    finally:
        process.kill()


def test_a_model_that_cannot_load_ends_the_process(tmp_path):
    process, _ = start(tmp_path, "--runtime", "onnx")
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "holds no onnx model" in output
