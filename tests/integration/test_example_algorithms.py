"""The three preset algorithms of examples/algorithms on the real Docker Engine, run the way
the Workbench runs them (docs/contracts.md).

For each one: build the training and inference images FROM the environment image (the
``WORKBENCH_ENV_IMAGE`` build argument), unpack the example dataset's archives into a
dataset folder (``train/``, ``test/``, ``dataset.json``), run the training image as uid 1000
with 2 CPUs and 2 GB and the declared parameters' defaults, check the model, the metrics and
the evaluation (digits above 0.9 accuracy, among others), then serve the model from the
inference image (the model server on the algorithm's Python predictor) and call ``/health``
and ``/predict``, one request at a time and several at once (batched, a bad one among
them refused alone). Every container and image made here is removed afterwards; the logs
of the runs are printed when a test fails, the timings always (``-s`` shows them).

About two minutes on 2 cores once the environment images exist (the fixtures build them:
about a minute for python, two for pytorch, when cold).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cleanup import SESSION, SUITE_LABEL
from tests.conftest import FAILED, make_datasets
from tests.docker_fixtures import REPO
from workbench.algorithms.params import ImageSettings, resolve_parameters
from workbench.backends.base import Limits, Mount, RunSpec, RunState
from workbench.backends.docker import DockerBackend
from workbench.datasets.archives import dataset_root, extract_archive
from workbench.datasets.formats import inspect_dataset
from workbench.datasets.types import ArchiveLimits
from workbench.enums import DatasetFormat, Purpose
from workbench.environments.builder import HASH_VARIABLE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ALGORITHMS = REPO / "examples" / "algorithms"
LABELS = {SUITE_LABEL: SESSION}  # removed at the session's end whatever happens
LIMITS = Limits(cpus=2, memory_mb=2048)
USER = "1000:1000"
TRAIN_TIMEOUT_S = 600
READY_TIMEOUT_S = 60
PORT = 8080


md = make_datasets()


def algorithm(name: str) -> dict[str, Any]:
    return json.loads((ALGORITHMS / name / "algorithm.json").read_text())


def api_example(name: str, param: str) -> Any:
    params = algorithm(name)["predict"]["api_spec"]["params"]
    return next(p["example"] for p in params if p["name"] == param)


def accuracy(evaluation: dict[str, Any]) -> float:
    matrix = evaluation["confusion_matrix"]
    return sum(matrix[i][i] for i in range(len(matrix))) / sum(map(sum, matrix))


def iou(a: list[float], b: list[float]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


# --- datasets ---------------------------------------------------------------------------------


def prepare_dataset(
    made: Any, dest: Path, fmt: DatasetFormat, purpose: Purpose, *, single_text: bool = False
) -> Path:
    """The dataset folder a training run mounts: the archives unpacked (wrapper folder
    dropped) as ``train/`` and ``test/``, each checked by the Workbench's validator, and
    ``dataset.json``. ``single_text`` turns a ``dir`` text dataset into one ``data.txt`` per
    split (``<label>\\t<text>`` lines, whitespace collapsed)."""
    dataset = dest / "dataset"
    dataset.mkdir(parents=True)
    samples: dict[str, int] = {}
    classes: list[str] = []
    for split, archive in (("train", made.train), ("test", made.test)):
        unpacked = dest / f"unpacked-{split}"
        extract_archive(archive, unpacked, ArchiveLimits())
        root, target = dataset_root(unpacked), dataset / split
        if single_text:
            target.mkdir()
            lines = [
                f"{folder.name}\t{' '.join(path.read_text().split())}"
                for folder in sorted(root.iterdir())
                for path in sorted(folder.iterdir())
            ]
            (target / "data.txt").write_text("\n".join(lines) + "\n")
        else:
            root.rename(target)
        inspection = inspect_dataset(target, fmt, purpose)
        assert inspection.report.ok and inspection.statistics, inspection.report.errors
        samples[split] = inspection.statistics.samples
        classes = sorted(set(classes) | set(inspection.statistics.classes))
    description = {
        "name": made.name,
        "format": fmt.value,
        "split_mode": "independent",
        "classes": classes,
        "samples": samples,
    }
    (dataset / "dataset.json").write_text(json.dumps(description) + "\n")
    return dataset


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


# --- running them -----------------------------------------------------------------------------


@dataclass
class Trained:
    exit_code: int | None
    logs: list[str]
    output: Path
    seconds: float

    @property
    def model(self) -> Path:
        return self.output / "model"

    def files(self) -> list[str]:
        return sorted(p.name for p in self.model.iterdir())

    def metrics(self) -> list[dict[str, Any]]:
        text = (self.output / "metrics.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]

    def evaluation(self) -> dict[str, Any]:
        return json.loads((self.output / "evaluation.json").read_text())


@dataclass
class Served:
    run_id: str
    url: str
    ready_s: float


@dataclass
class Harness:
    """Builds and runs an algorithm's images; remembers what to remove."""

    backend: DockerBackend
    root: Path
    images: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def timed(self, what: str, started: float) -> float:
        seconds = time.monotonic() - started
        self.timings.append((what, seconds))
        return seconds

    def build(self, name: str, kind: str, env_image: str) -> str:
        tag = f"workbench/test-{name}-{kind}:{uuid.uuid4().hex[:8]}"
        self.images.append(tag)
        started = time.monotonic()
        for _line in self.backend.build_image(
            ALGORITHMS / name / kind, tag, build_args={"WORKBENCH_ENV_IMAGE": env_image}
        ):
            pass
        self.timed(f"build {name}/{kind}", started)
        info = self.backend.inspect_image(tag)
        if kind == "train":
            assert info.cmd == ("/opt/venv/bin/python", "/app/train.py")
        else:  # the model server on the image's Python predictor
            assert info.cmd[:3] == ("/opt/venv/bin/python", "-m", "workbench.serving")
            assert "/app/predict.py" in info.cmd
        # built FROM the environment image given, not the Dockerfile's default
        env_hash = self.backend.inspect_image(env_image).env[HASH_VARIABLE]
        assert info.env[HASH_VARIABLE] == env_hash
        return tag

    def train(
        self,
        name: str,
        image: str,
        dataset: Path,
        fmt: DatasetFormat,
        parameters: dict[str, Any] | None = None,
        base_model: Path | None = None,
    ) -> Trained:
        output = self.root / f"output-{len(self.runs)}"
        output.mkdir()
        output.chmod(0o777)  # the run is uid 1000, without any capability
        settings = ImageSettings.model_validate(algorithm(name)["train"])
        mounts = [
            Mount(dataset, "/workbench/dataset", read_only=True),
            Mount(output, "/workbench/output"),
        ]
        if base_model is not None:
            mounts.append(Mount(base_model, "/workbench/base_model", read_only=True))
        env = {
            "DATASET_DIR": "/workbench/dataset",
            "DATASET_FORMAT": fmt.value,
            "MODEL_DIR": "/workbench/output/model",
            "METRICS_FILE": "/workbench/output/metrics.jsonl",
            "EVALUATION_FILE": "/workbench/output/evaluation.json",
            "BASE_MODEL_DIR": "/workbench/base_model" if base_model else "",
            **resolve_parameters(settings.env, parameters or {}),
        }
        started = time.monotonic()
        info = self.backend.run(
            RunSpec(
                name=f"wb-example-{name}-train-{uuid.uuid4().hex[:8]}",
                image=image,
                env=env,
                mounts=tuple(mounts),
                limits=LIMITS,
                labels=LABELS,
                user=USER,
            )
        )
        self.runs.append(info.id)
        while info.state is not RunState.EXITED:
            assert time.monotonic() - started < TRAIN_TIMEOUT_S, f"{name} still training"
            time.sleep(0.5)
            info = self.backend.status(info.id)
        seconds = self.timed(f"train {name} {parameters or ''}".strip(), started)
        logs = list(self.backend.logs(info.id))
        print(f"\n--- {name} training ({seconds:.1f} s):\n" + "\n".join(logs[-6:]))
        return Trained(info.exit_code, logs, output, seconds)

    def serve(self, name: str, image: str, model: Path) -> Served:
        started = time.monotonic()
        info = self.backend.run(
            RunSpec(
                name=f"wb-example-{name}-predict-{uuid.uuid4().hex[:8]}",
                image=image,
                env={"PORT": str(PORT), "MODEL_DIR": "/workbench/model"},
                mounts=(Mount(model, "/workbench/model", read_only=True),),
                ports={PORT: 0},
                limits=LIMITS,
                labels=LABELS,
                user=USER,
            )
        )
        self.runs.append(info.id)
        url = f"http://127.0.0.1:{info.ports[PORT]}"
        while True:
            assert time.monotonic() - started < READY_TIMEOUT_S, f"{name} never became healthy"
            assert self.backend.status(info.id).state is RunState.RUNNING, f"{name} exited"
            try:
                r = httpx.get(f"{url}/health", timeout=2)
                if r.status_code == 200:
                    assert r.json() == {"status": "ok"}
                    break
                assert r.status_code == 503, r.text
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        return Served(info.id, url, self.timed(f"serve {name} until healthy", started))

    def stop(self, served: Served) -> None:
        """SIGTERM: the server exits promptly, and cleanly."""
        started = time.monotonic()
        info = self.backend.stop(served.run_id, timeout=10)
        seconds = self.timed("stop (SIGTERM)", started)
        assert info.state is RunState.EXITED
        assert info.exit_code == 0 and seconds < 5, (info.exit_code, seconds)

    def report(self) -> str:
        return ", ".join(f"{what}: {seconds:.1f} s" for what, seconds in self.timings)


@pytest.fixture
def harness(request, docker_backend: DockerBackend, tmp_path: Path) -> Iterator[Harness]:
    made = Harness(docker_backend, tmp_path)
    yield made
    print(f"\ntimings: {made.report()}")
    failed = request.node.stash.get(FAILED, False)
    for run_id in made.runs:
        if failed:
            print(f"--- logs of {run_id[:12]}:")
            print("\n".join(docker_backend.logs(run_id, tail=40)))
        docker_backend.remove(run_id)
    for tag in made.images:
        docker_backend.remove_image(tag)
    assert not {run.id for run in docker_backend.list(LABELS)} & set(made.runs)


def post(served: Served, body: Any) -> httpx.Response:
    return httpx.post(f"{served.url}/predict", json=body, timeout=30)


# --- the algorithms -----------------------------------------------------------------------------


def test_text_bayes_trains_on_single_text_and_serves(harness, python_env_image, archives):
    train_image = harness.build("text-bayes", "train", python_env_image)
    predict_image = harness.build("text-bayes", "predict", python_env_image)
    dataset = prepare_dataset(
        md.make_texts(archives),
        harness.root,
        DatasetFormat.SINGLE_TEXT,
        Purpose.TEXT,
        single_text=True,
    )

    trained = harness.train("text-bayes", train_image, dataset, DatasetFormat.SINGLE_TEXT)

    assert trained.exit_code == 0
    assert trained.files() == ["model.joblib", "model.json", "samples.npz", "signature.json"]
    metrics = trained.metrics()
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5]
    assert metrics[-1]["test_accuracy"] > metrics[0]["test_accuracy"]
    evaluation = trained.evaluation()
    assert evaluation["labels"] == sorted(md.TEXT_TOPICS)
    text_accuracy = accuracy(evaluation)
    print(f"text-bayes test accuracy: {text_accuracy:.4f}")
    assert text_accuracy > 0.85
    assert text_accuracy == pytest.approx(metrics[-1]["test_accuracy"], abs=1e-3)

    served = harness.serve("text-bayes", predict_image, trained.model)
    r = post(served, {"text": api_example("text-bayes", "text")})
    assert r.status_code == 200
    answer = r.json()
    assert answer["label"] == "logging"
    assert set(answer["scores"]) == set(md.TEXT_TOPICS)
    assert max(answer["scores"], key=answer["scores"].get) == "logging"
    assert post(served, {"text": ""}).status_code == 400
    assert post(served, {"image": "x"}).json()["error"]
    harness.stop(served)


def test_image_cnn_trains_on_digits_serves_and_transfers(harness, pytorch_env_image, archives):
    train_image = harness.build("image-cnn", "train", pytorch_env_image)
    predict_image = harness.build("image-cnn", "predict", pytorch_env_image)
    dataset = prepare_dataset(
        md.make_digits(archives), harness.root, DatasetFormat.DIR, Purpose.IMAGE
    )

    trained = harness.train("image-cnn", train_image, dataset, DatasetFormat.DIR)

    assert trained.exit_code == 0
    assert trained.files() == [
        "labels.json",
        "model.pt",
        "preprocess.json",
        "samples.npz",
        "signature.json",
    ]
    metrics = trained.metrics()
    epochs = algorithm("image-cnn")["train"]["env"]["EPOCHS"]["default"]
    assert [m["epoch"] for m in metrics] == list(range(1, epochs + 1))
    assert {"loss", "train_accuracy", "test_accuracy"} <= set(metrics[0])
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    evaluation = trained.evaluation()
    assert evaluation["labels"] == [str(d) for d in range(10)]
    digits_accuracy = accuracy(evaluation)
    print(f"image-cnn test accuracy: {digits_accuracy:.4f} in {trained.seconds:.1f} s")
    assert digits_accuracy > 0.9

    # transfer training: one epoch from the trained weights beats one epoch from scratch
    again = harness.train(
        "image-cnn",
        train_image,
        dataset,
        DatasetFormat.DIR,
        parameters={"EPOCHS": 1},
        base_model=trained.model,
    )
    assert again.exit_code == 0
    assert any(re.match(r"transfer: (\d+) of \1 tensors", line) for line in again.logs)
    transfer_accuracy = accuracy(again.evaluation())
    print(f"image-cnn after 1 epoch from the trained model: {transfer_accuracy:.4f}")
    assert transfer_accuracy > 0.9

    served = harness.serve("image-cnn", predict_image, trained.model)
    r = post(served, {"image": api_example("image-cnn", "image")})
    assert r.status_code == 200
    answer = r.json()
    assert answer["label"] == "7"
    assert set(answer["scores"]) == {str(d) for d in range(10)}
    assert sum(answer["scores"].values()) == pytest.approx(1, abs=0.01)
    test_dir = dataset / "test"
    bodies: list[dict[str, str]] = []
    for digit in range(10):
        sample = sorted((test_dir / str(digit)).iterdir())[0]
        png = base64.b64encode(sample.read_bytes()).decode()
        bodies.append({"image": f"data:image/png;base64,{png}"} if digit % 2 else {"image": png})
    # all at once (the server batches them), a bad one among them: refused alone
    with ThreadPoolExecutor(len(bodies) + 1) as pool:
        *answers, bad = pool.map(partial(post, served), [*bodies, {"image": "not base64!"}])
    assert [r.status_code for r in answers] == [200] * 10 and bad.status_code == 400
    right = sum(r.json()["label"] == str(digit) for digit, r in enumerate(answers))
    assert right >= 9
    for bad in ({"image": "not base64!"}, {"image": base64.b64encode(b"text").decode()}, {}):
        r = post(served, bad)
        assert r.status_code == 400 and r.json()["error"]
    harness.stop(served)


def test_shapes_detector_trains_on_shapes_and_serves(harness, pytorch_env_image, archives):
    train_image = harness.build("shapes-detector", "train", pytorch_env_image)
    predict_image = harness.build("shapes-detector", "predict", pytorch_env_image)
    dataset = prepare_dataset(
        md.make_shapes(archives), harness.root, DatasetFormat.JSON, Purpose.IMAGE
    )

    trained = harness.train("shapes-detector", train_image, dataset, DatasetFormat.JSON)

    assert trained.exit_code == 0
    assert trained.files() == ["labels.json", "model.pt", "preprocess.json"]
    metrics = trained.metrics()
    epochs = algorithm("shapes-detector")["train"]["env"]["EPOCHS"]["default"]
    assert [m["epoch"] for m in metrics] == list(range(1, epochs + 1))
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    evaluation = trained.evaluation()
    assert evaluation["labels"] == list(md.SHAPES)
    scores = evaluation["metrics"]
    assert set(scores) == {"precision", "recall", "f1", "map50"}
    print(f"shapes-detector test {scores} in {trained.seconds:.1f} s")
    assert scores["map50"] > 0.8 and scores["recall"] > 0.8 and scores["precision"] > 0.8
    assert len(evaluation["confusion_matrix"]) == 3
    assert accuracy(evaluation) > 0.9  # the category of the boxes found where shapes are

    served = harness.serve("shapes-detector", predict_image, trained.model)
    r = post(served, {"image": api_example("shapes-detector", "image")})
    assert r.status_code == 200
    boxes = r.json()["boxes"]
    # the example holds a square at (8, 10) and a circle at (36, 34)
    expected = [("square", [8, 10, 20, 20]), ("circle", [36, 34, 22, 22])]
    for label, box in expected:
        assert any(b["label"] == label and iou(b["box"], box) > 0.5 for b in boxes), boxes
    assert all(set(b) == {"label", "score", "box"} and len(b["box"]) == 4 for b in boxes)
    scores_sent = [b["score"] for b in boxes]
    assert scores_sent == sorted(scores_sent, reverse=True)
    assert all(s >= 0.3 for s in scores_sent)
    more = post(served, {"image": api_example("shapes-detector", "image"), "score_threshold": 0})
    assert len(more.json()["boxes"]) > len(boxes)

    annotations = json.loads((dataset / "test" / "annotations.json").read_text())
    truth = [a for a in annotations["annotations"] if a["image_id"] == 1]
    png = (dataset / "test" / "images" / "0001.png").read_bytes()
    found = post(served, {"image": base64.b64encode(png).decode()}).json()["boxes"]
    for shape in truth:
        label = md.SHAPES[shape["category_id"] - 1]
        assert any(b["label"] == label and iou(b["box"], shape["bbox"]) > 0.5 for b in found)
    for bad in (
        {"image": "???"},
        {"image": api_example("image-cnn", "image"), "score_threshold": "x"},
    ):
        r = post(served, bad)
        assert r.status_code == 400 and r.json()["error"]
    harness.stop(served)
