"""The algorithm library on the fake backend: the registry rules (filters, visibility,
ownership, purposes, parameter specs), the images (uploads, workspace tars, pulls) with
their checks and states, publishing, taking offline and deleting."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from tests.conftest import accept_invitations, add_people, make_workbench
from tests.services.test_builds import make_env, make_workspace
from workbench.algorithms.jobs import image_tag
from workbench.algorithms.schemas import AlgorithmCreate, AlgorithmFilter, AlgorithmUpdate
from workbench.algorithms.service import AlgorithmService
from workbench.backends.local import LocalBackend
from workbench.datasets.schemas import DatasetCreate
from workbench.errors import (
    ArchiveLimitExceeded,
    BackendError,
    Conflict,
    CorruptArchive,
    ImageNotFound,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unsupported,
    UnsupportedArchive,
)
from workbench.registry import models as m
from workbench.services import Workbench
from workbench.users import Actor

CMD = ["python", "/app/train.py"]
RUNNABLE = {
    "Cmd": CMD,
    "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
    "ExposedPorts": {"8080/tcp": {}},
    "WorkingDir": "/app",
    "User": "1000",
}
BAYES_TRAIN = {
    "env": {
        "EPOCHS": {"type": "int", "default": 10, "description": "passes over the data"},
        "ALPHA": {"type": "float", "default": 1.0},
    }
}
BAYES_PREDICT = {
    "api_spec": {
        "route": "/predict",
        "method": "POST",
        "params": [{"name": "text", "type": "string", "example": "a goal"}],
    }
}


def image_tar(
    path: Path,
    *,
    tags: tuple[str, ...] = ("corp/bayes-train:2.0",),
    config: dict[str, Any] | None = None,
    images: int = 1,
    leave_out_layer: bool = False,
) -> Path:
    """A small image in the docker save layout; its digest is :func:`digest_of`."""
    blob = _config_blob(RUNNABLE if config is None else config)
    config_name = f"{hashlib.sha256(blob).hexdigest()}.json"
    entries = [
        {"Config": config_name, "RepoTags": list(tags), "Layers": ["aaaa/layer.tar"]}
    ] * images
    files = {"manifest.json": json.dumps(entries).encode(), config_name: blob}
    if not leave_out_layer:
        files["aaaa/layer.tar"] = b"layer bytes"
    with tarfile.open(path, "w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _config_blob(config: dict[str, Any]) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": config}).encode()


def digest_of(config: dict[str, Any] | None = None) -> str:
    blob = _config_blob(RUNNABLE if config is None else config)
    return f"sha256:{hashlib.sha256(blob).hexdigest()}"


def stored(wb, path: Path):
    with path.open("rb") as f:
        return wb.store.save_stream(f, 10**8)


def create(algos: AlgorithmService, actor, **fields: Any):
    fields.setdefault("name", "bayes")
    fields.setdefault("purpose", "text")
    fields.setdefault("sub_purpose", "classification")
    return algos.create(actor, AlgorithmCreate.model_validate(fields))


def has_image(backend, ref: str) -> bool:
    try:
        backend.inspect_image(ref)
    except ImageNotFound:
        return False
    return True


@pytest.fixture
def wb(tmp_path, registry_url):
    workbench = make_workbench(tmp_path / "home", registry_url, backend="fake")
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


@pytest.fixture
def algos(wb) -> AlgorithmService:
    return wb.algorithms


@pytest.fixture
def backend(wb):
    return wb.backend()


def add_task(wb, actor: Actor, algorithm_id: int) -> int:
    """A training task row referring to the algorithm (as the training service writes it)."""
    dataset = wb.datasets.create(
        actor,
        DatasetCreate(
            name=f"texts-{algorithm_id}",
            purpose="text",
            sub_purpose="classification",
            format="single_text",
        ),
    )
    with wb.registry.session() as s:
        task = m.TrainingTask(
            name="t",
            purpose="text",
            sub_purpose="classification",
            algorithm_id=algorithm_id,
            dataset_id=dataset.id,
            owner_id=actor.id,
        )
        s.add(task)
        s.flush()
        return task.id


# --- the registry -------------------------------------------------------------------------


def test_create_and_read(algos, people):
    algo = create(
        algos,
        people.bob,
        description="multinomial naive Bayes on TF-IDF",
        train={**BAYES_TRAIN, "command": ["python", "train.py"], "device": "cpu"},
        predict=BAYES_PREDICT,
    )
    assert (algo.name, algo.owner, algo.visibility, algo.state) == (
        "bayes",
        "bob",
        "private",
        "draft",
    )
    assert algo.environment_id is None
    assert algo.train.state == algo.predict.state == "missing"
    assert algo.train.settings.command == ["python", "train.py"]
    assert algo.train.settings.env["EPOCHS"].default == 10
    assert algo.predict.settings.api_spec is not None
    assert algo.predict.settings.api_spec.params[0].name == "text"
    assert algos.get(people.bob, algo.id) == algo
    with pytest.raises(Conflict, match="already is an algorithm named 'bayes'"):
        create(algos, people.bob)
    create(algos, people.alice)  # names are unique per owner


def test_list_filters(algos, people):
    mine = create(algos, people.bob, name="mine", description="Bayes for news")
    public = create(algos, people.alice, name="yolo", purpose="image",
                    sub_purpose="object_detection", visibility="public")  # fmt: skip
    preset = create(algos, people.alice, name="resnet", purpose="image",
                    sub_purpose="classification", visibility="preset")  # fmt: skip
    create(algos, people.alice, name="hidden")  # alice's private one

    def names(**filters: Any) -> list[str]:
        return [a.name for a in algos.list(people.bob, AlgorithmFilter(**filters))]

    assert names() == ["mine", "yolo", "resnet"]
    assert names(visibility="mine") == ["mine"]
    assert names(visibility="public") == ["yolo"]
    assert names(visibility="preset") == ["resnet"]
    assert names(purpose="image") == ["yolo", "resnet"]
    assert names(sub_purpose="classification") == ["mine", "resnet"]
    assert names(q="NEWS") == ["mine"]
    assert names(state="online") == []
    assert {a.id for a in algos.list(people.alice)} == {public.id, preset.id, mine.id + 3}
    with pytest.raises(ValidationError):
        AlgorithmFilter(visibility="everyone")


def test_visibility_and_ownership(algos, people):
    private = create(algos, people.alice, name="private")
    public = create(algos, people.alice, name="public", visibility="public")
    with pytest.raises(NotFound):
        algos.get(people.bob, private.id)
    assert algos.get(people.bob, public.id).owner == "alice"
    for change in (
        lambda: algos.update(people.bob, public.id, AlgorithmUpdate(description="x")),
        lambda: algos.delete(people.bob, public.id),
        lambda: algos.publish(people.bob, public.id),
        lambda: algos.check_upload(people.bob, public.id, "train"),
    ):
        with pytest.raises(PermissionDenied, match="Only the owner of algorithm"):
            change()
    with pytest.raises(NotFound):
        algos.delete(people.bob, private.id)

    with pytest.raises(PermissionDenied, match="Only admins may mark something preset"):
        create(algos, people.bob, visibility="preset")
    bobs = create(algos, people.bob, name="bobs")
    with pytest.raises(PermissionDenied, match="Only admins"):
        algos.update(people.bob, bobs.id, AlgorithmUpdate(visibility="preset"))
    assert algos.update(people.bob, bobs.id, AlgorithmUpdate(visibility="public")).visibility == (
        "public"
    )


def test_admins_change_presets_of_other_admins(wb, algos, people):
    preset = create(algos, people.alice, name="resnet", visibility="preset")
    info = wb.users.add_user("carol", role="admin")
    carol = Actor(info.id, info.username, info.role)
    changed = algos.update(carol, preset.id, AlgorithmUpdate(description="curated"))
    assert changed.description == "curated"
    with pytest.raises(PermissionDenied):
        algos.update(people.bob, preset.id, AlgorithmUpdate(description="mine now"))


def test_purposes_and_settings_are_checked(algos, people):
    with pytest.raises(InvalidInput, match="Sub-purpose ner does not belong to purpose image"):
        create(algos, people.bob, purpose="image", sub_purpose="ner")
    with pytest.raises(InvalidInput, match="a training image serves no API"):
        create(algos, people.bob, train=BAYES_PREDICT)
    twice = {"api_spec": {"params": [{"name": "text"}, {"name": "text"}]}}
    with pytest.raises(InvalidInput, match="names text more than once"):
        create(algos, people.bob, predict=twice)
    algo = create(algos, people.bob)
    with pytest.raises(InvalidInput, match="does not belong"):
        algos.update(people.bob, algo.id, AlgorithmUpdate(sub_purpose="object_detection"))
    with pytest.raises(InvalidInput, match="cannot be null"):
        algos.update(people.bob, algo.id, AlgorithmUpdate.model_validate({"name": None}))


@pytest.mark.parametrize(
    ("train", "words"),
    [
        ({"env": {"EPOCHS": {"type": "int", "default": "ten"}}}, "not a whole number"),
        ({"env": {"DATASET_DIR": {"type": "str"}}}, "DATASET_DIR is set by the platform"),
        ({"env": {"9LIVES": {"type": "int"}}}, "String should match pattern"),
        ({"env": {"X": {"type": "complex"}}}, "Input should be 'int', 'float', 'str' or 'bool'"),
        ({"env": {"X": {"type": "bool", "default": "maybe"}}}, "not a bool"),
        ({"device": "tpu"}, "Input should be 'cpu' or 'gpu'"),
        ({"commands": ["x"]}, "Extra inputs are not permitted"),
    ],
)
def test_parameter_specs_are_validated(train, words):
    with pytest.raises(ValidationError, match=words):
        AlgorithmCreate.model_validate(
            {"name": "x", "purpose": "text", "sub_purpose": "ner", "train": train}
        )


# --- images ---------------------------------------------------------------------------------


def test_upload_loads_tags_and_describes_the_image(wb, algos, people, backend, tmp_path):
    algo = create(algos, people.bob)
    tar = image_tar(tmp_path / "train.tar")
    info = algos.upload_image(people.bob, algo.id, "train", stored(wb, tar), "train.tar")

    image = info.train
    digest = digest_of()
    assert (image.state, image.digest, image.source, image.source_detail) == (
        "ready",
        digest,
        "upload",
        "train.tar",
    )
    assert image.image_ref == f"workbench/algo-{algo.id}-train:{digest[7:19]}"
    assert image.image_ref == image_tag(algo.id, "train", digest)
    assert image.tags == ["corp/bayes-train:2.0"]
    assert image.size == tar.stat().st_size
    assert image.config is not None
    assert image.config.cmd == CMD and image.config.entrypoint is None
    assert image.config.env == {"PATH": "/usr/bin", "LANG": "C.UTF-8"}
    assert (image.config.exposed_ports, image.config.workdir, image.config.user) == (
        [8080],
        "/app",
        "1000",
    )
    assert info.predict.state == "missing"
    loaded = backend.inspect_image(image.image_ref)
    assert (loaded.id, loaded.tags) == (digest, (image.image_ref,))
    assert not has_image(backend, "corp/bayes-train:2.0")  # the tar's own tag went again

    # a new image replaces the old one, whose tag is removed
    other = {**RUNNABLE, "Cmd": ["python", "/app/v2.py"]}
    again = algos.upload_image(
        people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "v2.tar", config=other))
    )
    assert again.train.digest == digest_of(other) and again.train.config.cmd[-1] == "/app/v2.py"
    assert not has_image(backend, image.image_ref)
    assert has_image(backend, again.train.image_ref)


def test_tags_that_existed_before_are_kept_and_restored(wb, algos, people, backend, tmp_path):
    before = backend.add_image("corp/bayes-train:2.0", cmd=["old"])
    algo = create(algos, people.bob)
    info = algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "t")))
    assert backend.inspect_image("corp/bayes-train:2.0").id == before.id  # put back
    assert backend.inspect_image(info.train.image_ref).id == digest_of()


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda p: _text_file(p), UnsupportedArchive, "not a tar archive"),
        (lambda p: image_tar(p, leave_out_layer=True), CorruptArchive, "aaaa/layer.tar"),
        (lambda p: image_tar(p, tags=()), InvalidInput, "no tag"),
        (lambda p: image_tar(p, images=2), InvalidInput, "holds 2 images"),
        (lambda p: image_tar(p, config={"Env": ["A=1"]}), InvalidInput, "neither an ENTRYPOINT"),
        (lambda p: _rootfs_tar(p), CorruptArchive, "no manifest.json"),
    ],
)
def test_bad_tars_change_nothing(wb, algos, people, backend, tmp_path, make, error, words):
    algo = create(algos, people.bob)
    good = algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "g")))
    with pytest.raises(error, match=words):
        algos.upload_image(people.bob, algo.id, "train", stored(wb, make(tmp_path / "bad.tar")))
    after = algos.get(people.bob, algo.id)
    assert after == good
    assert not has_image(backend, "corp/bayes-train:2.0")
    assert backend.inspect_image(good.train.image_ref).id == good.train.digest


def _text_file(path: Path) -> Path:
    path.write_text("hello")
    return path


def _rootfs_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"x\n"))
    return path


def test_a_tar_over_the_limit_is_refused(wb, people, backend, tmp_path):
    algos = wb.algorithms
    algos.max_image_bytes = 100
    algo = create(algos, people.bob)
    with pytest.raises(ArchiveLimitExceeded, match="over the limit") as caught:
        algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "t")))
    assert caught.value.status == 413
    assert algos.get(people.bob, algo.id).train.state == "missing"
    assert not has_image(backend, "corp/bayes-train:2.0")


def test_an_image_without_a_command_needs_the_settings_command(wb, algos, people, tmp_path):
    bare = {"Env": ["A=1"]}
    algo = create(algos, people.bob, train={"command": ["python", "train.py"]})
    info = algos.upload_image(
        people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "t", config=bare))
    )
    assert info.train.state == "ready" and info.train.config.cmd is None
    with pytest.raises(InvalidInput, match="neither an ENTRYPOINT nor a CMD"):
        algos.update(people.bob, algo.id, AlgorithmUpdate(train={}))
    assert algos.update(people.bob, algo.id, AlgorithmUpdate(train={"command": ["x"]})).train


def test_an_engine_failure_ends_failed_and_keeps_the_previous_image(
    wb, algos, people, backend, tmp_path, monkeypatch
):
    algo = create(algos, people.bob)
    good = algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "g")))

    def disk_full(tar: Path) -> list[str]:
        raise BackendError("Docker Engine could not load it: no space left on device")

    monkeypatch.setattr(backend, "load_image", disk_full)
    other = {**RUNNABLE, "Cmd": ["other"]}
    with pytest.raises(BackendError, match="no space left"):
        algos.upload_image(
            people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "o", config=other))
        )
    failed = algos.get(people.bob, algo.id).train
    assert failed.state == "failed" and "no space left" in failed.state_reason
    assert (failed.image_ref, failed.digest) == (good.train.image_ref, good.train.digest)
    assert has_image(backend, good.train.image_ref)
    with pytest.raises(Conflict, match="training image is failed"):
        algos.publish(people.bob, algo.id)


def test_one_load_at_a_time(wb, algos, people, backend, tmp_path, monkeypatch):
    algo = create(algos, people.bob)
    entered, release = threading.Event(), threading.Event()
    real_load = backend.load_image

    def slow_load(tar: Path) -> list[str]:
        entered.set()
        release.wait(10)
        return real_load(tar)

    monkeypatch.setattr(backend, "load_image", slow_load)
    first = stored(wb, image_tar(tmp_path / "a"))
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(algos.upload_image(people.bob, algo.id, "train", first))
    )
    thread.start()
    try:
        assert entered.wait(10)
        assert algos.get(people.bob, algo.id).train.state == "loading"
        with pytest.raises(Conflict, match="being loaded already"):
            algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "b")))
        with pytest.raises(Conflict, match="being loaded already"):
            algos.check_upload(people.bob, algo.id, "train")
        with pytest.raises(Conflict, match="loading an image"):
            algos.delete(people.bob, algo.id)
        algos.check_upload(people.bob, algo.id, "predict")  # the other image is free
    finally:
        release.set()
        thread.join(10)
    assert results[0].train.state == "ready"


def test_a_load_cut_by_a_server_stop_ends_failed_at_the_next_start(wb, algos, people, tmp_path):
    algo = create(algos, people.bob)
    tar = image_tar(tmp_path / "a.tar")
    ready = algos.upload_image(people.bob, algo.id, "train", stored(wb, tar))
    with wb.registry.session() as s:  # what a server killed during the next load leaves
        image = s.scalar(
            sa.select(m.AlgorithmImage).where(
                m.AlgorithmImage.algorithm_id == algo.id, m.AlgorithmImage.kind == "train"
            )
        )
        image.state = "loading"

    assert algos.reconcile() == [(algo.id, "train")]

    after = algos.get(people.bob, algo.id).train
    assert after.state == "failed" and "load it again" in after.state_reason
    assert after.image_ref == ready.train.image_ref  # the previous image stays
    assert algos.reconcile() == []


def test_images_from_a_workspace(wb, algos, people, backend, tmp_path):
    env_id = make_env(wb, people.alice.id)
    ws = make_workspace(wb, people.bob, env_id)
    folder = wb.workspaces.folder(ws) / "docker_image"
    image_tar(folder / "train-text-bayes.tar")
    image_tar(folder / "model.tar")
    image_tar(folder / "predict-api.tar", tags=("workbench/ws-1-predict-api:latest",))
    algo = create(algos, people.bob)

    for filename, error, words in [
        ("model.tar", InvalidInput, "its name must be train-<name>.tar"),
        ("predict-api.tar", InvalidInput, "its name must be train-<name>.tar"),
        ("train-Bad.tar", InvalidInput, "its name must be"),
        ("../code/train-x.tar", InvalidInput, "its name must be"),
        ("train-missing.tar", NotFound, "does not exist in this workspace"),
    ]:
        with pytest.raises(error, match=words):
            algos.image_from_workspace(people.bob, algo.id, "train", ws, filename)
    outside = image_tar(tmp_path / "elsewhere.tar")
    (folder / "train-link.tar").symlink_to(outside)
    with pytest.raises(InvalidInput, match="symbolic link"):
        algos.image_from_workspace(people.bob, algo.id, "train", ws, "train-link.tar")
    with pytest.raises(NotFound, match="workspace"):  # alice is no member
        algos.image_from_workspace(people.alice, create(algos, people.alice).id, "train", ws, "x")
    assert algos.get(people.bob, algo.id).train.state == "missing"

    info = algos.image_from_workspace(people.bob, algo.id, "train", ws, "train-text-bayes.tar")
    assert info.train.state == "ready" and info.environment_id == env_id
    assert (info.train.source, info.train.source_detail) == (
        "workspace",
        f"workspace {ws}: docker_image/train-text-bayes.tar",
    )
    info = algos.image_from_workspace(people.bob, algo.id, "predict", ws, "predict-api.tar")
    assert info.predict.state == "ready"
    assert not has_image(backend, "workbench/ws-1-predict-api:latest")


def test_a_member_of_the_workspace_may_publish_its_tars(wb, algos, people, tmp_path):
    ws = make_workspace(wb, people.bob, make_env(wb, people.alice.id))
    image_tar(wb.workspaces.folder(ws) / "docker_image" / "train-x.tar")
    team = wb.users.create_team(people.bob, "nlp")
    wb.users.add_team_member(people.bob, team.id, "alice")
    accept_invitations(wb, people.alice)
    wb.workspaces.add_member(people.bob, ws, "alice")
    accept_invitations(wb, people.alice)
    algo = create(algos, people.alice)
    assert algos.image_from_workspace(people.alice, algo.id, "train", ws, "train-x.tar").train


def test_pull_needs_a_docker_engine(algos, people):
    algo = create(algos, people.bob)
    with pytest.raises(Unsupported, match="pulling an image needs a Docker Engine") as caught:
        algos.pull_image(people.bob, algo.id, "train", "registry.example/team/bayes:2.0-cpu")
    assert caught.value.status == 501
    with pytest.raises(InvalidInput, match="not an image reference"):
        algos.pull_image(people.bob, algo.id, "train", "--help")
    with pytest.raises(InvalidInput, match="not an image kind"):
        algos.pull_image(people.bob, algo.id, "test", "a/b:1")
    assert algos.get(people.bob, algo.id).train.state == "missing"


def test_a_backend_without_docker_images_changes_nothing(wb, people, tmp_path):
    local = Workbench.from_settings(wb.settings, backend_instance=LocalBackend(tmp_path / "l"))
    algos = local.algorithms
    algo = create(algos, people.bob)
    with pytest.raises(Unsupported, match="needs Docker"):
        algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "t")))
    assert algos.get(people.bob, algo.id).train.state == "missing"
    local.close()


# --- online, offline, delete ----------------------------------------------------------------


def test_publish_and_take_offline(wb, algos, people, backend, tmp_path):
    algo = create(algos, people.bob)
    with pytest.raises(Conflict, match="its training image is missing"):
        algos.publish(people.bob, algo.id)
    algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "t")))
    online = algos.publish(people.bob, algo.id)
    assert online.state == "online"
    assert [a.id for a in algos.list(people.bob, AlgorithmFilter(state="online"))] == [algo.id]

    tar = stored(wb, image_tar(tmp_path / "p"))
    for refused in (
        lambda: algos.upload_image(people.bob, algo.id, "predict", tar),
        lambda: algos.check_upload(people.bob, algo.id, "train"),
        lambda: algos.update(people.bob, algo.id, AlgorithmUpdate(train={"command": ["x"]})),
        lambda: algos.update(people.bob, algo.id, AlgorithmUpdate(purpose="image")),
    ):
        with pytest.raises(Conflict, match="is online"):
            refused()
    renamed = algos.update(people.bob, algo.id, AlgorithmUpdate(name="bayes2", description="d"))
    assert (renamed.name, renamed.state) == ("bayes2", "online")

    offline = algos.take_offline(people.bob, algo.id)
    assert offline.state == "offline"
    with pytest.raises(Conflict, match="is offline, not online"):
        algos.take_offline(people.bob, algo.id)
    assert algos.upload_image(people.bob, algo.id, "predict", tar).predict.state == "ready"
    assert algos.publish(people.bob, algo.id).state == "online"


def test_publishing_needs_a_command(wb, algos, people, tmp_path):
    algo = create(algos, people.bob, train={"command": ["python", "train.py"]})
    bare = image_tar(tmp_path / "t", config={"Env": ["A=1"]})
    algos.upload_image(people.bob, algo.id, "train", stored(wb, bare))
    with pytest.raises(InvalidInput, match="neither an ENTRYPOINT nor a CMD"):
        algos.update(people.bob, algo.id, AlgorithmUpdate(train={"command": []}))
    with wb.registry.session() as s:  # settings written by other means than update()
        s.execute(
            sa.update(m.AlgorithmImage)
            .where(m.AlgorithmImage.algorithm_id == algo.id)
            .values(command=[])
        )
    with pytest.raises(InvalidInput, match="set the command"):
        algos.publish(people.bob, algo.id)


def test_delete_is_refused_while_a_task_uses_it(wb, algos, people, backend, tmp_path):
    algo = create(algos, people.bob)
    info = algos.upload_image(people.bob, algo.id, "train", stored(wb, image_tar(tmp_path / "t")))
    task_id = add_task(wb, people.bob, algo.id)
    with pytest.raises(Conflict, match=rf"used by training tasks \[{task_id}\]") as caught:
        algos.delete(people.bob, algo.id)
    assert caught.value.details["training_tasks"] == [task_id]
    assert has_image(backend, info.train.image_ref)
    with wb.registry.session() as s:
        s.delete(s.get(m.TrainingTask, task_id))
    algos.delete(people.bob, algo.id)
    with pytest.raises(NotFound):
        algos.get(people.bob, algo.id)
    assert not has_image(backend, info.train.image_ref)
    with wb.registry.session() as s:
        assert s.query(m.AlgorithmImage).filter_by(algorithm_id=algo.id).count() == 0


# --- presets ---------------------------------------------------------------------------------


def test_sync_presets(tmp_path, algos, people):
    root = tmp_path / "algorithms"
    (root / "text-bayes").mkdir(parents=True)
    spec = {
        "name": "text-bayes",
        "description": "Bayes",
        "purpose": "text",
        "sub_purpose": "classification",
        "train": {**BAYES_TRAIN, "command": ["python", "/app/train.py"]},
        "predict": BAYES_PREDICT,
        "notes": "ignored",
    }
    (root / "text-bayes" / "algorithm.json").write_text(json.dumps(spec))
    (root / "README.md").write_text("not an algorithm")
    with pytest.raises(PermissionDenied, match="Only admins"):
        algos.sync_presets(people.bob, root)
    [first] = algos.sync_presets(people.alice, root)
    assert (first.name, first.visibility, first.state, first.train.settings.command) == (
        "text-bayes",
        "preset",
        "draft",
        ["python", "/app/train.py"],
    )
    spec["description"] = "Multinomial naive Bayes"
    (root / "text-bayes" / "algorithm.json").write_text(json.dumps(spec))
    [again] = algos.sync_presets(people.alice, root)
    assert (again.id, again.description) == (first.id, "Multinomial naive Bayes")
    assert [a.name for a in algos.list(people.bob, AlgorithmFilter(visibility="preset"))] == [
        "text-bayes"
    ]
    (root / "text-bayes" / "algorithm.json").write_text('{"name": "x"}')
    with pytest.raises(InvalidInput, match=r"not a valid algorithm\.json"):
        algos.sync_presets(people.alice, root)


# --- the workspace's report before publishing ---------------------------------------------


def test_inspect_tar_reports_what_publishing_would_find(wb, people, tmp_path):
    ws = make_workspace(wb, people.bob, make_env(wb, people.alice.id))
    folder = wb.workspaces.folder(ws) / "docker_image"
    image_tar(folder / "train-bayes.tar", config={"Env": ["A=1"]})
    image_tar(folder / "model.tar")
    image_tar(folder / "predict-broken.tar", leave_out_layer=True)
    builds = wb.builds

    good = builds.inspect_tar(people.bob, ws, "train-bayes.tar")
    assert (good.ok, good.naming_ok, good.kind, good.name, good.problems) == (
        True,
        True,
        "train",
        "bayes",
        [],
    )
    assert (good.tags, good.digest, good.layers) == (
        ["corp/bayes-train:2.0"],
        digest_of({"Env": ["A=1"]}),
        1,
    )
    assert good.config is not None and good.config.env == {"A": "1"}
    assert good.warnings and "neither an ENTRYPOINT nor a CMD" in good.warnings[0]

    misnamed = builds.inspect_tar(people.bob, ws, "model.tar")
    assert (misnamed.ok, misnamed.naming_ok, misnamed.kind) == (False, False, None)
    assert "is not named <kind>-<name>.tar" in misnamed.problems[0]
    assert misnamed.digest == digest_of()  # the image itself is fine

    broken = builds.inspect_tar(people.bob, ws, "predict-broken.tar")
    assert not broken.ok and "does not hold: aaaa/layer.tar" in broken.problems[0]
    assert broken.digest == "" and broken.config is None

    with pytest.raises(InvalidInput, match="not a file name of docker_image/"):
        builds.inspect_tar(people.bob, ws, "../code/x.tar")
    with pytest.raises(NotFound, match="does not exist"):
        builds.inspect_tar(people.bob, ws, "train-none.tar")
    with pytest.raises(NotFound, match="workspace"):
        builds.inspect_tar(people.alice, ws, "train-bayes.tar")
