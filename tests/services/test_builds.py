"""Workspace image builds: code/<project>/Dockerfile -> docker_image/<kind>-<name>.tar, on
the fake backend for every rule, and once for real on the Docker Engine."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from tests.conftest import (
    accept_invitations,
    add_environment,
    add_people,
    build_tar,
    make_workbench,
)
from workbench.backends.base import RunSpec, RunState
from workbench.backends.local import LocalBackend
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.errors import (
    BuildFailed,
    Conflict,
    ImageNotFound,
    InvalidInput,
    NotFound,
    Unsupported,
)
from workbench.users import Actor
from workbench.workspaces.builds import WorkspaceBuilds
from workbench.workspaces.schemas import WorkspaceCreate

#: a workspace's image starts FROM its environment's (passed as WORKBENCH_ENV_IMAGE)
DOCKERFILE = (
    'ARG WORKBENCH_ENV_IMAGE\nFROM ${WORKBENCH_ENV_IMAGE}\nCMD ["python3", "-c", "print(1)"]\n'
)


def make_env(wb, owner_id: int) -> int:
    return add_environment(
        wb,
        name="python",
        framework="python",
        image_ref=DEFAULT_BASE_IMAGE,
        owner_id=owner_id,
        visibility="preset",
    )


def make_workspace(wb, actor, env_id: int) -> int:
    spec = WorkspaceCreate.model_validate(
        {
            "name": "ws",
            "purpose": "text",
            "sub_purpose": "classification",
            "environment_id": env_id,
            "code": {"kind": "upload"},
        }
    )
    return wb.workspaces.create(actor, spec).id


@pytest.fixture
def wb(tmp_path):
    workbench = make_workbench(tmp_path / "home", backend="fake")
    workbench.backend().add_image(DEFAULT_BASE_IMAGE)
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


@pytest.fixture
def ws(wb, people):
    """bob's workspace with the project code/demo (a Dockerfile)."""
    workspace_id = make_workspace(wb, people.bob, make_env(wb, people.alice.id))
    project = wb.workspaces.folder(workspace_id) / "code" / "demo"
    project.mkdir()
    (project / "Dockerfile").write_text(DOCKERFILE)
    return workspace_id


@pytest.fixture
def builds(wb):
    return wb.builds


def image_folder(wb, workspace_id):
    return wb.workspaces.folder(workspace_id) / "docker_image"


def test_build_saves_a_tar_and_removes_the_image(wb, people, ws, builds):
    backend = wb.backend()
    lines = build_tar(wb, people.bob, ws, "demo", "train", "demo-cpu")
    tag = f"workbench/ws-{ws}-train-demo-cpu:latest"
    assert lines[:2] == ["copying code/demo for the build", f"building code/demo as {tag}"]
    assert "Step 2/3 : FROM ${WORKBENCH_ENV_IMAGE}" in lines
    assert lines[-2] == f"saving {tag} to docker_image/train-demo-cpu.tar"
    assert "succeeded: saved docker_image/train-demo-cpu.tar (" in lines[-1]
    tar = image_folder(wb, ws) / "train-demo-cpu.tar"
    assert [p.name for p in image_folder(wb, ws).iterdir()] == [tar.name]  # no .part left
    if os.geteuid() == 0:
        assert (tar.stat().st_uid, tar.stat().st_gid) == (1000, 1000)
    with pytest.raises(ImageNotFound):  # the tar is the artifact
        backend.inspect_image(tag)
    [loaded] = backend.load_image(tar)  # by id: the tag in the tar is not applied
    assert backend.inspect_image(loaded).cmd == ("python3", "-c", "print(1)")

    [listed] = builds.images(people.bob, ws)
    assert (listed.path, listed.kind, listed.name) == (
        "docker_image/train-demo-cpu.tar",
        "train",
        "demo-cpu",
    )
    assert listed.size == tar.stat().st_size


def test_members_build_and_others_do_not_see_the_workspace(wb, people, ws, builds):
    with pytest.raises(NotFound, match="workspace"):
        builds.build(people.alice, ws, "demo", "predict", "api")
    with pytest.raises(NotFound, match="workspace"):
        builds.images(people.alice, ws)
    team = wb.users.create_team(people.bob, "nlp")
    wb.users.add_team_member(people.bob, team.id, "alice")
    accept_invitations(wb, people.alice)
    wb.workspaces.add_member(people.bob, ws, "alice")
    accept_invitations(wb, people.alice)
    build_tar(wb, people.alice, ws, "demo", "predict", "api")
    assert [t.filename for t in builds.images(people.bob, ws)] == ["predict-api.tar"]


@pytest.mark.parametrize(
    ("project", "kind", "name", "error", "words"),
    [
        ("../demo", "train", "x", InvalidInput, "must be a folder inside code/"),
        ("/etc", "train", "x", InvalidInput, "must be a folder inside code/"),
        ("escape", "train", "x", InvalidInput, "leads outside code/"),
        ("", "train", "x", InvalidInput, "project '' is not valid"),
        ("missing", "train", "x", NotFound, "code/missing does not exist"),
        ("empty", "train", "x", InvalidInput, "code/empty has no Dockerfile"),
        ("demo", "test", "x", InvalidInput, "kind is 'train' or 'predict'"),
        ("demo", "train", "Bad Name", InvalidInput, "name 'Bad Name' is not valid"),
        ("demo", "train", "x-", InvalidInput, "not starting or ending"),
        ("demo", "train", "-x", InvalidInput, "name '-x'"),
        ("demo", "train", "a..b", InvalidInput, "name 'a..b'"),
        ("demo", "train", "a/b", InvalidInput, "name 'a/b'"),
        ("demo", "train", "x" * 65, InvalidInput, "up to 64"),
    ],
)
def test_bad_requests_are_refused_before_building(
    wb, people, ws, builds, tmp_path, project, kind, name, error, words
):
    code = wb.workspaces.folder(ws) / "code"
    (code / "empty").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text(DOCKERFILE)
    (code / "escape").symlink_to(outside)
    with pytest.raises(error, match=words):
        builds.build(people.bob, ws, project, kind, name)
    assert list(image_folder(wb, ws).iterdir()) == []


def test_a_failed_build_writes_no_tar_and_keeps_the_last_one(wb, people, ws):
    build_tar(wb, people.bob, ws, "demo", "train", "demo")
    tar = image_folder(wb, ws) / "train-demo.tar"
    before = tar.read_bytes()
    tag = f"workbench/ws-{ws}-train-demo:latest"
    wb.backend().fail_build(
        tag,
        "The command '/bin/sh -c make' returned a non-zero code: 2",
        lines=["make: *** [build] Error 2"],
    )
    with pytest.raises(BuildFailed, match="non-zero code: 2") as failed:
        build_tar(wb, people.bob, ws, "demo", "train", "demo")
    seen = failed.value.lines  # type: ignore[attr-defined]
    assert "make: *** [build] Error 2" in seen
    assert not any(line.startswith("saving") for line in seen)
    assert [p.name for p in image_folder(wb, ws).iterdir()] == ["train-demo.tar"]
    assert tar.read_bytes() == before
    wb.backend().fail_build(f"workbench/ws-{ws}-predict-fresh:latest")
    with pytest.raises(BuildFailed):
        build_tar(wb, people.bob, ws, "demo", "predict", "fresh")
    assert not (image_folder(wb, ws) / "predict-fresh.tar").exists()


def test_the_same_tar_is_built_once_at_a_time(wb, people, ws, builds):
    first = builds.build(people.bob, ws, "demo", "train", "demo")  # queued: no runner yet
    with pytest.raises(Conflict, match="being built already"):
        builds.build(people.bob, ws, "demo", "train", "demo")
    other = builds.build(people.bob, ws, "demo", "predict", "demo")  # another tar: fine
    assert wb.jobs.wait(first.job_id).state == "succeeded"
    assert wb.jobs.wait(other.job_id).state == "succeeded"
    build_tar(wb, people.bob, ws, "demo", "train", "demo")  # over: built again


def test_the_build_log_is_the_job_log_its_workspace_sees(wb, people, ws, builds):
    started = builds.build(people.bob, ws, "demo", "train", "demo")
    assert started.path == "docker_image/train-demo.tar"
    job = wb.jobs.wait(started.job_id)
    assert (job.kind, job.target_type, job.target_id) == ("workspace-build", "workspace", ws)
    assert job.result["path"] == started.path
    added = wb.users.add_user("carol")
    carol = Actor(added.id, added.username, added.role)
    with pytest.raises(NotFound):  # not a member: neither the job nor its log
        wb.jobs.tail(carol, started.job_id)
    team = wb.users.create_team(people.bob, "nlp")
    wb.users.add_team_member(people.bob, team.id, "carol")
    accept_invitations(wb, carol)
    wb.workspaces.add_member(people.bob, ws, "carol")
    accept_invitations(wb, carol)
    assert "building code/demo" in wb.jobs.tail(carol, started.job_id).text
    assert wb.jobs.get(carol, started.job_id).state == "succeeded"
    with pytest.raises(NotFound):  # reading is not owning: she cannot cancel bob's job
        wb.jobs.cancel(carol, started.job_id)


def test_images_lists_only_tars(wb, people, ws, builds):
    folder = image_folder(wb, ws)
    (folder / "predict-text-classify-bayes_api-cpu.tar").write_bytes(b"x" * 3)
    (folder / "other.tar").write_bytes(b"y")
    (folder / ".train-x.tar.1234.part").write_bytes(b"z")
    (folder / "notes.txt").write_text("n")
    listed = [(t.filename, t.kind, t.name, t.size) for t in builds.images(people.bob, ws)]
    assert listed == [
        ("other.tar", None, None, 1),
        ("predict-text-classify-bayes_api-cpu.tar", "predict", "text-classify-bayes_api-cpu", 3),
    ]


def test_backends_without_container_images_say_so(wb, people, ws, tmp_path):
    local = LocalBackend(tmp_path / "local")
    builds = WorkspaceBuilds(wb.workspaces, wb.jobs, backend_factory=lambda: local)
    with pytest.raises(Unsupported, match="needs Docker"):
        builds.build(people.bob, ws, "demo", "train", "demo")


@pytest.mark.docker
@pytest.mark.slow
def test_a_real_docker_build_gives_a_tar_docker_loads(tmp_path, docker_backend, base_image):
    wb = make_workbench(tmp_path / "home", backend="docker")
    try:
        people = add_people(wb)
        workspace_id = make_workspace(wb, people.bob, make_env(wb, people.alice.id))
        project = wb.workspaces.folder(workspace_id) / "code" / "hello"
        project.mkdir()
        (project / "Dockerfile").write_text(DOCKERFILE)
        name = f"hello-{uuid.uuid4().hex[:6]}"
        tag = f"workbench/ws-{workspace_id}-predict-{name}:latest"
        started = time.monotonic()
        wb.jobs.runner.start()
        lines = build_tar(wb, people.bob, workspace_id, "hello", "predict", name)
        print(f"\nworkspace build: {time.monotonic() - started:.1f} s, {len(lines)} lines")
        tar = image_folder(wb, workspace_id) / f"predict-{name}.tar"
        assert tar.is_file() and tar.stat().st_uid == (1000 if os.geteuid() == 0 else os.getuid())
        with pytest.raises(ImageNotFound):
            docker_backend.inspect_image(tag)
        run_name = f"workbench-test-build-{uuid.uuid4().hex[:6]}"
        try:
            [loaded] = docker_backend.load_image(tar)
            info = docker_backend.run(RunSpec(name=run_name, image=loaded))
            deadline = time.monotonic() + 30
            while info.state is not RunState.EXITED and time.monotonic() < deadline:
                time.sleep(0.2)
                info = docker_backend.status(run_name)
            assert (info.exit_code, list(docker_backend.logs(run_name))) == (0, ["1"])
        finally:
            docker_backend.remove(run_name)
            docker_backend.remove_image(loaded)
    finally:
        wb.close()
