"""Training tasks on the fake backend: the wizard's checks, the state machine, the queue
and its limits, the runner's outcomes, logs and metrics, models, and restarts (the same
runs happen on the real engine in tests/integration/test_training_docker.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.archives import image_classes
from tests.conftest import add_algorithm, add_online_dataset, add_people, make_workbench, task_log
from workbench.config import TrainingLimits
from workbench.datasets.schemas import DatasetCreate
from workbench.enums import Split
from workbench.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from workbench.models.schemas import ModelFilter
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.training.schemas import TaskCreate, TaskFilter, TaskUpdate

IMAGE = "wbtest/train-digits:1"
LIMITS = TrainingLimits(concurrency=2, cpus=4, memory_mb=8192, gpus=1)
PARAMS = {
    "EPOCHS": {"type": "int", "default": 2, "description": "passes"},
    "LR": {"type": "float", "default": 0.1},
    "AUGMENT": {"type": "bool", "default": False},
    "OPTIMIZER": {"type": "str"},
}


@pytest.fixture
def wb(tmp_path, registry_url):
    workbench = make_workbench(tmp_path / "home", registry_url, backend="fake", training=LIMITS)
    workbench.backend().add_image(IMAGE, cmd=["python", "/app/train.py"])
    workbench.backend().script(IMAGE, ["loading"], exit_code=None)  # runs until told
    workbench.jobs.runner.interval = 0.02
    workbench.jobs.runner.start()
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


@pytest.fixture
def digits(wb, people, tmp_path):
    return add_online_dataset(wb, people.alice, tmp_path, {"0": 5, "1": 5})


def add_digits_algorithm(wb, owner, image: dict[str, Any] | None = None, **fields: Any) -> int:
    """The digits algorithm with a ready training image (``image`` overrides its columns)."""
    fields.setdefault("name", "digits-cnn")
    return add_algorithm(
        wb, owner.id, {"image_ref": IMAGE, "env": PARAMS, **(image or {})}, **fields
    )


@pytest.fixture
def algo(wb, people):
    return add_digits_algorithm(wb, people.alice)


def task(algorithm_id: int, dataset_id: int, **fields: Any) -> TaskCreate:
    return TaskCreate.model_validate(
        {
            "name": "digits-run",
            "purpose": "image",
            "sub_purpose": "classification",
            "algorithm_id": algorithm_id,
            "dataset_id": dataset_id,
            **fields,
        }
    )


def wait_until(condition: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {condition}")


def wait_state(wb, actor, task_id, *states: str) -> Any:
    return wait_until(
        lambda: (t := wb.training.get(actor, task_id)).state in states and t, timeout=10
    )


def run_of(wb, task_id: int) -> m.Job:
    """The current run, once its container has started."""

    def started() -> m.Job | None:
        with wb.registry.session() as s:
            row = s.get(m.TrainingTask, task_id)
            job = s.get(m.Job, row.job_id) if row and row.job_id else None
            return job if job is not None and job.run_id else None

    return wait_until(started)


def folder(wb, task_id: int, job_id: int) -> Path:
    return wb.store.path(f"training/{task_id}/{job_id}")


def write_model(out: Path, evaluation: dict[str, Any] | None = None) -> None:
    (out / "model").mkdir(exist_ok=True)
    (out / "model" / "weights.bin").write_bytes(b"\x00" * 100)
    (out / "model" / "sub").mkdir(exist_ok=True)
    (out / "model" / "sub" / "labels.txt").write_text("0\n1\n")
    if evaluation is not None:
        (out / "evaluation.json").write_text(json.dumps(evaluation))


def containers(wb, task_id: int) -> list:
    return wb.backend().list({"workbench.kind": "training", "workbench.task": str(task_id)})


# --- a whole run ------------------------------------------------------------------------------


def test_a_run_from_the_queue_to_a_model_version(wb, people, algo, digits):
    bob = people.bob
    info = wb.training.create(
        bob, task(algo, digits, parameters={"EPOCHS": "3", "AUGMENT": "yes"}, start=True)
    )
    assert info.state in ("queued", "running") and info.job_id
    assert info.parameters == {"EPOCHS": 3, "AUGMENT": True}
    assert info.train_ratio == 0.8  # the dataset's
    job = run_of(wb, info.id)
    assert wb.training.get(bob, info.id).state == "running"
    [container] = containers(wb, info.id)
    assert container.labels["workbench.job"] == str(job.id)
    assert container.labels["workbench.managed"] == str(wb.settings.home)

    run = folder(wb, info.id, job.id)
    described = json.loads((run / "dataset" / "dataset.json").read_text())
    assert described == {
        "name": "digits",
        "format": "dir",
        "split_mode": "ratio",
        "train_ratio": 0.8,
        "classes": ["0", "1"],
        "samples": {"train": 8, "test": 2},
    }
    record = json.loads((run / "run.json").read_text())
    assert record["image"] == IMAGE
    assert record["parameters"] == {"EPOCHS": "3", "LR": "0.1", "AUGMENT": "true"}

    fake = wb.backend()
    fake.emit(job.run_id, "epoch 1", "epoch 2")
    metrics = run / "output" / "metrics.jsonl"
    metrics.write_text('{"epoch": 1, "loss": 0.9}\nnot json\n{"epoch": 2, "loss": NaN}\n{"ep')
    points = wait_until(lambda: len(wb.training.metrics(bob, info.id)) == 2 and True)
    assert points
    page = wait_until(lambda: (p := task_log(wb, bob, info.id)).text.count("\n") == 3 and p)
    assert page.text == "loading\nepoch 1\nepoch 2\n" and page.state == "running"
    more = task_log(wb, bob, info.id, page.next_offset)
    assert more.text == "" and more.next_offset == page.next_offset

    with metrics.open("a") as f:
        f.write('och": 3, "loss": 0.2}\n')
    write_model(
        run / "output",
        {"labels": ["0", "1"], "confusion_matrix": [[1, 0], [1, 0]], "metrics": {"auc": 0.7}},
    )
    fake.finish(job.run_id, 0)
    done = wait_state(wb, bob, info.id, "succeeded")

    assert done.state_reason == "" and done.finished_at and done.started_at
    assert done.evaluation.accuracy == 0.5
    assert done.evaluation.per_class["0"].recall == 1.0
    assert done.evaluation.per_class["1"].precision == 0.0
    assert done.evaluation.metrics == {"auc": 0.7}
    points = wb.training.metrics(bob, info.id)
    assert [(p.seq, p.values) for p in points] == [
        (0, {"epoch": 1, "loss": 0.9}),
        (2, {"epoch": 2, "loss": None}),
        (3, {"epoch": 3, "loss": 0.2}),
    ]
    assert [p.seq for p in wb.training.metrics(bob, info.id, after=0)] == [2, 3]

    version = wb.models.get_version(bob, done.model_version_id)
    assert (version.version, version.task_id, version.job_id) == (1, info.id, job.id)
    assert (version.algorithm_id, version.dataset_id) == (algo, digits)
    assert version.parameters == {"EPOCHS": "3", "LR": "0.1", "AUGMENT": "true"}
    assert (version.files, version.size) == (2, 104)
    assert len(version.sha256) == 64 and version.evaluation.accuracy == 0.5
    model = wb.models.get(bob, done.model_id)
    assert model.name == "digits-run" and model.owner == "bob" and model.visibility == "private"
    assert [v.id for v in model.versions] == [version.id]
    with wb.registry.session() as s:
        key = s.get(m.ModelVersion, version.id).storage_key
    assert (wb.store.path(key) / "sub" / "labels.txt").read_text() == "0\n1\n"

    log = task_log(wb, bob, info.id).text
    assert log.startswith("loading\nepoch 1\nepoch 2\n")
    assert f"job {job.id} succeeded: model {model.id} version 1" in log
    assert containers(wb, info.id) == []  # removed
    assert not (run / "dataset").exists() and (run / "output" / "metrics.jsonl").exists()
    [only] = wb.training.runs(bob, info.id)
    assert (only.state, only.exit_code, only.model_version_id) == ("succeeded", 0, version.id)


def test_a_second_success_adds_a_version_and_retry_makes_a_new_run(wb, people, algo, digits):
    bob = people.bob
    info = wb.training.create(bob, task(algo, digits, start=True))
    for expected in (1, 2):
        job = run_of(wb, info.id)
        write_model(folder(wb, info.id, job.id) / "output")
        wb.backend().finish(job.run_id, 0)
        done = wait_state(wb, bob, info.id, "succeeded")
        assert done.evaluation is None
        assert wb.models.get_version(bob, done.model_version_id).version == expected
        if expected == 1:
            with pytest.raises(Conflict, match="use `retry`"):
                wb.training.start(bob, info.id)
            assert wb.training.retry(bob, info.id).job_id != job.id
    assert [r.state for r in wb.training.runs(bob, info.id)] == ["succeeded", "succeeded"]
    assert len(wb.models.get(bob, done.model_id).versions) == 2


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ({"exit_code": 3}, "exited with code 3; the last log lines:\nloading\nTraceback: boom"),
        ({"exit_code": 137, "oom_killed": True}, "killed: out of memory (the task's limit is 512"),
        ({"exit_code": 0}, "wrote no model into $MODEL_DIR (/workbench/output/model)"),
    ],
)
def test_failed_runs_say_why(wb, people, algo, digits, finish, reason):
    bob = people.bob
    info = wb.training.create(bob, task(algo, digits, memory_mb=512, start=True))
    job = run_of(wb, info.id)
    wb.backend().emit(job.run_id, "Traceback: boom")
    wb.backend().finish(job.run_id, **finish)
    failed = wait_state(wb, bob, info.id, "failed")
    assert reason in failed.state_reason
    assert failed.model_id is None and failed.model_version_id is None
    assert "Traceback: boom" in task_log(wb, bob, info.id).text
    assert containers(wb, info.id) == []
    [run] = wb.training.runs(bob, info.id)
    assert run.exit_code == finish["exit_code"] and run.message == failed.state_reason


def test_a_container_that_does_not_start_fails_the_run(wb, people, algo, digits):
    wb.backend().script(IMAGE, start_error="no space left on device")
    info = wb.training.create(people.bob, task(algo, digits, start=True))
    failed = wait_state(wb, people.bob, info.id, "failed")
    assert "its container did not start" in failed.state_reason
    assert "no space left on device" in failed.state_reason
    assert "no space left" in task_log(wb, people.bob, info.id).text


# --- stop, queue, limits ----------------------------------------------------------------------


def test_stop_a_running_task(wb, people, algo, digits):
    bob = people.bob
    info = wb.training.create(bob, task(algo, digits, start=True))
    run_of(wb, info.id)
    stopped = wb.training.stop(bob, info.id)
    assert stopped.state == "stopped" and stopped.state_reason == "stopped by its owner"
    assert containers(wb, info.id) == []
    with pytest.raises(Conflict, match="only a queued or running task"):
        wb.training.stop(bob, info.id)


def test_the_queue_keeps_to_the_concurrency_and_the_resources(wb, people, algo, digits):
    bob = people.bob
    big = wb.training.create(bob, task(algo, digits, name="big", cpus=3, start=True))
    wait_state(wb, bob, big.id, "running")
    second = wb.training.create(bob, task(algo, digits, name="second", cpus=2, start=True))
    small = wb.training.create(bob, task(algo, digits, name="small", cpus=0.5, start=True))
    time.sleep(0.3)  # several dispatcher rounds: 3 + 2 CPUs > 4, and small waits behind
    assert wb.training.get(bob, second.id).state == "queued"
    assert wb.training.get(bob, small.id).state == "queued"

    stopped = wb.training.stop(bob, small.id)  # queued: stopped at once
    assert (
        stopped.state == "stopped"
        and "before it started" in wb.training.runs(bob, small.id)[0].message
    )
    assert wb.training.stop(bob, big.id).state == "stopped"
    wait_state(wb, bob, second.id, "running")

    third = wb.training.create(bob, task(algo, digits, name="third", cpus=1, start=True))
    fourth = wb.training.create(bob, task(algo, digits, name="fourth", cpus=1, start=True))
    wait_state(wb, bob, third.id, "running")  # 2 + 1 CPUs fit; the concurrency is 2
    time.sleep(0.3)
    assert wb.training.get(bob, fourth.id).state == "queued"
    assert len(wb.training.list(bob, TaskFilter(state="running"))) == 2
    wb.training.stop(bob, second.id)
    wait_state(wb, bob, fourth.id, "running")
    for t in (third, fourth):
        wb.training.stop(bob, t.id)


def test_two_runners_on_one_registry_never_start_the_same_run(wb, people, algo, digits):
    """Claims are one UPDATE ... WHERE state = 'queued': each run starts exactly once."""
    other = Workbench.from_settings(
        replace(wb.settings, instance_name="second-server"), backend_instance=wb.backend()
    )
    other.jobs.runner.interval = 0.02
    other.start()
    try:
        ids = [
            wb.training.create(people.bob, task(algo, digits, name=f"t{i}", start=True)).id
            for i in range(4)
        ]
        for task_id in ids:  # two runners, two runs each
            run_of(wb, task_id)
            assert len(containers(wb, task_id)) == 1
        assert len(wb.backend().list({"workbench.kind": "training"})) == 4
        for task_id in ids:
            other.training.stop(people.bob, task_id)
        with wb.registry.session() as s:
            instances = {job.instance for job in s.scalars(sa.select(m.Job))}
        assert instances == {wb.settings.instance, "second-server"}
    finally:
        other.close()


# --- the wizard's checks ----------------------------------------------------------------------


def test_draft_edit_start_and_delete_rules(wb, people, algo, digits):
    bob = people.bob
    draft = wb.training.create(bob, task(algo, digits, train_ratio=0.5))
    assert draft.state == "draft" and draft.job_id is None and draft.train_ratio == 0.5
    assert draft.algorithm_name == "digits-cnn" and draft.dataset_name == "digits"
    edited = wb.training.update(
        bob,
        draft.id,
        TaskUpdate(name="renamed", parameters={"LR": 0.5}, train_ratio=None, cpus=2),
    )
    assert (edited.name, edited.parameters, edited.train_ratio, edited.cpus) == (
        "renamed",
        {"LR": 0.5},
        0.8,
        2,
    )
    with pytest.raises(InvalidInput, match="cannot be null"):
        wb.training.update(bob, draft.id, TaskUpdate(name=None))
    started = wb.training.start(bob, draft.id)
    assert started.state in ("queued", "running")
    with pytest.raises(Conflict, match="stop it \\(or wait until it ends\\)"):
        wb.training.update(bob, draft.id, TaskUpdate(name="again"))
    with pytest.raises(Conflict, match="stop it first"):
        wb.training.delete(bob, draft.id)
    with pytest.raises(Conflict, match="queued or running already"):
        wb.training.start(bob, draft.id)
    job = run_of(wb, draft.id)
    write_model(folder(wb, draft.id, job.id) / "output")
    wb.backend().finish(job.run_id, 0)
    done = wait_state(wb, bob, draft.id, "succeeded")
    assert wb.training.update(bob, draft.id, TaskUpdate(description="kept")).description == "kept"

    wb.training.delete(bob, draft.id)
    with pytest.raises(NotFound):
        wb.training.get(bob, draft.id)
    version = wb.models.get_version(bob, done.model_version_id)
    assert version.task_id is None and version.job_id == job.id  # lineage kept
    assert (version.algorithm_id, version.dataset_id) == (algo, digits)
    assert not wb.store.path(f"training/{draft.id}").exists()
    with wb.registry.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.TrainingMetric)) == 0


def test_bad_parameters_are_refused_naming_them(wb, people, algo, digits):
    bob = people.bob
    with pytest.raises(InvalidInput, match="Parameter EPOCHS must be an int") as err:
        wb.training.create(bob, task(algo, digits, parameters={"EPOCHS": "many"}))
    assert err.value.details["field"] == "EPOCHS"
    with pytest.raises(InvalidInput, match="Unknown parameter 'EPOCH'"):
        wb.training.create(bob, task(algo, digits, parameters={"EPOCH": 3}))
    with pytest.raises(InvalidInput, match="Parameter AUGMENT must be a bool"):
        wb.training.create(bob, task(algo, digits, parameters={"AUGMENT": "maybe"}))
    assert wb.training.list(bob) == []


def test_purposes_must_match(wb, people, algo, digits):
    bob = people.bob
    text_algo = add_digits_algorithm(wb, people.alice, name="bayes", purpose="text")
    with pytest.raises(InvalidInput, match="is for text/classification, not image"):
        wb.training.create(bob, task(text_algo, digits))
    with pytest.raises(
        InvalidInput, match=r"Dataset \d+ \(digits\) is for image/classification, not text"
    ):
        wb.training.create(
            bob, task(text_algo, digits, purpose="text", sub_purpose="classification")
        )
    with pytest.raises(InvalidInput, match="ner is not a sub-purpose of image"):
        wb.training.create(bob, task(algo, digits, sub_purpose="ner"))


def test_offline_or_unready_things_do_not_start(wb, people, algo, digits):
    bob, alice = people.bob, people.alice
    offline = add_digits_algorithm(wb, alice, name="old", state="offline")
    with pytest.raises(Conflict, match="is offline; only an online algorithm trains"):
        wb.training.create(bob, task(offline, digits, start=True))
    assert wb.training.list(bob) == []  # refused whole: no draft left behind
    draft = wb.training.create(bob, task(offline, digits))  # a draft may wait for it
    with pytest.raises(Conflict, match="only an online algorithm trains"):
        wb.training.start(bob, draft.id)

    loading = add_digits_algorithm(wb, alice, name="loading", image={"state": "loading"})
    with pytest.raises(Conflict, match="no ready training image \\(it is loading\\)"):
        wb.training.create(bob, task(loading, digits, start=True))
    no_image = add_digits_algorithm(wb, alice, name="bare", image={"image_ref": ""})
    with pytest.raises(Conflict, match="no ready training image"):
        wb.training.create(bob, task(no_image, digits, start=True))

    ready = wb.training.create(bob, task(algo, digits))
    wb.datasets.take_offline(alice, digits)
    with pytest.raises(Conflict, match="is offline; only an online dataset"):
        wb.training.start(bob, ready.id)
    with pytest.raises(Conflict, match="only an online dataset"):
        wb.training.create(bob, task(algo, digits))


def test_other_users_private_things_are_invisible(wb, people, algo, digits, tmp_path):
    bob, alice = people.bob, people.alice
    private_algo = add_digits_algorithm(wb, alice, name="secret", visibility="private")
    with pytest.raises(NotFound, match="algorithm"):
        wb.training.create(bob, task(private_algo, digits))
    ds = wb.datasets.create(
        alice,
        DatasetCreate(name="mine", purpose="image", sub_purpose="classification", format="dir"),
    )
    with image_classes(tmp_path / "mine.zip", {"a": 2, "b": 2}).open("rb") as f:
        wb.datasets.upload(alice, ds.id, Split.TRAIN, wb.store.save_stream(f, 10**8), "m.zip")
    wb.datasets.publish(alice, ds.id)
    with pytest.raises(NotFound, match="dataset"):
        wb.training.create(bob, task(algo, ds.id))

    mine = wb.training.create(alice, task(private_algo, ds.id))
    with pytest.raises(NotFound):
        wb.training.get(bob, mine.id)
    assert wb.training.list(bob) == []
    shared = wb.training.create(alice, task(algo, digits, visibility="public"))
    assert wb.training.get(bob, shared.id).owner == "alice"
    assert [t.id for t in wb.training.list(bob)] == [shared.id]
    assert [t.id for t in wb.training.list(alice, TaskFilter(mine=True, q="DIGITS"))] == [
        shared.id,
        mine.id,
    ]
    for change in (
        lambda: wb.training.start(bob, shared.id),
        lambda: wb.training.update(bob, shared.id, TaskUpdate(name="x")),
        lambda: wb.training.delete(bob, shared.id),
    ):
        with pytest.raises(PermissionDenied):
            change()
    with pytest.raises(PermissionDenied, match="Only admins may mark something preset"):
        wb.training.create(bob, task(algo, digits, visibility="preset"))
    mine = wb.training.create(bob, task(algo, digits))
    with pytest.raises(PermissionDenied, match="Only admins may mark something preset"):
        wb.training.update(bob, mine.id, TaskUpdate(visibility="preset"))
    assert wb.training.update(bob, mine.id, TaskUpdate(visibility="public")).visibility == "public"


def test_ratio_resources_and_base_model_checks(wb, people, algo, digits, tmp_path):
    bob, alice = people.bob, people.alice
    ds = wb.datasets.create(
        alice,
        DatasetCreate(
            name="indep",
            purpose="image",
            sub_purpose="classification",
            format="dir",
            split_mode="independent",
            visibility="public",
        ),
    )
    for split in (Split.TRAIN, Split.TEST):
        with image_classes(tmp_path / f"{split}.zip", {"a": 2, "b": 2}).open("rb") as f:
            wb.datasets.upload(alice, ds.id, split, wb.store.save_stream(f, 10**8), "x.zip")
    wb.datasets.publish(alice, ds.id)
    with pytest.raises(InvalidInput, match="has an independent test set") as err:
        wb.training.create(bob, task(algo, ds.id, train_ratio=0.7))
    assert err.value.details["field"] == "train_ratio"
    assert wb.training.create(bob, task(algo, ds.id)).train_ratio is None

    with pytest.raises(InvalidInput, match=r"cpus 8\.0 > 4") as err:
        wb.training.create(bob, task(algo, digits, cpus=8))
    with pytest.raises(InvalidInput, match="memory_mb 9000 > 8192"):
        wb.training.create(bob, task(algo, digits, memory_mb=9000))
    with pytest.raises(InvalidInput, match="gpus 2 > 1"):
        wb.training.create(bob, task(algo, digits, gpus=2))
    with pytest.raises(NotFound, match="model version"):
        wb.training.create(bob, task(algo, digits, base_model_version_id=99))


def test_transfer_training_adds_to_the_base_models_versions(wb, people, algo, digits):
    bob = people.bob
    first = wb.training.create(bob, task(algo, digits, start=True))
    job = run_of(wb, first.id)
    write_model(folder(wb, first.id, job.id) / "output")
    wb.backend().finish(job.run_id, 0)
    base = wait_state(wb, bob, first.id, "succeeded")

    other = wb.training.create(people.alice, task(algo, digits, visibility="public"))
    with pytest.raises(NotFound, match="model version"):  # bob's model is private
        wb.training.update(
            people.alice, other.id, TaskUpdate(base_model_version_id=base.model_version_id)
        )

    tuned = wb.training.create(
        bob,
        task(algo, digits, name="tuned", base_model_version_id=base.model_version_id, start=True),
    )
    job = run_of(wb, tuned.id)
    record = json.loads((folder(wb, tuned.id, job.id) / "run.json").read_text())
    assert record["image"] == IMAGE
    write_model(folder(wb, tuned.id, job.id) / "output")
    wb.backend().finish(job.run_id, 0)
    done = wait_state(wb, bob, tuned.id, "succeeded")
    assert done.model_id == base.model_id
    version = wb.models.get_version(bob, done.model_version_id)
    assert (version.version, version.base_version_id) == (2, base.model_version_id)
    models = wb.models.list(bob)
    assert [(x.id, x.latest_version.version) for x in models] == [(base.model_id, 2)]
    assert wb.models.list(people.alice) == []
    assert wb.models.list(bob, ModelFilter(q="digits")) != []
    with pytest.raises(NotFound):
        wb.models.get(people.alice, base.model_id)
    with pytest.raises(NotFound):
        wb.models.get_version(people.alice, version.id)


# --- restarts ---------------------------------------------------------------------------------


def test_a_restart_loses_nothing(wb, people, algo, digits):
    """The runner stops (the server goes down) while a run goes on; a new runner on the same
    registry and store takes it up and finishes it, with the whole log and every metric."""
    bob = people.bob
    info = wb.training.create(bob, task(algo, digits, start=True))
    job = run_of(wb, info.id)
    fake = wb.backend()
    out = folder(wb, info.id, job.id) / "output"
    fake.emit(job.run_id, "before 1", "before 2")
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n')
    wait_until(lambda: len(wb.training.metrics(bob, info.id)) == 1)
    wait_until(lambda: "before 2" in task_log(wb, bob, info.id).text)
    wb.jobs.runner.stop()

    fake.emit(job.run_id, "while down")
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 2}\n')
    time.sleep(0.1)
    assert "while down" not in task_log(wb, bob, info.id).text

    server = Workbench.from_settings(wb.settings, backend_instance=wb.backend())
    server.jobs.runner.interval = 0.02
    server.start()
    again = server.training
    try:
        wait_until(lambda: "while down" in task_log(server, bob, info.id).text)
        fake.emit(job.run_id, "after")
        with (out / "metrics.jsonl").open("a") as f:
            f.write('{"epoch": 3}\n')
        write_model(out)
        fake.finish(job.run_id, 0)
        done = wait_until(lambda: (t := again.get(bob, info.id)).state == "succeeded" and t)
        assert done.model_version_id is not None
        log = task_log(server, bob, info.id).text
        assert log.startswith("loading\nbefore 1\nbefore 2\nwhile down\nafter\n")
        assert [p.values["epoch"] for p in again.metrics(bob, info.id)] == [1, 2, 3]
        assert containers(wb, info.id) == []
    finally:
        server.close()


def test_reconcile_requeues_unstarted_runs_and_fails_vanished_ones(wb, people, algo, digits):
    bob = people.bob
    gone = wb.training.create(bob, task(algo, digits, name="gone", start=True))
    job = run_of(wb, gone.id)
    wb.jobs.runner.stop()
    wb.backend().remove(job.run_id)
    claimed = wb.training.create(bob, task(algo, digits, name="claimed", start=True))
    with wb.registry.session() as s:  # claimed by a server that stopped before its start
        row = s.get(m.TrainingTask, claimed.id)
        row.state = "running"
        s.get(m.Job, row.job_id).state = "starting"
    cut = {}
    for name, state, message in (
        ("collected", "running", "exited with code 3; the last log lines:\nboom"),
        ("stopping", "stopping", ""),
    ):
        # a server stopped after removing the container, before recording the end state
        started = wb.training.create(bob, task(algo, digits, name=name, start=True))
        with wb.registry.session() as s:
            row = s.get(m.TrainingTask, started.id)
            row.state = "running"
            job = s.get(m.Job, row.job_id)
            job.state, job.message, job.run_id = state, message, f"gone-{name}"
            job.finished_at = job.created_at if message else None
        cut[name] = started.id

    server = Workbench.from_settings(wb.settings, backend_instance=wb.backend())
    server.jobs.runner.interval = 0.02
    server.start()
    again = server.training
    try:
        failed = wait_until(lambda: (t := again.get(bob, gone.id)).state == "failed" and t)
        assert "the container is gone" in failed.state_reason
        collected = wait_until(
            lambda: (t := again.get(bob, cut["collected"])).state == "failed" and t
        )
        assert collected.state_reason == "exited with code 3; the last log lines:\nboom"
        wait_until(lambda: again.get(bob, cut["stopping"]).state == "stopped")
        wait_until(lambda: again.get(bob, claimed.id).state == "running")
        assert run_of(wb, claimed.id).run_id
        again.stop(bob, claimed.id)
    finally:
        server.close()


def test_a_run_past_the_owners_memory_quota_is_not_queued(wb, people, algo, digits):
    """The memory a run reserves counts against its owner's quota (workbench quota set)."""
    from workbench.errors import QuotaExceeded
    from workbench.schemas.quotas import QuotaUpdate

    wb.quotas.set("bob", QuotaUpdate(memory_mb=1024))
    info = wb.training.create(people.bob, task(algo, digits, memory_mb=2048))
    with pytest.raises(QuotaExceeded) as refused:
        wb.training.start(people.bob, info.id)
    assert refused.value.details == {"quota": "memory_mb", "limit": 1024, "used": 0, "asked": 2048}
    assert "training task digits-run" in refused.value.message
    assert wb.training.get(people.bob, info.id).state == "draft"
    with wb.registry.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(m.Job)) == 0
    wb.quotas.set("bob", QuotaUpdate(memory_mb=4096))
    assert wb.training.start(people.bob, info.id).state == "queued"
