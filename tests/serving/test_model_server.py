"""The model server's routes in-process (served by its HTTP layer on this test's event loop,
asked with httpx), with real models: an ONNX CNN run by ONNX Runtime and a Python
predictor. The V2 protocol in JSON and binary, the errors a client gets, batching of
requests that arrive together (and none for a lone one), the full queue's 503, and the
metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from tests.serving.models import make_cnn, make_predictor
from workbench.serving.app import ModelServer
from workbench.serving.http import serve
from workbench.serving.runtimes import ModelLoadError, load

INFER = "/v2/models/cnn/infer"


@contextlib.asynccontextmanager
async def client_of(server: ModelServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``server``, served on a free port of this event loop while it is open."""
    loop = asyncio.get_running_loop()
    started: asyncio.Future[int] = loop.create_future()
    stop = asyncio.Event()
    serving = loop.create_task(serve(server, "127.0.0.1", 0, started=started, stop=stop))
    port = await started
    limits = httpx.Limits(max_connections=64)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
            yield client
    finally:
        stop.set()
        await serving


@pytest.fixture
def cnn_file(tmp_path: Path) -> Path:
    return make_cnn(tmp_path / "cnn" / "model.onnx")


@pytest.fixture
def cnn(cnn_file: Path) -> Iterator[ModelServer]:
    server = ModelServer(load(cnn_file.parent, "onnx"), name="cnn", version="3", max_batch=16)
    yield server
    server.batcher.close()


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 1, 8, 8)).astype(np.float32)


def expected(cnn_file: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(cnn_file), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def v2_body(x: np.ndarray, **extra: object) -> dict:
    tensor = {
        "name": "image",
        "shape": list(x.shape),
        "datatype": "FP32",
        "data": x.ravel().tolist(),
    }
    return {"inputs": [tensor], **extra}


async def test_health_metadata_and_config(cnn):
    async with client_of(cnn) as client:
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        assert (await client.get("/health")).json() == {"status": "ok"}
        server = (await client.get("/v2")).json()
        assert server["name"] == "workbench" and "binary_tensor_data" in server["extensions"]
        for path in ("/v2/models/cnn", "/v2/models/cnn/versions/3"):
            meta = (await client.get(path)).json()
            assert meta == {
                "name": "cnn",
                "versions": ["3"],
                "platform": "onnxruntime_onnx",
                "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
                "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}],
            }
            assert (await client.get(f"{path}/ready")).json() == {"name": "cnn", "ready": True}
        config = (await client.get("/v2/models/cnn/config")).json()
        assert config["max_batch_size"] == 16 and config["platform"] == "onnxruntime_onnx"
        assert config["input"] == [{"name": "image", "data_type": "TYPE_FP32", "dims": [1, 8, 8]}]
        assert config["output"] == [{"name": "scores", "data_type": "TYPE_FP32", "dims": [3]}]
        assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 5000


async def test_infer_in_json_and_in_binary(cnn, cnn_file):
    async with client_of(cnn) as client:
        x = images(3)
        want = expected(cnn_file, x)
        r = await client.post(INFER, json=v2_body(x, id="req-7"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (
            body["id"] == "req-7" and body["model_name"] == "cnn" and body["model_version"] == "3"
        )
        out = body["outputs"][0]
        assert out["name"] == "scores" and out["datatype"] == "FP32" and out["shape"] == [3, 3]
        np.testing.assert_allclose(np.array(out["data"]).reshape(3, 3), want, rtol=1e-5, atol=1e-6)

        # binary in, binary out: a JSON header, then the raw little-endian tensors
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "image",
                        "shape": [3, 1, 8, 8],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ],
                "outputs": [{"name": "scores", "parameters": {"binary_data": True}}],
            }
        ).encode()
        r = await client.post(
            "/v2/models/cnn/versions/3/infer",
            content=header + x.tobytes(),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        assert r.status_code == 200, r.text
        length = int(r.headers["inference-header-content-length"])
        meta = json.loads(r.content[:length])
        assert meta["outputs"][0]["parameters"]["binary_data_size"] == 36
        got = np.frombuffer(r.content[length:], dtype="<f4").reshape(3, 3)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


async def test_the_simple_route_takes_one_sample(cnn, cnn_file):
    async with client_of(cnn) as client:
        x = images(1)
        r = await client.post("/predict", json={"image": x[0].tolist()})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(
            r.json()["scores"], expected(cnn_file, x)[0], rtol=1e-5, atol=1e-6
        )
        bad = await client.post("/predict", json={"picture": x[0].tolist()})
        assert bad.status_code == 400
        assert (
            bad.json()["error"]
            == 'the model takes {"image": ...}; unknown: picture; missing: image'
        )
        wrong = await client.post("/predict", json={"image": [[1.0, 2.0]]})
        assert (
            wrong.json()["error"] == "image has shape [1, 2], one sample of the model is [1, 8, 8]"
        )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "the body is not JSON"),
        (b'{"inputs": 3}', 400, 'a V2 inference request is an object with "inputs"'),
        (
            {
                "inputs": [
                    {"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0] * 64}
                ]
            },
            400,
            "input 'image' has shape [1, 8, 8], the model takes [N, 1, 8, 8]",
        ),
        (
            {
                "inputs": [
                    {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP64", "data": [0] * 64}
                ]
            },
            400,
            "input 'image' is FP64, the model takes FP32; send it as FP32",
        ),
        (
            {
                "inputs": [
                    {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 63}
                ]
            },
            400,
            "input 'image' has 63 values, its shape [1, 1, 8, 8] needs 64",
        ),
        (
            {"inputs": [{"name": "img", "shape": [1], "datatype": "FP32", "data": [0]}]},
            400,
            "unknown input 'img': the model takes image",
        ),
        ({"inputs": []}, 400, "missing input 'image'"),
        (
            {
                "inputs": [
                    {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": ["a"] * 64}
                ]
            },
            400,
            "input 'image': its data are not FP32 values",
        ),
    ],
)
async def test_bad_requests_say_what_was_wrong(cnn, body, status, error):
    async with client_of(cnn) as client:
        if isinstance(body, dict):
            r = await client.post(INFER, json=body)
        else:
            r = await client.post(INFER, content=body)
        assert r.status_code == status
        assert r.json()["error"].startswith(error), r.json()


async def test_unknown_models_routes_methods_and_large_bodies(cnn_file):
    server = ModelServer(load(cnn_file, "onnx"), name="cnn", version="3", max_body_bytes=1000)
    async with client_of(server) as client:
        r = await client.post("/v2/models/resnet/infer", json={})
        assert (r.status_code, r.json()["error"]) == (
            404,
            "unknown model 'resnet': this server serves 'cnn'",
        )
        r = await client.get("/v2/models/cnn/versions/9")
        assert r.status_code == 404 and "unknown version '9' of 'cnn'" in r.json()["error"]
        assert (await client.get(INFER)).status_code == 405
        assert (await client.get("/nothing")).status_code == 404
        r = await client.post(INFER, json=v2_body(images(1)))
        assert r.status_code == 413 and "over this server's limit of 1000" in r.json()["error"]
        outputs = {"outputs": [{"name": "logits"}]}
        server.max_body_bytes = 1 << 20
        r = await client.post(INFER, json=v2_body(images(1), **outputs))
        assert r.status_code == 400 and "unknown output 'logits'" in r.json()["error"]
    server.batcher.close()


async def test_requests_that_arrive_together_run_as_one_batch(tmp_path):
    model = make_predictor(tmp_path / "doubler", slow=0.05)
    server = ModelServer(load(model, "python"), name="doubler", max_batch=8)
    async with client_of(server) as client:
        # a lone request runs at once, in a batch of its own
        alone = await client.post("/predict", json={"x": [1.0, 2.0]})
        assert alone.json() == {"y": [2.0, 4.0], "rows": 1}

        async def ask(i: int) -> httpx.Response:
            return await client.post("/predict", json={"x": [float(i), 1.0]})

        answers = await asyncio.gather(*(ask(i) for i in range(20)))
    assert all(r.status_code == 200 for r in answers)
    assert [r.json()["y"][0] for r in answers] == [2.0 * i for i in range(20)]  # in order
    sizes = [r.json()["rows"] for r in answers]
    assert max(sizes) == 8 and sum(1 for s in sizes if s > 1) >= 16, sizes
    exposition = server.metrics.exposition().decode()
    assert 'workbench_requests_total{code="200",route="predict"} 21.0' in exposition
    assert "workbench_batch_size_bucket" in exposition
    server.batcher.close()


async def test_a_full_queue_refuses_with_503_and_a_failing_model_with_500(tmp_path):
    model = make_predictor(tmp_path / "slow", slow=0.2)
    server = ModelServer(load(model, "python"), name="slow", max_batch=1, max_queue=2)
    async with client_of(server) as client:
        answers = await asyncio.gather(
            *(client.post("/predict", json={"x": [1.0, 1.0]}) for _ in range(8))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes.count(200) >= 2 and 503 in codes, codes
        refused = next(r for r in answers if r.status_code == 503)
        assert "at capacity (2 requests queued); retry shortly" in refused.json()["error"]
        failing = await client.post("/predict", json={"x": [-1.0, 1.0]})
        assert failing.status_code == 500
        assert "ValueError: negative values are refused" in failing.json()["error"]
        assert (await client.post("/predict", json={"x": [1.0, 1.0]})).status_code == 200
    assert "workbench_rejected_total" in server.metrics.exposition().decode()
    server.batcher.close()


async def test_a_request_the_model_fails_on_fails_alone_in_its_batch(tmp_path):
    """The predictor raises on a batch with one bad row: that request gets its 500, the
    others of the batch run again alone and are answered."""
    model = make_predictor(tmp_path / "doubler", slow=0.05)
    server = ModelServer(load(model, "python"), name="doubler", max_batch=8)
    async with client_of(server) as client:
        values = [1.0, 2.0, -1.0, 3.0, 4.0, 5.0]
        answers = await asyncio.gather(
            *(client.post("/predict", json={"x": [v, 1.0]}) for v in values)
        )
    assert [r.status_code for r in answers] == [200, 200, 500, 200, 200, 200]
    assert [r.json()["y"][0] for r in answers if r.status_code == 200] == [2, 4, 6, 8, 10]
    server.close()


#: an inference image's predictor: its own signature (an input with a default), a 400 for
#: what it cannot take, a JSON value per sample as its output
ECHO = """
from workbench.serving.runtimes import BadInput


class Predictor:
    def __init__(self, model_dir):
        self.signature = {
            "inputs": [
                {"name": "word", "dtype": "string", "shape": [-1]},
                {"name": "times", "dtype": "int64", "shape": [-1], "default": 2},
            ],
            "outputs": [{"name": "said", "dtype": "string", "shape": [-1]}],
        }

    def predict(self, inputs):
        words = [w.decode() for w in inputs["word"]]
        if "" in words:
            raise BadInput("send a word")
        times = inputs["times"].tolist()
        return {"said": [{"word": w, "echo": [w] * n} for w, n in zip(words, times)]}
"""


async def test_a_predictor_apart_from_its_model_says_its_inputs_and_refuses_with_400(tmp_path):
    code, model = tmp_path / "app" / "predict.py", tmp_path / "model"
    code.parent.mkdir()
    code.write_text(ECHO)
    model.mkdir()
    (model / "signature.json").write_text(json.dumps({"inputs": [], "outputs": []}))  # not read
    server = ModelServer(load(model, "python", predictor=code), name="echo", max_batch=8)
    async with client_of(server) as client:
        metadata = (await client.get("/v2/models/echo")).json()
        assert [i["name"] for i in metadata["inputs"]] == ["word", "times"]
        r = await client.post("/predict", json={"word": "hi"})
        assert r.json() == {"said": {"word": "hi", "echo": ["hi", "hi"]}}
        r = await client.post("/predict", json={"word": "hi", "times": 3})
        assert r.json()["said"]["echo"] == ["hi"] * 3
        r = await client.post("/predict", json={"times": 3})
        assert r.status_code == 400 and r.json()["error"].endswith("missing: word")
        answers = await asyncio.gather(
            *(client.post("/predict", json={"word": w}) for w in ("a", "", "b"))
        )
        assert [r.status_code for r in answers] == [200, 400, 200]
        assert answers[1].json() == {"error": "send a word"}
        body = {
            "inputs": [
                {"name": "word", "shape": [1], "datatype": "BYTES", "data": ["yo"]},
                {"name": "times", "shape": [1], "datatype": "INT64", "data": [1]},
            ]
        }
        (said,) = (await client.post("/v2/models/echo/infer", json=body)).json()["outputs"]
        assert said["datatype"] == "BYTES"
        assert json.loads(said["data"][0]) == {"word": "yo", "echo": ["yo"]}
    server.close()
    with pytest.raises(ModelLoadError, match="for the python runtime, not onnx"):
        load(model, "onnx", predictor=code)
    with pytest.raises(ModelLoadError, match="is not a file"):
        load(model, "python", predictor=tmp_path / "missing.py")


def test_a_model_that_cannot_be_served_says_why(tmp_path):
    with pytest.raises(ModelLoadError, match="holds no onnx model"):
        load(tmp_path, "onnx")
    make_predictor(tmp_path / "p")
    (tmp_path / "p" / "signature.json").unlink()
    with pytest.raises(ModelLoadError, match=r"there is no signature\.json beside it"):
        load(tmp_path / "p", "python")
    with pytest.raises(ModelLoadError, match="no runtime 'caffe'"):
        load(tmp_path, "caffe")


async def test_a_scikit_learn_model_is_served_by_its_runtime(tmp_path):
    """The sklearn runtime: a joblib pipeline with its signature; labels and probabilities
    come back by the V2 route and the simple route."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 4)).astype(np.float32)
    fitted = LogisticRegression().fit(x, (x[:, 0] > 0).astype(np.int64))
    folder = tmp_path / "sk"
    folder.mkdir()
    joblib.dump(fitted, folder / "model.joblib")
    signature = {
        "inputs": [{"name": "features", "dtype": "float32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [-1]},
            {"name": "probabilities", "dtype": "float32", "shape": [-1, 2]},
        ],
    }
    (folder / "signature.json").write_text(json.dumps(signature))
    server = ModelServer(load(folder, "sklearn"), name="churn")
    async with client_of(server) as client:
        tensor = {"name": "features", "shape": [3, 4], "datatype": "FP32"}
        r = await client.post(
            "/v2/models/churn/infer", json={"inputs": [{**tensor, "data": x[:3].ravel().tolist()}]}
        )
        assert r.status_code == 200, r.text
        outputs = {o["name"]: o for o in r.json()["outputs"]}
        assert outputs["label"]["data"] == fitted.predict(x[:3]).tolist()
        np.testing.assert_allclose(
            np.array(outputs["probabilities"]["data"]).reshape(3, 2),
            fitted.predict_proba(x[:3]),
            rtol=1e-5,
        )
        one = await client.post("/predict", json={"features": x[0].tolist()})
        assert one.json()["label"] == int(fitted.predict(x[:1])[0])
    server.batcher.close()
