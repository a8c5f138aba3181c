"""Training runs on the real Docker Engine, with tiny training images built FROM the
envs/python image: a success with metrics, an evaluation and a model; a crash; an
out-of-memory kill; a run that writes no model; a stop; and a server restart in the middle
of a run. No container is left behind after any of them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import (
    FAILED,
    add_algorithm,
    add_online_dataset,
    add_people,
    make_workbench,
    task_log,
)
from tests.server import LiveServer, live_server
from workbench.backends.docker import DockerBackend
from workbench.client import WorkbenchClient
from workbench.config import Settings, TrainingLimits
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.training.schemas import TaskCreate, TaskInfo
from workbench.training.service import TrainingService

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FINISHED = ("succeeded", "failed", "stopped")

TAG = "wbtest/train-contract:latest"
LIMITS = TrainingLimits(concurrency=2, cpus=2, memory_mb=2048)
#: the training script; MODE (a declared parameter) picks what it does
TRAIN_PY = r"""
import json, os, sys, time
from pathlib import Path

mode = os.environ["MODE"]
data = Path(os.environ["DATASET_DIR"])
info = json.loads((data / "dataset.json").read_text())
print("dataset", info["name"], info["samples"]["train"], info["samples"]["test"])
print("uid", os.getuid(), "format", os.environ["DATASET_FORMAT"])
print("base model", repr(os.environ["BASE_MODEL_DIR"]), "device", os.environ["DEVICE"])
try:
    (data / "train" / "x").write_text("x")
except OSError:
    print("dataset is read-only")
if mode == "crash":
    print("about to fail", file=sys.stderr)
    sys.exit(3)
if mode == "oom":
    hog = []
    while True:
        hog.append(bytearray(8 * 1024 * 1024))
epochs = int(os.environ["EPOCHS"])
with open(os.environ["METRICS_FILE"], "a") as metrics:
    for epoch in range(1, epochs + 1):
        print(f"epoch {epoch}")
        metrics.write(json.dumps({"epoch": epoch, "loss": round(1 / epoch, 4)}) + "\n")
        metrics.flush()
        time.sleep(float(os.environ["PAUSE"]))
if mode == "nomodel":
    sys.exit(0)
classes = info["classes"]
counts = [len(list((data / "test" / c).iterdir())) for c in classes]
matrix = [[n if j == 0 else 0 for j in range(len(classes))] for n in counts]
Path(os.environ["EVALUATION_FILE"]).write_text(
    json.dumps({"labels": classes, "confusion_matrix": matrix, "metrics": {"epochs": epochs}})
)
model = Path(os.environ["MODEL_DIR"])
(model / "weights.json").write_text(json.dumps({"predict": classes[0]}))
print("saved the model")
"""
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY train.py /app/train.py
CMD ["python", "/app/train.py"]
"""
PARAMS = {
    "MODE": {"type": "str", "default": "success", "description": "what the script does"},
    "EPOCHS": {"type": "int", "default": 3},
    "PAUSE": {"type": "float", "default": 0.0, "description": "seconds after each epoch"},
}


@pytest.fixture(scope="module")
def train_image(
    docker_backend: DockerBackend, python_env_image: str, tmp_path_factory
) -> Iterator[str]:
    context = tmp_path_factory.mktemp("train-image")
    (context / "train.py").write_text(TRAIN_PY)
    (context / "Dockerfile").write_text(DOCKERFILE)
    list(docker_backend.build_image(context, TAG, build_args={"BASE": python_env_image}))
    yield TAG
    docker_backend.remove_image(TAG)


@pytest.fixture
def wb(tmp_path, train_image, request) -> Iterator[Workbench]:
    workbench = make_workbench(tmp_path / "home", backend="docker", training=LIMITS)
    workbench.jobs.runner.interval = 0.2
    workbench.start()
    yield workbench
    workbench.close()
    left = workbench.backend().list(
        {"workbench.managed": str(workbench.settings.home), "workbench.kind": "training"}
    )
    for info in left:  # never leave one running, even when the test failed
        workbench.backend().remove(info.id)
    if request.node.stash.get(FAILED, False):
        for log in (tmp_path / "home" / "store" / "training").rglob("log.txt"):
            print(f"--- {log}\n{log.read_text()}")
    assert left == [], "a training container was left behind"


def add_contract_algorithm(wb: Workbench, owner_id: int) -> int:
    """An online, public algorithm whose training image is the contract script's."""
    return add_algorithm(wb, owner_id, {"image_ref": TAG, "env": PARAMS}, name="contract")


@pytest.fixture
def setup(wb, tmp_path) -> tuple[Any, int, int]:
    people = add_people(wb)
    dataset = add_online_dataset(wb, people.alice, tmp_path, {"0": 6, "1": 4})
    return people.bob, add_contract_algorithm(wb, people.alice.id), dataset


def start(wb, setup, **fields: Any) -> int:
    bob, algorithm_id, dataset = setup
    spec = TaskCreate.model_validate(
        {
            "name": "contract-run",
            "purpose": "image",
            "sub_purpose": "classification",
            "algorithm_id": algorithm_id,
            "dataset_id": dataset,
            "memory_mb": 512,
            "start": True,
            **fields,
        }
    )
    return wb.training.create(bob, spec).id


def wait_until(condition: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s")


def finished(service: TrainingService, actor, task_id: int, timeout: float = 90) -> Any:
    return wait_until(
        lambda: (
            (t := service.get(actor, task_id)).state in ("succeeded", "failed", "stopped") and t
        ),
        timeout,
    )


def containers(wb, task_id: int) -> list:
    return wb.backend().list(
        {"workbench.managed": str(wb.settings.home), "workbench.task": str(task_id)}
    )


def test_a_successful_run_registers_a_model_version(wb, setup):
    bob = setup[0]
    task_id = start(wb, setup, parameters={"EPOCHS": 3}, cpus=1.5)
    done = finished(wb.training, bob, task_id)
    log = task_log(wb, bob, task_id).text
    assert done.state == "succeeded", log
    assert "dataset digits 8 2\nuid 1000 format dir\nbase model '' device cpu\n" in log
    assert "dataset is read-only\n" in log
    assert "epoch 1\nepoch 2\nepoch 3\nsaved the model\n" in log
    assert [p.values for p in wb.training.metrics(bob, task_id)] == [
        {"epoch": 1, "loss": 1.0},
        {"epoch": 2, "loss": 0.5},
        {"epoch": 3, "loss": 0.3333},
    ]
    evaluation = done.evaluation
    assert evaluation.labels == ["0", "1"] and evaluation.metrics == {"epochs": 3}
    assert evaluation.confusion_matrix == [[1, 0], [1, 0]]
    assert evaluation.accuracy == 0.5 and evaluation.per_class["1"].recall == 0.0
    version = wb.models.get_version(bob, done.model_version_id)
    assert (version.version, version.files, version.task_id) == (1, 1, task_id)
    assert version.parameters == {"MODE": "success", "EPOCHS": "3", "PAUSE": "0.0"}
    assert version.evaluation == evaluation
    with wb.registry.session() as s:
        key = s.get(m.ModelVersion, version.id).storage_key
    assert json.loads((wb.store.path(key) / "weights.json").read_text()) == {"predict": "0"}
    assert containers(wb, task_id) == []


@pytest.mark.parametrize(
    ("mode", "memory_mb", "reason", "in_log"),
    [
        ("crash", 512, "exited with code 3; the last log lines:", "about to fail"),
        ("oom", 64, "killed: out of memory (the task's limit is 64 MiB)", "dataset digits"),
        ("nomodel", 512, "wrote no model into $MODEL_DIR", "epoch 3"),
    ],
)
def test_failed_runs(wb, setup, mode, memory_mb, reason, in_log):
    bob = setup[0]
    task_id = start(wb, setup, parameters={"MODE": mode}, memory_mb=memory_mb)
    done = finished(wb.training, bob, task_id)
    assert done.state == "failed"
    assert reason in done.state_reason, done.state_reason
    assert in_log in task_log(wb, bob, task_id).text
    if mode == "crash":  # the last lines; Docker may put stderr before stdout's last ones
        assert "about to fail" in done.state_reason.splitlines()[-5:]
    assert done.model_version_id is None
    assert containers(wb, task_id) == []


def test_stop_a_running_task(wb, setup):
    bob = setup[0]
    task_id = start(wb, setup, parameters={"EPOCHS": 100, "PAUSE": 1.0}, cpus=0.5)
    wait_until(lambda: "epoch 1" in task_log(wb, bob, task_id).text)
    [running] = containers(wb, task_id)
    attrs = docker.from_env().containers.get(running.id).attrs
    assert attrs["HostConfig"]["Memory"] == 512 * 1024**2
    assert attrs["HostConfig"]["NanoCpus"] == 5 * 10**8
    assert attrs["Config"]["User"] == "1000:1000"
    mounts = {mount["Destination"]: mount["RW"] for mount in attrs["Mounts"]}
    assert mounts == {"/workbench/dataset": False, "/workbench/output": True}
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    assert env["MODEL_DIR"] == "/workbench/output/model" and env["EPOCHS"] == "100"

    started = time.monotonic()
    stopped = wb.training.stop(bob, task_id)
    assert stopped.state == "stopped" and stopped.state_reason == "stopped by its owner"
    assert time.monotonic() - started < 15  # python exits on SIGTERM
    assert containers(wb, task_id) == []


def test_a_server_restart_in_the_middle_of_a_run_loses_nothing(wb, setup):
    bob = setup[0]
    task_id = start(wb, setup, parameters={"EPOCHS": 8, "PAUSE": 0.5})
    wait_until(lambda: "epoch 2" in task_log(wb, bob, task_id).text)
    wb.jobs.runner.stop()  # the server stops; the container runs on
    time.sleep(1.5)
    assert wb.training.get(bob, task_id).state == "running"

    server = Workbench.from_settings(wb.settings)
    server.jobs.runner.interval = 0.2
    server.start()
    again = server.training
    try:
        done = finished(again, bob, task_id)
    finally:
        server.close()
    log = task_log(server, bob, task_id).text
    assert done.state == "succeeded", log
    epochs = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"epoch {n}" for n in range(1, 9)]  # each once, in order
    assert log.count("saved the model") == 1
    assert [p.values["epoch"] for p in again.metrics(bob, task_id)] == list(range(1, 9))
    assert done.model_version_id is not None
    assert containers(wb, task_id) == []


def test_the_log_is_kept_on_disk(wb, setup):
    """The run's folder keeps its log, metrics and run record; the dataset view goes."""
    bob = setup[0]
    task_id = start(wb, setup, parameters={"EPOCHS": 1})
    done = finished(wb.training, bob, task_id)
    folder: Path = wb.store.path(f"training/{task_id}/{done.job_id}")
    assert {p.name for p in folder.iterdir()} == {"log.txt", "run.json", "output"}
    assert (folder / "output" / "metrics.jsonl").is_file()
    assert json.loads((folder / "run.json").read_text())["image"] == TAG


def start_a_run_on(
    server: LiveServer, folder: Path, *, epochs: int, pause: float
) -> tuple[str, TaskInfo]:
    """On a fresh live server: alice's public algorithm and dataset, a run of bob's that
    goes on (its first epoch logged); bob's token and the task."""
    wb = Workbench.from_settings(Settings(home=server.home))
    try:
        people = add_people(wb)
        dataset = add_online_dataset(wb, people.alice, folder, {"0": 6, "1": 4})
        algorithm_id = add_contract_algorithm(wb, people.alice.id)
        token = wb.users.create_token(people.bob.id, "restart").secret
    finally:
        wb.close()
    with WorkbenchClient(server.url, token) as client:
        task = client.training.create(
            name="survives-a-restart",
            purpose="image",
            sub_purpose="classification",
            algorithm_id=algorithm_id,
            dataset_id=dataset,
            parameters={"EPOCHS": epochs, "PAUSE": pause},
            memory_mb=512,
            start=True,
        )
        wait_until(lambda: "epoch 1" in run_log(client, task.id))
    return token, task


def run_log(client: WorkbenchClient, task_id: int) -> str:
    """The task's current run's log, through REST: its job's."""
    job_id = client.training.get(task_id).job_id
    return client.jobs.log(job_id).text if job_id is not None else ""


def test_a_real_server_restart_during_a_run_loses_nothing(train_image, tmp_path):
    """The server process stops (as `workbench lab` does on Ctrl-C) while a run goes on and
    another server starts on the same home: the run is taken up and nothing is lost."""
    with live_server(tmp_path / "server") as server:
        token, task = start_a_run_on(server, tmp_path, epochs=8, pause=0.6)
        with WorkbenchClient(server.url, token) as client:
            wait_until(lambda: "epoch 2" in run_log(client, task.id))
    labels = {"workbench.managed": str(server.home), "workbench.task": str(task.id)}
    backend = DockerBackend.from_env()
    assert [r.state for r in backend.list(labels)] == ["running"]  # it ran on meanwhile

    with live_server(tmp_path / "server") as again, WorkbenchClient(again.url, token) as client:
        done = wait_until(
            lambda: (t := client.training.get(task.id)).state in FINISHED and t, timeout=120
        )
        log = run_log(client, task.id)
        metrics = client.training.metrics(task.id)
    assert done.state == "succeeded", log
    epochs = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert epochs == [f"epoch {n}" for n in range(1, 9)]  # each once, in order
    assert [p.values["epoch"] for p in metrics] == list(range(1, 9))
    assert done.model_version_id is not None and done.evaluation is not None
    assert backend.list(labels) == []
