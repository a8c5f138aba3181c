"""The preset algorithms under examples/algorithms: their algorithm.json validates as the
Workbench's ImageSettings, their Dockerfiles start from the environment build argument, the
declared parameters are the scripts' own, each predict.py is a Python predictor for the model
server (no HTTP server of its own), and the scikit-learn one (which runs on this machine's
Python) trains and serves by the contract."""

from __future__ import annotations

import ast
import asyncio
import base64
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from tests.serving.test_model_server import client_of
from workbench.algorithms.params import ImageSettings, parse_value, resolve_parameters
from workbench.datasets.types import FORMATS_FOR
from workbench.enums import Purpose, SubPurpose
from workbench.serving import runtimes
from workbench.serving.__main__ import parse
from workbench.serving.app import ModelServer

ALGORITHMS = Path(__file__).resolve().parents[2] / "examples" / "algorithms"
NAMES = ("text-bayes", "image-cnn", "shapes-detector")
ENV_IMAGES = {
    "text-bayes": "workbench/env-python:latest",
    "image-cnn": "workbench/env-pytorch:latest",
    "shapes-detector": "workbench/env-pytorch:latest",
}


def image_command(name: str, kind: str) -> list[str]:
    """Each image's command: the training script; the model server on the predictor."""
    if kind == "train":
        return ["/opt/venv/bin/python", "/app/train.py"]
    return [
        *("/opt/venv/bin/python", "-m", "workbench.serving", "--runtime", "python"),
        *("--predictor", "/app/predict.py", "--name", name),
    ]


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
    assert lines[-1] == f"CMD {json.dumps(image_command(name, kind))}"
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


# --- the inference images: the model server's Python predictor ------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_predict_py_is_a_predictor_for_the_model_server(name, monkeypatch):
    """No HTTP server of its own: a ``Predictor(model_dir)`` with ``predict(inputs)``
    (docs/serving.md, the python runtime), which the image's command serves with the
    model server, taking the model from ``$MODEL_DIR`` and the port from ``$PORT``."""
    path = ALGORITHMS / name / "predict" / "predict.py"
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {"http.server", "socketserver", "wsgiref.simple_server"} & imported
    # its BadInput (its own, or raised by workbench.serving.pictures): a 400, not a 500
    assert {"workbench.serving.runtimes", "workbench.serving.pictures"} & imported
    (predictor,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Predictor"]
    methods = {n.name: n for n in predictor.body if isinstance(n, ast.FunctionDef)}
    assert [a.arg for a in methods["__init__"].args.args] == ["self", "model_dir"]
    assert [a.arg for a in methods["predict"].args.args] == ["self", "inputs"]
    assert not any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)

    monkeypatch.setenv("MODEL_DIR", "/workbench/model")
    monkeypatch.setenv("PORT", "8080")
    args = parse(image_command(name, "predict")[3:])
    assert (args.model, args.port, args.runtime) == (Path("/workbench/model"), 8080, "python")
    assert (args.predictor, args.name) == (Path("/app/predict.py"), name)


def test_the_model_server_needs_a_model_from_its_argument_or_model_dir(monkeypatch, capsys):
    monkeypatch.delenv("MODEL_DIR", raising=False)
    with pytest.raises(SystemExit):
        parse(["--runtime", "python"])
    assert "give the model (a file or folder), or set MODEL_DIR" in capsys.readouterr().err


@pytest.fixture
def text_model(text_train, tmp_path, monkeypatch) -> Path:
    """A text-bayes model trained on TEXTS."""
    write_single_text(tmp_path / "dataset" / "train")
    write_single_text(tmp_path / "dataset" / "test")
    monkeypatch.setenv("DATASET_DIR", str(tmp_path / "dataset"))
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("METRICS_FILE", str(tmp_path / "metrics.jsonl"))
    monkeypatch.setenv("EVALUATION_FILE", str(tmp_path / "evaluation.json"))
    assert text_train.main() == 0
    return tmp_path / "model"


async def test_text_bayes_serves_by_the_contract(text_model):
    """text-bayes/predict/predict.py served as its image serves it: the model server's
    python runtime on the predictor file, the model's folder apart."""
    predictor = ALGORITHMS / "text-bayes" / "predict" / "predict.py"
    server = ModelServer(
        runtimes.load(text_model, "python", predictor=predictor), name="text-bayes"
    )
    async with client_of(server) as client:
        r = await client.get("/health")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        r = await client.post("/predict", json={"text": "the goalkeeper scored a goal"})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        answer = r.json()
        assert answer["label"] == "sport"
        assert set(answer["scores"]) == {"sport", "politics"}
        assert answer["scores"]["sport"] > answer["scores"]["politics"]
        assert abs(sum(answer["scores"].values()) - 1) < 0.01
        for body in ({"text": ""}, {"text": 3}, {}, [1], {"text": "a", "image": "b"}):
            r = await client.post("/predict", json=body)
            assert r.status_code == 400 and r.json()["error"], body
        r = await client.post("/predict", json={"text": " "})
        assert r.json() == {"error": '"text" must be a non-empty string'}
        r = await client.post("/predict", content=b"{not json")
        assert r.status_code == 400 and "not JSON" in r.json()["error"]
        assert (await client.post("/other", json={"text": "x"})).status_code == 404
        assert (await client.get("/predict")).status_code == 405

        # texts that arrive together run as one batch; a bad one fails alone
        texts = ["the striker scored", "", "parliament passed the budget", "the coach"]
        answers = await asyncio.gather(*(client.post("/predict", json={"text": t}) for t in texts))
        assert [r.status_code for r in answers] == [200, 400, 200, 200]
        assert [answers[i].json()["label"] for i in (0, 2)] == ["sport", "politics"]
        # and by the V2 route, the scores as their JSON
        body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["vote"]}]}
        r = await client.post("/v2/models/text-bayes/infer", json=body)
        label, scores = r.json()["outputs"]
        assert label["data"] == ["politics"] and set(json.loads(scores["data"][0])) == set(TEXTS)
    server.close()
