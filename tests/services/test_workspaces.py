"""The workspace service on the fake backend: every rule without Docker (the same
lifecycle runs against the real engine in tests/integration)."""

from __future__ import annotations

import subprocess
import zipfile

import pytest

from tests.archives import write_zip, zip_slip
from tests.conftest import accept_invitations, add_online_dataset, add_people, make_workbench
from workbench.config import WorkspaceLimits
from workbench.datasets.schemas import DatasetCreate
from workbench.errors import (
    Conflict,
    GitCloneFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    UnsafeArchive,
)
from workbench.registry import models as m
from workbench.workspaces.schemas import WorkspaceCreate


@pytest.fixture
def wb(tmp_path):
    workbench = make_workbench(
        tmp_path / "home",
        backend="fake",
        allow_file_git_urls=True,
        workspace_limits=WorkspaceLimits(max_cpus=2, max_memory_mb=4096),
    )
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


@pytest.fixture
def env_id(wb, people):
    with wb.registry.session() as s:
        env = m.Environment(
            name="python",
            framework="python",
            image_ref="workbench/env-python:1",
            owner_id=people.alice.id,
            visibility="preset",
        )
        s.add(env)
        s.flush()
    wb.backend().add_image("workbench/env-python:1", exposed_ports=[8888])
    return env.id


@pytest.fixture
def digits(wb, people, tmp_path):
    return add_online_dataset(wb, people.alice, tmp_path, {"0": 2, "1": 2})


def spec(env_id, **kw) -> WorkspaceCreate:
    return WorkspaceCreate.model_validate(
        {
            "name": "ws",
            "purpose": "image",
            "sub_purpose": "classification",
            "environment_id": env_id,
            **kw,
        }
    )


def test_create_start_stop_delete(wb, people, env_id, digits):
    ws = wb.workspaces.create(
        people.bob, spec(env_id, dataset_id=digits, resources={"cpus": 2, "memory_mb": 1024})
    )
    assert ws.state == "stopped" and ws.owner == "bob"
    root = wb.workspaces.folder(ws.id)
    assert sorted(p.name for p in root.iterdir()) == ["code", "docker_image", "model"]
    assert (root / "code" / "image-classification-train" / "train.py").is_file()

    started = wb.workspaces.start(people.bob, ws.id)
    assert started.state == "running"
    backend = wb.backend()
    run = backend.list({"workbench.workspace": str(ws.id)})
    assert len(run) == 1 and run[0].ports[8888] > 0
    spec_used = backend._runs[run[0].id].spec
    mounts = {mt.target: mt for mt in spec_used.mounts}
    assert mounts["/workspace/dataset/train"].read_only
    assert mounts["/workspace/help_doc"].read_only
    assert not mounts["/workspace/code"].read_only
    assert spec_used.limits.cpus == 2 and spec_used.limits.memory_mb == 1024
    assert spec_used.env["WORKBENCH_TOKEN"].startswith("wb_")
    assert wb.users.authenticate(spec_used.env["WORKBENCH_TOKEN"]).username == "bob"
    assert not any("docker.sock" in str(mt.source) for mt in spec_used.mounts)
    assert not any(k.startswith(("WORKBENCH_DB", "POSTGRES")) for k in spec_used.env)

    (root / "code" / "notes.txt").write_text("keep me")
    assert wb.workspaces.stop(people.bob, ws.id).state == "stopped"
    with pytest.raises(Unauthenticated):  # the container's token ends with the run
        wb.users.authenticate(spec_used.env["WORKBENCH_TOKEN"])
    assert wb.workspaces.start(people.bob, ws.id).state == "running"
    assert (root / "code" / "notes.txt").read_text() == "keep me"

    wb.workspaces.delete(people.bob, ws.id)
    assert not root.exists()
    assert backend.list({"workbench.workspace": str(ws.id)}) == []
    with pytest.raises(NotFound):
        wb.workspaces.get(people.bob, ws.id)


@pytest.mark.parametrize(
    ("fields", "error", "words"),
    [
        ({"environment_id": 999}, NotFound, "environment"),
        ({"dataset_id": 999}, NotFound, "dataset"),
        ({"resources": {"cpus": 8}}, InvalidInput, "cpus 8.0 > 2"),
        ({"resources": {"memory_mb": 8192, "gpus": 1}}, InvalidInput, "gpus 1 > 0"),
        ({"code": {"kind": "git", "url": "not a url"}}, InvalidInput, "not a git URL"),
        ({"code": {"kind": "git", "url": "--upload-pack=touch /tmp/x"}}, InvalidInput, "git URL"),
        (
            {"code": {"kind": "git", "url": "file:///nonexistent/repo.git"}},
            GitCloneFailed,
            "git clone of file:///nonexistent/repo.git failed",
        ),
    ],
)
def test_bad_creates_leave_nothing_behind(wb, people, env_id, fields, error, words):
    with pytest.raises(error, match=words):
        wb.workspaces.create(people.bob, spec(env_id, **fields))
    assert wb.workspaces.list(people.bob) == []
    assert (
        not (wb.store.root / "workspaces").exists()
        or list((wb.store.root / "workspaces").iterdir()) == []
    )


def test_offline_dataset_and_imageless_environment_are_refused(wb, people, env_id, tmp_path):
    ds = wb.datasets.create(
        people.bob,
        DatasetCreate(name="draft", purpose="image", sub_purpose="classification", format="dir"),
    )
    with pytest.raises(Conflict, match="only online datasets"):
        wb.workspaces.create(people.bob, spec(env_id, dataset_id=ds.id))
    with wb.registry.session() as s:
        bare = m.Environment(name="bare", framework="python", owner_id=people.bob.id)
        s.add(bare)
        s.flush()
        bare_id = bare.id
    with pytest.raises(Conflict, match="has no image yet"):
        wb.workspaces.create(people.bob, spec(bare_id))


def test_git_clone_and_scaffold_and_code_upload(wb, people, env_id, tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "train.py").write_text("print('hi')\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-qm",
            "init",
        ],
        check=True,
    )
    cloned = wb.workspaces.create(
        people.bob, spec(env_id, name="cloned", code={"kind": "git", "url": f"file://{repo}"})
    )
    assert (wb.workspaces.folder(cloned.id) / "code" / "train.py").read_text() == "print('hi')\n"

    made = wb.workspaces.create(
        people.bob,
        spec(
            env_id,
            name="made",
            code={
                "kind": "scaffold",
                "prefix": "flowers",
                "api_names": ["classify", "health_check"],
            },
        ),
    )
    code = wb.workspaces.folder(made.id) / "code"
    assert sorted(p.name for p in code.iterdir()) == ["README.md", "flowers-api", "flowers-train"]
    api = (code / "flowers-api" / "api.py").read_text()
    assert "['classify', 'health_check']" in api
    compile(api, "api.py", "exec")
    compile((code / "flowers-train" / "train.py").read_text(), "train.py", "exec")
    dockerfile = (code / "flowers-train" / "Dockerfile").read_text()
    assert (
        "ARG WORKBENCH_ENV_IMAGE=workbench/env-python:1\nFROM ${WORKBENCH_ENV_IMAGE}" in dockerfile
    )

    new_code = write_zip(tmp_path / "code.zip", {"proj/main.py": b"x = 1\n"})
    with new_code.open("rb") as f:
        archive = wb.store.save_stream(f, 10**8)
    wb.workspaces.upload_code(people.bob, made.id, archive)
    assert sorted(p.name for p in code.iterdir()) == ["proj"]
    assert (code / "proj" / "main.py").read_text() == "x = 1\n"
    with zip_slip(tmp_path / "slip.zip").open("rb") as f:
        bad = wb.store.save_stream(f, 10**8)
    with pytest.raises(UnsafeArchive):
        wb.workspaces.upload_code(people.bob, made.id, bad)
    assert sorted(p.name for p in code.iterdir()) == ["proj"]
    wb.workspaces.start(people.bob, made.id)
    with pytest.raises(Conflict, match="stop it before replacing its code"):
        wb.workspaces.upload_code(people.bob, made.id, archive)
    with zipfile.ZipFile(new_code) as zf:
        assert zf.namelist() == ["proj/main.py"]


def test_only_owner_and_members_open_it(wb, people, env_id):
    ws = wb.workspaces.create(people.alice, spec(env_id))
    with pytest.raises(NotFound):
        wb.workspaces.get(people.bob, ws.id)
    with pytest.raises(NotFound):
        wb.workspaces.start(people.bob, ws.id)
    with pytest.raises(NotFound, match="not in any of your teams"):
        wb.workspaces.add_member(people.alice, ws.id, "bob")
    team = wb.users.create_team(people.alice, "vision")
    wb.users.add_team_member(people.alice, team.id, "bob")
    accept_invitations(wb, people.bob)
    assert wb.workspaces.add_member(people.alice, ws.id, "bob").invited == ["bob"]
    with pytest.raises(NotFound):  # invited, not a member yet
        wb.workspaces.get(people.bob, ws.id)
    accept_invitations(wb, people.bob)
    assert wb.workspaces.get(people.alice, ws.id).members == ["bob"]
    assert wb.workspaces.start(people.bob, ws.id).state == "running"
    assert [w.id for w in wb.workspaces.list(people.bob)] == [ws.id]
    with pytest.raises(PermissionDenied):
        wb.workspaces.delete(people.bob, ws.id)
    wb.workspaces.remove_member(people.alice, ws.id, "bob")
    with pytest.raises(NotFound):
        wb.workspaces.get(people.bob, ws.id)


def test_reconcile_marks_dead_and_vanished_containers(wb, people, env_id):
    a = wb.workspaces.start(people.bob, wb.workspaces.create(people.bob, spec(env_id)).id)
    b = wb.workspaces.start(people.bob, wb.workspaces.create(people.bob, spec(env_id, name="b")).id)
    backend = wb.backend()
    run_a = backend.list({"workbench.workspace": str(a.id)})[0]
    backend.emit(run_a.id, "loading...", "Killed")
    backend.finish(run_a.id, 137, oom_killed=True)
    backend.remove(backend.list({"workbench.workspace": str(b.id)})[0].id)
    assert sorted(wb.workspaces.reconcile()) == sorted([a.id, b.id])
    got_a, got_b = wb.workspaces.get(people.bob, a.id), wb.workspaces.get(people.bob, b.id)
    assert got_a.state == "failed" and "out of memory" in got_a.state_reason
    assert "Killed" in got_a.state_reason
    assert got_b.state == "failed" and "gone" in got_b.state_reason
    assert wb.workspaces.start(people.bob, a.id).state == "running"


def test_a_failed_start_is_a_failed_state_with_the_reason(wb, people, env_id):
    ws = wb.workspaces.create(people.bob, spec(env_id))
    backend = wb.backend()
    backend.script("workbench/env-python:1", start_error="no space left on device")
    with pytest.raises(Exception, match="no space left"):
        wb.workspaces.start(people.bob, ws.id)
    got = wb.workspaces.get(people.bob, ws.id)
    assert got.state == "failed" and "no space left" in got.state_reason
    assert backend.list({"workbench.workspace": str(ws.id)}) == []


def test_a_start_past_the_owners_memory_quota_starts_nothing(wb, people, env_id):
    """A running workspace reserves its memory against its owner's quota."""
    from workbench.errors import QuotaExceeded
    from workbench.schemas.quotas import QuotaUpdate

    wb.quotas.set("bob", QuotaUpdate(memory_mb=1536))
    first = wb.workspaces.create(people.bob, spec(env_id, resources={"memory_mb": 1024}))
    second = wb.workspaces.create(
        people.bob, spec(env_id, name="second", resources={"memory_mb": 1024})
    )
    assert wb.workspaces.start(people.bob, first.id).state == "running"
    with pytest.raises(QuotaExceeded) as refused:
        wb.workspaces.start(people.bob, second.id)
    assert refused.value.details == {
        "quota": "memory_mb",
        "limit": 1536,
        "used": 1024,
        "asked": 1024,
    }
    assert "workspace second" in refused.value.message
    assert wb.workspaces.get(people.bob, second.id).state == "stopped"
    assert wb.backend().list({"workbench.workspace": str(second.id)}) == []
    wb.workspaces.stop(people.bob, first.id)
    assert wb.workspaces.start(people.bob, second.id).state == "running"
