"""The three preset algorithms, the way a team gets them, on the real Docker Engine: an
admin registers them from examples/algorithms, copies each project into a workspace of the
matching environment, builds its training and inference images into the workspace's
docker_image/ and publishes them; then another user trains the text classifier and the
image classifier on the example datasets to evaluated model versions, and the inference
image serves the trained model."""

from __future__ import annotations

import base64
import importlib.util
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from tests.conftest import add_people, add_preset_environments, build_tar, make_workbench, task_log
from tests.services.test_builds import make_workspace
from workbench.backends.docker import DockerBackend
from workbench.config import TrainingLimits
from workbench.deployments.schemas import ServiceCreate
from workbench.errors import Conflict
from workbench.models.schemas import BenchmarkRequest, ConversionRequest
from workbench.registry.models import DatasetSplit
from workbench.services import Workbench
from workbench.training.schemas import TaskCreate
from workbench.users import Actor

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: preset algorithm -> the environment its Dockerfiles start from
ENVIRONMENT = {"text-bayes": "python", "image-cnn": "pytorch", "shapes-detector": "pytorch"}


@dataclass
class Team:
    wb: Workbench
    alice: Actor  # admin: publishes the presets
    bob: Actor  # member: trains with them
    algorithms: dict[str, int]
    datasets: dict[str, int]
    environments: dict[str, int]
    timings: dict[str, float]


def _load_examples_module() -> Any:
    sys.path.insert(0, str(EXAMPLES / "datasets"))
    try:
        spec = importlib.util.spec_from_file_location(
            "load_examples", EXAMPLES / "datasets" / "load_examples.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES / "datasets"))


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory,
    docker_backend: DockerBackend,
    python_env_image: str,
    pytorch_env_image: str,
) -> Iterator[Team]:
    home = tmp_path_factory.mktemp("presets")
    wb = make_workbench(
        home / "home",
        backend="docker",
        training=TrainingLimits(concurrency=1, cpus=2, memory_mb=4096),
    )
    wb.jobs.runner.interval = 0.5
    wb.start()
    people = add_people(wb)
    environments = add_preset_environments(
        wb, people.alice.id, {"python": python_env_image, "pytorch": pytorch_env_image}
    )
    loader = _load_examples_module()
    datasets = {}
    for make in (loader.make_digits, loader.make_texts):
        made = make(home / "archives")
        loader.register(wb, people.alice, made)
        datasets[made.name] = next(
            d.id for d in wb.datasets.list(people.alice) if d.name == made.name
        )
    presets = wb.algorithms.sync_presets(people.alice, EXAMPLES / "algorithms")
    team = Team(
        wb,
        people.alice,
        people.bob,
        {a.name: a.id for a in presets},
        datasets,
        environments,
        {},
    )
    try:
        yield team
    finally:
        for algo in wb.algorithms.list(people.alice):
            for kind in ("train", "predict"):
                ref = getattr(algo, kind).image_ref
                if ref:
                    docker_backend.remove_image(ref)
        wb.close()
        left = docker_backend.list({"workbench.managed": str(wb.settings.home)})
        for info in left:
            docker_backend.remove(info.id)
        assert left == [], "a container was left behind"


@pytest.fixture(scope="module")
def published(team: Team) -> dict[str, Any]:
    """Each preset published from a workspace's docker_image/ tars, as a modeler does it."""
    wb, alice = team.wb, team.alice
    result = {}
    for name, env in ENVIRONMENT.items():
        workspace = make_workspace(wb, alice, team.environments[env])
        code = wb.workspaces.folder(workspace) / "code" / name
        shutil.copytree(EXAMPLES / "algorithms" / name, code)
        started = time.monotonic()
        for kind, folder in (("train", "train"), ("predict", "predict")):
            build_tar(wb, alice, workspace, f"{name}/{folder}", kind, name)
            tar = f"{kind}-{name}.tar"
            report = wb.builds.inspect_tar(alice, workspace, tar)
            assert report.ok, report.problems
            wb.algorithms.image_from_workspace(alice, team.algorithms[name], kind, workspace, tar)
        result[name] = wb.algorithms.publish(alice, team.algorithms[name])
        team.timings[f"publish {name}"] = time.monotonic() - started
    return result


def test_each_preset_is_published_from_a_workspace(team: Team, published: dict[str, Any]):
    assert sorted(published) == sorted(ENVIRONMENT)
    for name, algo in published.items():
        assert (algo.state, algo.visibility) == ("online", "preset")
        assert algo.environment_id == team.environments[ENVIRONMENT[name]]
        for kind in ("train", "predict"):
            image = getattr(algo, kind)
            assert (image.state, image.source) == ("ready", "workspace"), (name, kind)
            assert image.source_detail.endswith(f"docker_image/{kind}-{name}.tar")
            assert image.digest.startswith("sha256:") and image.size > 0
            assert image.image_ref == f"workbench/algo-{algo.id}-{kind}:{image.digest[7:19]}"
        assert algo.predict.settings.api_spec is not None
        assert algo.predict.settings.api_spec.route == "/predict"
    # a member sees the presets among the algorithms to train with
    seen = {a.name for a in team.wb.algorithms.list(team.bob) if a.state == "online"}
    assert set(ENVIRONMENT) <= seen
    print("\n" + ", ".join(f"{k}: {v:.0f} s" for k, v in team.timings.items()))


def _train(team: Team, algorithm: str, dataset: str, **parameters: Any) -> Any:
    spec = TaskCreate.model_validate(
        {
            "name": f"{algorithm} on {dataset}",
            "purpose": "image" if dataset == "digits" else "text",
            "sub_purpose": "classification",
            "algorithm_id": team.algorithms[algorithm],
            "dataset_id": team.datasets[dataset],
            "parameters": parameters,
            "cpus": 2,
            "memory_mb": 3072,
            "start": True,
        }
    )
    started = time.monotonic()
    task = team.wb.training.create(team.bob, spec)
    task = _wait(
        lambda: (
            (t := team.wb.training.get(team.bob, task.id)).state
            in ("succeeded", "failed", "stopped")
            and t
        ),
        timeout=600,
    )
    log = task_log(team.wb, team.bob, task.id).text
    assert task.state == "succeeded", f"{task.state_reason}\n{log[-3000:]}"
    print(f"\n{algorithm} on {dataset}: {time.monotonic() - started:.0f} s")
    return task


def _wait(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s")


def _version(team: Team, task: Any) -> Any:
    assert task.model_version_id is not None
    version = team.wb.models.get_version(team.bob, task.model_version_id)
    assert version.task_id == task.id and version.files >= 1 and version.size > 0
    assert version.algorithm_id == task.algorithm_id
    assert version.dataset_id == task.dataset_id
    return version


def test_the_text_classifier_trains_to_an_evaluated_model_version(
    team: Team, published: dict[str, Any]
):
    task = _train(team, "text-bayes", "texts")
    version = _version(team, task)
    evaluation = version.evaluation
    assert evaluation is not None and evaluation.accuracy is not None
    assert evaluation.accuracy > 0.85
    assert evaluation.f1 is not None and 0 < evaluation.f1 <= 1
    assert len(evaluation.confusion_matrix) == len(evaluation.labels) >= 2
    assert version.environment_id == team.environments["python"]
    assert version.parameters["ALPHA"] == "0.1"  # the declared default, as the run got it
    metrics = team.wb.training.metrics(team.bob, task.id)
    assert metrics, "the run's metrics lines were not recorded"
    print(f"text-bayes accuracy {evaluation.accuracy:.3f}, macro F1 {evaluation.f1:.3f}")

    # the inference image serves the model version's files as a service (manual 2.7.1)
    answer = _serve_and_ask(
        team,
        published["text-bayes"],
        version,
        {"text": "the goalkeeper saved a penalty in the final minute of the match"},
    )
    assert answer["label"] in evaluation.labels
    assert set(answer["scores"]) == set(evaluation.labels)

    # scikit-learn -> ONNX (and optimised, INT8) in the python environment's image, each
    # checked against the pipeline on the held-out texts the training wrote beside it
    assert version.framework == "sklearn"
    assert version.signature["inputs"][0]["dtype"] == "string"
    formats = _convert(team, version.id)
    assert formats["onnx"].state == "verified", formats["onnx"].message
    assert formats["onnx"].check["max_abs_error"] <= 2e-2  # float64 -> float32
    _held_out_check(formats["onnx"].check, evaluation.accuracy, exact=True)
    assert formats["onnx-optimized"].state == "verified", formats["onnx-optimized"].message
    _benchmark(team, version.id, ["native", "onnx", "onnx-optimized", "onnx-int8"])


def test_the_image_classifier_reaches_0_9_on_digits(team: Team, published: dict[str, Any]):
    task = _train(team, "image-cnn", "digits")
    version = _version(team, task)
    evaluation = version.evaluation
    assert evaluation is not None and evaluation.accuracy is not None
    assert evaluation.accuracy > 0.9, evaluation
    assert evaluation.labels == [str(d) for d in range(10)]
    assert version.environment_id == team.environments["pytorch"]
    epochs = [m.values.get("epoch") for m in team.wb.training.metrics(team.bob, task.id)]
    assert epochs and epochs == sorted(epochs)
    print(f"image-cnn accuracy {evaluation.accuracy:.3f}, macro F1 {evaluation.f1:.3f}")

    digits = team.wb.datasets.get(team.alice, team.datasets["digits"])
    assert sum(map(sum, evaluation.confusion_matrix)) == digits.splits["test"].statistics.samples
    with team.wb.registry.session() as s:
        key = s.scalar(
            sa.select(DatasetSplit.storage_key).where(
                DatasetSplit.dataset_id == digits.id, DatasetSplit.split == "test"
            )
        )
    seven = sorted((team.wb.store.path(key) / "7").iterdir())[0]
    answer = _serve_and_ask(
        team,
        published["image-cnn"],
        version,
        {"image": base64.b64encode(seven.read_bytes()).decode()},
    )
    assert answer["label"] == "7"

    # TorchScript -> ONNX -> optimised and INT8 in the pytorch environment's image, each
    # checked against the TorchScript model; TensorRT fails fast without a GPU
    assert version.framework == "pytorch"
    assert version.signature["inputs"][0]["shape"] == [-1, 1, 32, 32]
    team.wb.conversions.conversion_kind.perturb = ("onnx",)  # an injected wrong conversion...
    try:
        wrong = team.wb.conversions.convert(
            team.bob, version.id, ConversionRequest(formats=["onnx"])
        )
        ended = team.wb.jobs.wait(wrong.job_id, timeout=300)
    finally:
        team.wb.conversions.conversion_kind.perturb = ()
    assert ended.state == "failed"  # ...is caught by the check, never offered
    onnx = {f.format: f for f in team.wb.conversions.formats(team.bob, version.id)}["onnx"]
    assert onnx.state == "failed" and onnx.message.startswith("the check failed"), onnx
    formats = _convert(team, version.id)
    for fmt in ("onnx", "onnx-optimized", "onnx-int8"):
        assert formats[fmt].state == "verified", (fmt, formats[fmt].message)
    assert formats["onnx"].check["top1_agreement"] == 1.0
    _held_out_check(formats["onnx"].check, evaluation.accuracy, exact=True)
    # INT8 is verified by the evaluation on the held-out images, next to the native one's
    assert formats["onnx-int8"].check["error_to_range"] <= 0.05
    _held_out_check(formats["onnx-int8"].check, evaluation.accuracy, exact=False)
    print("INT8 on the held-out images:", formats["onnx-int8"].check["evaluation"])
    assert formats["tensorrt"].state == "failed" and "NVIDIA GPU" in formats["tensorrt"].message
    _benchmark(team, version.id, ["native", "onnx", "onnx-optimized", "onnx-int8"])

    # published with one call: its default serving format, behind its endpoint; the
    # held-out test images get the trained model's answers, by the simple and the V2 route
    started = team.wb.deployments.create(
        team.bob, ServiceCreate(name="digits", version_id=version.id)
    )
    job = team.wb.jobs.wait(started.job_id, timeout=300)
    assert job.state == "succeeded", job.message
    service = team.wb.deployments.get(team.bob, started.service.id)
    assert service.format == version_default(team, version.id)
    folder = team.wb.model_versions.files(version.id)
    with np.load(folder / "samples.npz") as held_out:
        images, labels = held_out["input"][:20], held_out["labels"][:20]
    model = team.wb.models.get(team.bob, version.model_id).name
    right, auth = 0, {"Authorization": f"Bearer {started.service.key}"}
    for image, label in zip(images, labels, strict=True):
        r = httpx.post(
            f"http://{service.address}/predict", json={"input": image.tolist()}, headers=auth
        )
        assert r.status_code == 200, r.text
        right += int(np.argmax(r.json()["logits"]) == label)
    tensor = {"name": "input", "shape": list(images.shape), "datatype": "FP32"}
    r = httpx.post(
        f"http://{service.address}/v2/models/{model}/infer",
        json={"inputs": [{**tensor, "data": images.ravel().tolist()}]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    scores = np.array(r.json()["outputs"][0]["data"]).reshape(len(images), -1)
    assert int((scores.argmax(1) == labels).sum()) == right
    assert right >= 17, right  # the model's own accuracy is about 0.97
    team.wb.deployments.delete(team.bob, service.id)


def version_default(team: Team, version_id: int) -> str:
    return team.wb.models.get_version(team.bob, version_id).default_format or "native"


def _held_out_check(check: dict[str, Any], accuracy: float, *, exact: bool) -> None:
    """The check ran on the test split's samples the training wrote (``samples.npz``) and
    evaluated the format there: the native model's accuracy is the task's evaluation."""
    assert check["inputs"] == "held-out" and check["samples"] > 16, check
    evaluation = check["evaluation"]
    assert evaluation["metric"] == "accuracy"
    assert evaluation["native"] == pytest.approx(accuracy, abs=1e-6)
    assert evaluation["change"] == pytest.approx(evaluation["format"] - evaluation["native"])
    if exact:
        assert evaluation["change"] == 0 and evaluation["allowed_drop"] == 0
    else:
        assert evaluation["change"] >= -evaluation["allowed_drop"] and evaluation["allowed_drop"]


def _benchmark(team: Team, version_id: int, formats: list[str]) -> None:
    """Benchmark every format at batch sizes 1 to 32 in the environment's image: a point
    per format and size in the registry, the machine they were measured on, the best
    format per latency budget and the version's default format."""
    request = BenchmarkRequest(max_batch=32, window_s=0.2, point_cap_s=4)
    started = team.wb.conversions.benchmark(team.bob, version_id, request)
    took = time.monotonic()
    job = team.wb.jobs.wait(started.job_id, timeout=900)
    took = time.monotonic() - took
    assert job.state == "succeeded", team.wb.jobs.tail(team.bob, job.id).text[-3000:]
    report = team.wb.conversions.benchmarks(team.bob, version_id)
    measured = {(p.format, p.batch_size) for p in report.points}
    assert measured == {(f, b) for f in formats for b in (1, 2, 4, 8, 16, 32)}, job.message
    assert all(p.p50_ms <= p.p95_ms <= p.p99_ms and p.throughput > 0 for p in report.points)
    assert all(p.samples >= 3 * p.batch_size for p in report.points)
    assert report.hardware["cpus_given"] == 1.0 and report.software["onnxruntime"]
    assert report.default_format in formats and report.best
    print(f"benchmark of version {version_id}: {took:.1f} s; {report.hardware}")
    for p in report.points:
        print(
            f"  {p.format:<15} {p.batch_size:>3} p50 {p.p50_ms:8.3f} ms  p99 {p.p99_ms:8.3f} ms"
            f"  {p.throughput:9.0f}/s  {p.memory_mb:6.0f} MiB{'' if p.stable else ' unstable'}"
        )
    print("  best:", [(b.budget_ms, b.format, b.batch_size) for b in report.best])


def _convert(team: Team, version_id: int) -> dict[str, Any]:
    """Convert a version to every format its native kind converts to; its formats."""
    started = team.wb.conversions.convert(team.bob, version_id)
    with pytest.raises(Conflict):  # the same formats again while they convert
        team.wb.conversions.convert(team.bob, version_id)
    took = time.monotonic()
    job = team.wb.jobs.wait(started.job_id, timeout=600)
    took = time.monotonic() - took
    print(f"conversion of version {version_id}: {took:.1f} s, {job.message}")
    assert job.state == "succeeded", team.wb.jobs.tail(team.bob, job.id).text[-3000:]
    formats = {f.format: f for f in team.wb.conversions.formats(team.bob, version_id)}
    for fmt in formats.values():
        print(f"  {fmt.format:<15} {fmt.state:<10} {fmt.message}")
    return formats


def _serve_and_ask(team: Team, algorithm: Any, version: Any, body: dict[str, Any]) -> Any:
    """A service from the algorithm's inference image with the version's files (manual
    2.7.1, by the inference contract): ``body`` to its API spec's route through the
    endpoint; the answer."""
    wb, bob = team.wb, team.bob
    started = wb.deployments.create(
        bob,
        ServiceCreate(
            name=f"{algorithm.name}-api", algorithm_id=algorithm.id, version_id=version.id
        ),
    )
    job = wb.jobs.wait(started.job_id, timeout=180)
    assert job.state == "succeeded", job.message
    service = wb.deployments.get(bob, started.service.id)
    try:
        assert (service.format, service.runtime, service.state) == ("image", "image", "running")
        assert service.api_spec is not None and service.api_spec["route"] == "/predict"
        assert service.algorithm_id == algorithm.id and service.task_id == version.task_id
        example = {p["name"]: p["example"] for p in service.api_spec["params"]}
        assert set(example) == set(body)  # the spec names what the route takes
        auth = {"Authorization": f"Bearer {started.service.key}"}
        route = f"http://{service.address}{service.api_spec['route']}"
        r = httpx.post(route, json=body, headers=auth)
        assert r.status_code == 200, r.text
        bad = httpx.post(f"http://{service.address}/predict", json={"nothing": 1}, headers=auth)
        assert bad.status_code == 400 and "error" in bad.json()  # the contract's error
        # the image's server is the model server: its /metrics are read as a model's are
        (replica,) = wb.deployments.metrics(bob, service.id).replicas
        assert replica.error == "" and (replica.requests, replica.errors) == (2, 1)
        return r.json()
    finally:
        wb.deployments.delete(bob, service.id)
