"""The preset algorithms under examples/algorithms: their algorithm.json validates as the
Workbench's ImageSettings, their Dockerfiles start from the environment build argument, the
declared parameters are the scripts' own, and the scikit-learn one (which runs on this
machine's Python) trains and serves by the contract."""

from __future__ import annotations

import ast
import base64
import importlib.util
import io
import json
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest
from PIL import Image

from workbench.algorithms.params import ImageSettings, parse_value, resolve_parameters
from workbench.datasets.types import FORMATS_FOR
from workbench.enums import Purpose, SubPurpose

ALGORITHMS = Path(__file__).resolve().parents[2] / "examples" / "algorithms"
NAMES = ("text-bayes", "image-cnn", "shapes-detector")
ENV_IMAGES = {
    "text-bayes": "workbench/env-python:latest",
    "image-cnn": "workbench/env-pytorch:latest",
    "shapes-detector": "workbench/env-pytorch:latest",
}
#: the helpers the training scripts read their parameters with
ENV_READERS = {"env_int": "int", "env_float": "float", "env_bool": "bool", "env_str": "str"}


def load(name: str) -> dict:
    return json.loads((ALGORITHMS / name / "algorithm.json").read_text())


def load_script(path: Path) -> ModuleType:
    """Import a script by path (examples/ is not a package)."""
    name = "example_" + "_".join(path.relative_to(ALGORITHMS).with_suffix("").parts)
    name = name.replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def declared_in_script(path: Path) -> dict[str, tuple[str, object]]:
    """``env_int("EPOCHS", 15)`` and the like in a script: name -> (type, default)."""
    found: dict[str, tuple[str, object]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ENV_READERS
            and len(node.args) == 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[1], ast.Constant)
        ):
            found[node.args[0].value] = (ENV_READERS[node.func.id], node.args[1].value)
    return found


def test_the_readme_lists_the_three_algorithms():
    folders = sorted(p.name for p in ALGORITHMS.iterdir() if p.is_dir())
    assert folders == sorted(NAMES)
    readme = (ALGORITHMS / "README.md").read_text()
    for name in NAMES:
        assert f"[`{name}`]({name}/)" in readme


@pytest.mark.parametrize("name", NAMES)
def test_algorithm_json_validates_as_image_settings(name):
    doc = load(name)
    assert set(doc) == {"name", "description", "purpose", "sub_purpose", "train", "predict"}
    assert doc["name"] == name
    assert len(doc["description"]) > 40
    assert (Purpose(doc["purpose"]), SubPurpose(doc["sub_purpose"])) in FORMATS_FOR
    train = ImageSettings.model_validate(doc["train"])
    predict = ImageSettings.model_validate(doc["predict"])
    # the images' own CMD runs them
    assert train.command == train.args == predict.command == predict.args == []
    assert train.device == predict.device == "cpu"
    assert train.api_spec is None
    assert predict.api_spec is not None
    assert (predict.api_spec.route, predict.api_spec.method) == ("/predict", "POST")
    required = [p for p in predict.api_spec.params if p.required]
    assert required and all(p.type == "string" and p.example for p in required)
    assert all(spec.description and spec.default is not None for spec in train.env.values())
    # every parameter has a usable default: a run with no values gets all of them
    assert set(resolve_parameters(train.env, {})) == set(train.env)


@pytest.mark.parametrize("name", NAMES)
def test_declared_parameters_are_the_scripts_own(name):
    declared = ImageSettings.model_validate(load(name)["train"]).env
    in_script = declared_in_script(ALGORITHMS / name / "train" / "train.py")
    assert set(in_script) == set(declared)
    for parameter, (kind, default) in in_script.items():
        assert declared[parameter].type == kind, parameter
        assert declared[parameter].default == parse_value(kind, default), parameter


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["train", "predict"])
def test_dockerfiles_build_from_the_environment_argument(name, kind):
    folder = ALGORITHMS / name / kind
    lines = [
        line.strip()
        for line in (folder / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == f"ARG WORKBENCH_ENV_IMAGE={ENV_IMAGES[name]}"
    assert lines[1] == "FROM ${WORKBENCH_ENV_IMAGE}"
    assert f"COPY {kind}.py /app/{kind}.py" in lines
    assert lines[-1] == f'CMD ["/opt/venv/bin/python", "/app/{kind}.py"]'
    assert not any(line.startswith("RUN") for line in lines), "builds must work offline"
    files = sorted(p.name for p in folder.iterdir() if p.name != "__pycache__")
    assert files == ["Dockerfile", f"{kind}.py"]
    if kind == "predict":
        assert "EXPOSE 8080" in lines


@pytest.mark.parametrize("name", NAMES)
def test_each_readme_says_how_to_build(name):
    readme = (ALGORITHMS / name / "README.md").read_text()
    for kind in ("train", "predict"):
        assert f"examples/algorithms/{name}/{kind}/" in readme
    assert "--build-arg WORKBENCH_ENV_IMAGE=" in readme


def test_the_image_examples_are_images():
    cnn = load("image-cnn")["predict"]["api_spec"]["params"][0]["example"]
    with Image.open(io.BytesIO(base64.b64decode(cnn))) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (32, 32), "L")
    shapes = load("shapes-detector")["predict"]["api_spec"]["params"][0]["example"]
    with Image.open(io.BytesIO(base64.b64decode(shapes))) as image:
        assert (image.format, image.size) == ("PNG", (64, 64))


# --- text-bayes on this machine's scikit-learn --------------------------------------------

TEXTS = {
    "sport": [
        "the goalkeeper saved a penalty in the final minute",
        "the striker scored twice and the team won the cup",
        "a late goal gave the home side the league title",
        "the coach praised the defence after the match",
    ],
    "politics": [
        "parliament passed the budget after a long debate",
        "the minister resigned over the election scandal",
        "voters elected a new mayor in the city council vote",
        "the senate debated the new tax law on tuesday",
    ],
}


def write_single_text(folder: Path) -> None:
    folder.mkdir(parents=True)
    lines = [f"{label}\t{text}" for label, texts in TEXTS.items() for text in texts]
    (folder / "data.tsv").write_text("\ufeff" + "\r\n".join(lines) + "\r\n\r\n")


def write_dir(folder: Path) -> None:
    for label, texts in TEXTS.items():
        (folder / label).mkdir(parents=True)
        for index, text in enumerate(texts):
            (folder / label / f"{index}.txt").write_text(text)
        (folder / label / ".hidden").write_text("ignored")


@pytest.fixture
def text_train() -> ModuleType:
    return load_script(ALGORITHMS / "text-bayes" / "train" / "train.py")


@pytest.mark.parametrize("fmt", ["single_text", "dir"])
def test_text_bayes_trains_by_the_contract(text_train, tmp_path, monkeypatch, fmt):
    data, output = tmp_path / "dataset", tmp_path / "output"
    for split in ("train", "test"):
        (write_single_text if fmt == "single_text" else write_dir)(data / split)
    env = {
        "DATASET_DIR": str(data),
        "DATASET_FORMAT": fmt,
        "MODEL_DIR": str(output / "model"),
        "METRICS_FILE": str(output / "metrics.jsonl"),
        "EVALUATION_FILE": str(output / "evaluation.json"),
        "BASE_MODEL_DIR": "",
        **resolve_parameters(ImageSettings.model_validate(load("text-bayes")["train"]).env, {}),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    assert text_train.main() == 0

    names = sorted(p.name for p in (output / "model").iterdir())
    assert names == ["model.joblib", "model.json", "samples.npz", "signature.json"]
    signature = json.loads((output / "model" / "signature.json").read_text())
    assert signature["inputs"][0]["dtype"] == "string" and signature["inputs"][0]["examples"]
    with np.load(output / "model" / "samples.npz", allow_pickle=False) as held_out:
        assert sorted(held_out.files) == ["labels", "text"]
        assert len(held_out["text"]) == len(held_out["labels"]) == 8  # the test split
        assert set(held_out["labels"]) == {"politics", "sport"}
    lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[-1]["train_samples"] == 8
    evaluation = json.loads((output / "evaluation.json").read_text())
    assert evaluation == {
        "labels": ["politics", "sport"],
        "confusion_matrix": [[4, 0], [0, 4]],
        "metrics": {},
    }


def test_text_bayes_refuses_an_unknown_format(text_train, tmp_path):
    write_dir(tmp_path / "train")
    with pytest.raises(SystemExit, match="brat_ann"):
        text_train.read_split(tmp_path / "train", "brat_ann")


@pytest.fixture
def text_server(text_train, tmp_path, monkeypatch) -> Iterator[str]:
    """text-bayes/predict serving a model trained on TEXTS, on a free local port."""
    write_single_text(tmp_path / "dataset" / "train")
    write_single_text(tmp_path / "dataset" / "test")
    monkeypatch.setenv("DATASET_DIR", str(tmp_path / "dataset"))
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    monkeypatch.setenv("EVALUATION_FILE", str(tmp_path / "evaluation.json"))
    assert text_train.main() == 0
    predict = load_script(ALGORITHMS / "text-bayes" / "predict" / "predict.py")
    handler = predict.make_handler(predict.Classifier(tmp_path / "model"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_text_bayes_serves_by_the_contract(text_server):
    with httpx.Client(base_url=text_server) as client:
        r = client.get("/health")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        r = client.post("/predict", json={"text": "the goalkeeper scored a goal"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        answer = r.json()
        assert answer["label"] == "sport"
        assert set(answer["scores"]) == {"sport", "politics"}
        assert answer["scores"]["sport"] > answer["scores"]["politics"]
        assert abs(sum(answer["scores"].values()) - 1) < 0.01
        for body in ({"text": ""}, {"text": 3}, {}, [1]):
            r = client.post("/predict", json=body)
            assert r.status_code == 400 and r.json()["error"]
        r = client.post("/predict", content=b"{not json")
        assert r.status_code == 400 and "not JSON" in r.json()["error"]
        assert client.post("/other", json={"text": "x"}).status_code == 404
        assert client.get("/predict").status_code == 404
