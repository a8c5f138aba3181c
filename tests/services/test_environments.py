"""The environment service on the fake backend: the registry rules, the state machine, builds
from the envs/ definitions with their log, and checked uploads of docker save tars."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import add_people, make_workbench
from workbench.backends.base import Backend
from workbench.backends.local import LocalBackend
from workbench.config import DEFAULT_BASE_IMAGE
from workbench.enums import Visibility
from workbench.environments.builder import BuildContext, EnvBuilder
from workbench.environments.definition import EnvDefinition, load_definition
from workbench.environments.schemas import (
    EnvironmentCreate,
    EnvironmentFilter,
    EnvironmentState,
    EnvironmentUpdate,
)
from workbench.environments.service import EnvironmentService
from workbench.errors import (
    BackendError,
    BuildFailed,
    Conflict,
    CorruptArchive,
    ImageNotFound,
    InvalidInput,
    LocalWheelMissing,
    NotFound,
    PermissionDenied,
    Unsupported,
    UnsupportedArchive,
)
from workbench.images import inspect_image_tar
from workbench.jobs.schemas import JobLogPage
from workbench.registry import models as m
from workbench.services import Workbench

ENVS = Path(__file__).resolve().parents[2] / "envs"
PRESETS = ["onnx", "python", "pytorch", "tensorflow"]


def fake_wheel(folder: Path) -> Path:
    """A minimal wheel standing in for Workbench's (the builder never runs pip here)."""
    wheel = folder / "workbench-0.1.0-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("workbench/__init__.py", "")
        archive.writestr(
            "workbench-0.1.0.dist-info/METADATA",
            "Metadata-Version: 2.4\nName: workbench\nVersion: 0.1.0\nRequires-Dist: httpx\n",
        )
    return wheel


def docker_tar(
    path: Path,
    *,
    tags: list[str] | None = None,
    layers: tuple[str, ...] = ("aaaa/layer.tar",),
    manifest: object = None,
    leave_out: tuple[str, ...] = (),
    compress: bool = False,
) -> Path:
    """A small archive in the docker save layout (or broken in the ways asked for)."""
    config_name = "c0ffee.json"
    entry = {
        "Config": config_name,
        "RepoTags": ["corp/python:3.7.9-cpu"] if tags is None else tags,
        "Layers": list(layers),
    }
    files: dict[str, bytes] = {
        "manifest.json": json.dumps([entry] if manifest is None else manifest).encode(),
        config_name: json.dumps({"config": {"Cmd": ["python3"], "Env": ["A=1"]}}).encode(),
        **{layer: b"layer bytes" for layer in layers},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            if name in leave_out:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()) if compress else buffer.getvalue())
    return path


class FlatBuilder(EnvBuilder):
    """EnvBuilder with the Dockerfile's continued lines joined: the fake backend reads one
    instruction per line and does not follow a trailing backslash as Docker does."""

    def write_context(self, definition: EnvDefinition, dest: Path) -> BuildContext:
        context = super().write_context(definition, dest)
        dockerfile = dest / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text().replace("\\\n", " "))
        return context


def fake_builder(wheel: Path, **options: Any) -> Callable[[Backend], EnvBuilder]:
    return lambda backend: FlatBuilder(backend, workbench_wheel=wheel, **options)


@pytest.fixture
def wb(tmp_path, registry_url):
    workbench = make_workbench(tmp_path / "home", registry_url, backend="fake")
    workbench.backend().add_image(DEFAULT_BASE_IMAGE)
    yield workbench
    workbench.close()


@pytest.fixture
def people(wb):
    return add_people(wb)


@pytest.fixture
def backend(wb):
    return wb.backend()


@pytest.fixture
def envs(wb, tmp_path) -> EnvironmentService:
    wb.environments.kind.make_builder = fake_builder(fake_wheel(tmp_path / "dist"))
    return wb.environments


def env_log(envs: EnvironmentService, actor, env_id: int, offset: int = 0) -> JobLogPage:
    """The log of an environment's last build, upload or pull: its job's."""
    return envs.jobs.tail(actor, envs.get(actor, env_id).job_id, offset)


def create(envs, actor, **fields):
    return envs.create(actor, EnvironmentCreate.model_validate({"name": "env", **fields}))


def stored(wb, path: Path):
    with path.open("rb") as f:
        return wb.store.save_stream(f, 10**8)


def add_workspace(wb, owner_id: int, env_id: int) -> int:
    with wb.registry.session() as s:
        ws = m.Workspace(
            name="ws",
            purpose="text",
            sub_purpose="classification",
            environment_id=env_id,
            owner_id=owner_id,
        )
        s.add(ws)
        s.flush()
        return ws.id


# --- the registry -----------------------------------------------------------------------------


def test_create_takes_what_the_definition_says(envs, people):
    python = load_definition(ENVS, "python")
    env = create(envs, people.bob, name="my python", definition="python", description="mine")
    assert (env.owner, env.state, env.visibility) == ("bob", "draft", "private")
    assert (env.framework, env.framework_version, env.device) == (
        python.framework,
        python.framework_version,
        python.device,
    )
    assert (env.image_ref, env.state_reason, env.job_id) == ("", "", None)
    own = create(envs, people.bob, name="keras", framework="keras", framework_version="2.1.4")
    assert (own.definition, own.device, own.framework) == ("", "cpu", "keras")
    assert envs.get(people.bob, env.id) == env


@pytest.mark.parametrize(
    ("fields", "error", "words"),
    [
        ({"definition": "cobol"}, InvalidInput, "choose one of: onnx, python, pytorch"),
        ({"definition": "python", "framework": "pytorch"}, InvalidInput, "disagrees: framework"),
        ({"definition": "python", "device": "gpu"}, InvalidInput, "device 'gpu'"),
        ({}, InvalidInput, "framework is required"),
        ({"framework": "python", "visibility": "preset"}, PermissionDenied, "Only admins"),
    ],
)
def test_bad_creates(envs, people, fields, error, words):
    with pytest.raises(error, match=words):
        create(envs, people.bob, **fields)
    assert envs.list(people.bob) == []


def test_names_are_unique_per_owner(envs, people):
    create(envs, people.bob, framework="python")
    with pytest.raises(Conflict, match="already is an environment named 'env'"):
        create(envs, people.bob, framework="python")
    create(envs, people.alice, framework="python")  # another owner's name is no clash


def test_visibility_and_filters(envs, people):
    mine = create(envs, people.bob, name="mine", framework="python")
    public = create(
        envs, people.alice, name="shared onnx", framework="onnx", visibility="public", device="gpu"
    )
    preset = create(envs, people.alice, name="curated", definition="python", visibility="preset")
    hidden = create(envs, people.alice, name="alice's own", framework="python")

    def ids(actor, **filters):
        return [e.id for e in envs.list(actor, EnvironmentFilter.model_validate(filters))]

    assert ids(people.bob) == [mine.id, public.id, preset.id]
    assert ids(people.bob, mine=True) == [mine.id]
    assert ids(people.bob, visibility="preset") == [preset.id]
    assert ids(people.bob, visibility="public") == [public.id]
    assert ids(people.bob, framework="onnx", device="gpu") == [public.id]
    assert ids(people.bob, q="CURATED") == [preset.id]
    assert ids(people.bob, state="ready") == []
    with pytest.raises(NotFound, match="environment"):
        envs.get(people.bob, hidden.id)


def test_edit_rules(envs, people):
    env = create(envs, people.bob, framework="python", definition="python")
    changed = envs.update(people.bob, env.id, EnvironmentUpdate(description="for NLP", name="nlp"))
    assert (changed.description, changed.name) == ("for NLP", "nlp")
    # a new definition brings its framework, unless the request says otherwise
    onnx = envs.update(people.bob, env.id, EnvironmentUpdate(definition="onnx"))
    assert (onnx.definition, onnx.framework) == ("onnx", "onnx")
    with pytest.raises(InvalidInput, match="disagrees"):
        envs.update(people.bob, env.id, EnvironmentUpdate(framework="tensorflow"))
    detached = envs.update(
        people.bob, env.id, EnvironmentUpdate(definition="", framework="tensorflow")
    )
    assert (detached.definition, detached.framework) == ("", "tensorflow")
    with pytest.raises(InvalidInput, match="cannot be null"):
        envs.update(people.bob, env.id, EnvironmentUpdate(name=None))
    with pytest.raises(PermissionDenied, match="Only admins"):
        envs.update(people.bob, env.id, EnvironmentUpdate(visibility=Visibility.PRESET))
    envs.update(people.bob, env.id, EnvironmentUpdate(visibility=Visibility.PUBLIC))
    with pytest.raises(PermissionDenied, match="Only the owner"):
        envs.update(people.alice, env.id, EnvironmentUpdate(description="mine now"))
    with pytest.raises(PermissionDenied, match="Only the owner"):
        envs.delete(people.alice, env.id)


def test_admins_curate_presets_of_other_admins(envs, people, wb):
    other = wb.users.add_user("carol", role="admin")
    carol = type(people.alice)(other.id, other.username, other.role)
    preset = create(envs, carol, definition="python", visibility="preset")
    assert envs.update(people.alice, preset.id, EnvironmentUpdate(description="ok")).description
    with pytest.raises(PermissionDenied):
        envs.update(people.bob, preset.id, EnvironmentUpdate(description="no"))


def test_delete_is_refused_while_a_workspace_uses_it(envs, people, wb):
    env = create(envs, people.bob, definition="python")
    envs.build(people.bob, env.id)
    ws = add_workspace(wb, people.bob.id, env.id)
    with pytest.raises(Conflict, match=rf"used by workspaces \[{ws}\]") as caught:
        envs.delete(people.bob, env.id)
    assert caught.value.details["workspaces"] == [ws]
    assert envs.get(people.bob, env.id).state == "ready"
    with wb.registry.session() as s:
        s.delete(s.get(m.Workspace, ws))
    image = envs.get(people.bob, env.id).image_ref
    envs.delete(people.bob, env.id)
    with pytest.raises(NotFound):
        envs.get(people.bob, env.id)
    assert not wb.store.exists(f"environments/{env.id}")
    with pytest.raises(ImageNotFound):  # the image built for it went with it
        wb.backend().inspect_image(image)


# --- presets ------------------------------------------------------------------------------------


def test_sync_presets_is_idempotent_and_for_admins(envs, people, backend):
    with pytest.raises(PermissionDenied, match="Only admins"):
        envs.sync_presets(people.bob)
    backend.add_image("workbench/env-python:latest")  # built from the command line earlier
    first = envs.sync_presets(people.alice)
    assert sorted(e.name for e in first) == PRESETS
    assert {e.visibility for e in first} == {Visibility.PRESET}
    assert all(e.definition == e.name for e in first)
    by_name = {e.name: e for e in first}
    assert by_name["python"].state == "ready"
    assert by_name["python"].image_ref == "workbench/env-python:latest"
    assert by_name["pytorch"].state == "draft" and by_name["pytorch"].framework == "pytorch"
    again = envs.sync_presets(people.alice)
    assert [e.id for e in again] == [e.id for e in first]
    listed = envs.list(people.bob, EnvironmentFilter(visibility=Visibility.PRESET))
    assert sorted(e.name for e in listed) == PRESETS
    onnx = envs.build(people.alice, by_name["onnx"].id)
    assert onnx.image_ref == "workbench/env-onnx:latest"


# --- builds -------------------------------------------------------------------------------------


def test_build_from_the_definition(envs, people, backend, wb):
    env = create(envs, people.bob, definition="python")
    built = envs.build(people.bob, env.id)
    tag = f"workbench/env-python:env-{env.id}"
    assert (built.state, built.image_ref, built.state_reason) == ("ready", tag, "")
    assert built.image_id == backend.inspect_image(tag).id
    text = env_log(envs, people.bob, env.id).text
    first, second = text.splitlines()[:2]
    assert first == f"building environment {env.id} from envs/python as {tag}"
    assert second.startswith("base image workbench/base:bookworm")
    assert "Step 1/" in text and text.endswith(f"ready: {tag} ({built.image_id})\n")
    # anyone who sees the environment reads its log, in pages that end with whole lines
    envs.update(people.bob, env.id, EnvironmentUpdate(visibility=Visibility.PUBLIC))
    page = env_log(envs, people.alice, env.id, offset=10)
    assert page.text == text.encode()[10:].decode() and page.next_offset == len(text.encode())
    assert env_log(envs, people.alice, env.id, page.next_offset).text == ""
    with pytest.raises(InvalidInput):
        env_log(envs, people.bob, env.id, -1)


def test_a_failed_build_keeps_the_last_image_and_says_why(envs, people, backend):
    env = create(envs, people.bob, definition="python")
    good = envs.build(people.bob, env.id)
    backend.fail_build(
        good.image_ref,
        "The command '/bin/sh -c pip install' returned a non-zero code: 1",
        lines=["ERROR: No matching distribution found for numpy==99"],
    )
    with pytest.raises(BuildFailed, match="non-zero code"):
        envs.build(people.bob, env.id)
    failed = envs.get(people.bob, env.id)
    assert failed.state == "failed" and "non-zero code: 1" in failed.state_reason
    assert (failed.image_ref, failed.image_id) == (good.image_ref, good.image_id)
    text = env_log(envs, people.bob, env.id).text
    assert "ERROR: No matching distribution found for numpy==99" in text
    assert text.splitlines()[-1].startswith("[workbench] job ")
    assert "failed: building workbench/env-python" in text.splitlines()[-1]


def test_a_build_that_cannot_start_fails_with_the_reason_then_recovers(envs, people, tmp_path, wb):
    env = create(envs, people.bob, definition="pytorch")
    with pytest.raises(LocalWheelMissing):
        envs.build(people.bob, env.id)
    failed = envs.get(people.bob, env.id)
    assert failed.state == "failed" and "from a local wheel" in failed.state_reason
    assert (
        "failed: environment 'pytorch' installs torch==" in env_log(envs, people.bob, env.id).text
    )

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    version = load_definition(ENVS, "pytorch").framework_version
    (wheels / f"torch-{version}-cp311-cp311-linux_x86_64.whl").write_bytes(b"stand-in")
    wheel = fake_wheel(tmp_path / "dist2")
    envs.kind.make_builder = fake_builder(wheel, wheels_dir=wheels)
    ready = envs.build(people.bob, env.id)
    assert (ready.state, ready.state_reason) == ("ready", "")
    assert not wb.store.exists(f"environments/{env.id}/state_reason.txt")


def test_build_needs_a_definition_and_the_owner(envs, people):
    env = create(envs, people.bob, framework="keras")
    with pytest.raises(Conflict, match="no definition to build from"):
        envs.build(people.bob, env.id)
    assert envs.get(people.bob, env.id).state == "draft"
    preset = create(envs, people.alice, name="p", definition="python", visibility="public")
    with pytest.raises(PermissionDenied):
        envs.build(people.bob, preset.id)


class GatedBuilder(FlatBuilder):
    """Writes two lines, then waits for the test to open the gate."""

    gate = threading.Event()

    def build(self, definition: EnvDefinition, tag: str, *, force: bool = False) -> Iterator[str]:
        yield "step one"
        yield "step two"
        assert self.gate.wait(10)
        yield from super().build(definition, tag, force=force)


def test_one_operation_at_a_time_and_the_log_while_building(envs, people, tmp_path, wb):
    wb.jobs.runner.interval = 0.02
    wb.jobs.runner.start()  # the build runs in the background, as in a server
    wheel = fake_wheel(tmp_path / "dist")
    GatedBuilder.gate = threading.Event()
    envs.kind.make_builder = lambda b: GatedBuilder(b, workbench_wheel=wheel)
    env = create(envs, people.bob, definition="python")
    assert envs.start_build(people.bob, env.id).state == "building"
    try:
        for attempt in (
            lambda: envs.start_build(people.bob, env.id),
            lambda: envs.build(people.bob, env.id),
            lambda: envs.delete(people.bob, env.id),
            lambda: envs.update(people.bob, env.id, EnvironmentUpdate(definition="onnx")),
            lambda: envs.check_upload(people.bob, env.id),
        ):
            with pytest.raises(Conflict, match="is building"):
                attempt()
        # metadata may change meanwhile
        envs.update(people.bob, env.id, EnvironmentUpdate(description="soon"))
        page = env_log(envs, people.bob, env.id)
        while "step two" not in page.text:
            page = env_log(envs, people.bob, env.id)
        assert page.state == "running" and page.text.endswith("step two\n")
    finally:
        GatedBuilder.gate.set()
    assert envs.wait(env.id, timeout=10)
    done = envs.get(people.bob, env.id)
    assert (done.state, done.description) == ("ready", "soon")
    assert env_log(envs, people.bob, env.id, page.next_offset).text.startswith("base image")


def test_reconcile_fails_builds_a_stopped_server_left(envs, people, wb):
    env = create(envs, people.bob, definition="python")
    with wb.registry.session() as s:
        s.get(m.Environment, env.id).state = EnvironmentState.BUILDING
    assert envs.reconcile() == [env.id]
    after = envs.get(people.bob, env.id)
    assert after.state == "failed" and "server stopped" in after.state_reason
    assert envs.reconcile() == []


# --- uploads and pulls --------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_upload_a_docker_save_tar(envs, people, wb, backend, tmp_path, compress):
    env = create(envs, people.bob, framework="python", framework_version="3.7.9")
    tar = docker_tar(
        tmp_path / "py.tar", tags=["corp/python:3.7.9-cpu", "corp/python:3.7"], compress=compress
    )
    digest = inspect_image_tar(tar).digest
    info = envs.upload_image(people.bob, env.id, stored(wb, tar))
    assert (info.state, info.image_ref) == ("ready", f"workbench/env-{env.id}:{digest[7:19]}")
    assert info.image_id == digest == backend.inspect_image(info.image_ref).id
    assert backend.inspect_image(info.image_ref).cmd == ("python3",)
    # the tags written in the tar name anyone's image: they are not applied
    for tag in ("corp/python:3.7.9-cpu", "corp/python:3.7"):
        with pytest.raises(ImageNotFound):
            backend.inspect_image(tag)
    logs = env_log(envs, people.bob, env.id).text
    assert "its own tags (corp/python:3.7.9-cpu, corp/python:3.7) are not applied" in logs


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"leave_out": ("manifest.json",)}, CorruptArchive, "no manifest.json"),
        ({"leave_out": ("aaaa/layer.tar",)}, CorruptArchive, "does not hold: aaaa/layer.tar"),
        ({"leave_out": ("c0ffee.json",)}, CorruptArchive, "does not hold: c0ffee.json"),
        ({"tags": []}, InvalidInput, "no tag"),
        ({"manifest": {"Config": "c0ffee.json"}}, CorruptArchive, "not a docker save manifest"),
        ({"manifest": [{"Layers": []}]}, CorruptArchive, "not a docker save manifest"),
    ],
)
def test_bad_tars_are_refused_before_anything_is_loaded(
    envs, people, wb, backend, tmp_path, monkeypatch, kwargs, error, words
):
    loads = []
    monkeypatch.setattr(backend, "load_image", lambda tar: loads.append(tar) or [])
    env = create(envs, people.bob, framework="python")
    with pytest.raises(error, match=words):
        envs.upload_image(people.bob, env.id, stored(wb, docker_tar(tmp_path / "x", **kwargs)))
    assert loads == []
    assert envs.get(people.bob, env.id).state == "draft"


def test_files_that_are_not_tars(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnsupportedArchive, match=r"not a tar archive; .* docker save"):
        inspect_image_tar(tmp_path / "notes.txt")
    broken = docker_tar(tmp_path / "m.tar", manifest=[])
    with pytest.raises(CorruptArchive):
        inspect_image_tar(broken)
    ok = inspect_image_tar(docker_tar(tmp_path / "ok.tar", layers=()))
    assert ok.tags == ("corp/python:3.7.9-cpu",)


def test_upload_rules(envs, people, wb, tmp_path):
    env = create(envs, people.bob, framework="python", visibility="public")
    tar = stored(wb, docker_tar(tmp_path / "ok.tar"))
    with pytest.raises(PermissionDenied):
        envs.upload_image(people.alice, env.id, tar)
    private = create(envs, people.bob, name="p", framework="python")
    with pytest.raises(NotFound):
        envs.check_upload(people.alice, private.id)


def test_an_engine_without_docker_tars_changes_nothing(wb, people, tmp_path):
    local = Workbench.from_settings(wb.settings, backend_instance=LocalBackend(tmp_path / "l"))
    envs = local.environments
    env = create(envs, people.bob, framework="python")
    with pytest.raises(Unsupported, match="needs Docker"):
        envs.upload_image(people.bob, env.id, stored(wb, docker_tar(tmp_path / "ok.tar")))
    assert envs.get(people.bob, env.id).state == "draft"
    assert "failed: " in env_log(envs, people.bob, env.id).text
    local.close()


def test_pull_needs_a_docker_engine(envs, people):
    env = create(envs, people.bob, framework="python")
    with pytest.raises(Unsupported, match="pulling an image needs a Docker Engine") as caught:
        envs.pull(people.bob, env.id, "registry.example/team/python:3.7")
    assert caught.value.status == 501
    with pytest.raises(InvalidInput, match="not an image reference"):
        envs.pull(people.bob, env.id, "--help")
    assert envs.get(people.bob, env.id).state == "draft"


@pytest.mark.docker
def test_a_pull_the_engine_cannot_do_fails_with_its_reason(tmp_path, docker_backend):
    wb = make_workbench(tmp_path / "home", backend="docker")
    try:
        bob = add_people(wb).bob
        envs = wb.environments
        env = create(envs, bob, framework="python")
        with pytest.raises(BackendError, match="connection refused") as caught:
            envs.pull(bob, env.id, "localhost:1/nothing:latest")
        assert "upload a docker save tar instead" in caught.value.message
        failed = envs.get(bob, env.id)
        assert failed.state == "failed" and "connection refused" in failed.state_reason
        assert env_log(envs, bob, env.id).text.startswith(
            "docker pull localhost:1/nothing:latest\n"
        )
    finally:
        wb.close()


@pytest.mark.docker
def test_a_pull_from_a_registry_makes_the_image(tmp_path, docker_backend, image_registry):
    """A real ``docker pull`` from the image registry ``scripts/registry`` runs."""
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f'FROM scratch\nLABEL wbtest.pull={tmp_path.name}\nCOPY Dockerfile /\nCMD ["/x"]\n'
    )
    tag = f"wbtest/pulled-env:{tmp_path.name.lower()[-20:]}"
    list(docker_backend.build_image(context, tag))
    built = docker_backend.inspect_image(tag).id
    # pushed, and gone from the engine: the pull downloads it
    reference = image_registry.push(tag, f"team/python:{tmp_path.name.lower()[-20:]}")
    with pytest.raises(ImageNotFound):
        docker_backend.inspect_image(built)
    wb = make_workbench(tmp_path / "home", backend="docker")
    try:
        bob = add_people(wb).bob
        envs = wb.environments
        env = create(envs, bob, framework="python")
        pulled = envs.pull(bob, env.id, reference)
        # tagged as the environment's own; the pulled name, new here, taken off again
        assert (pulled.state, pulled.image_ref) == (
            "ready",
            f"workbench/env-{env.id}:{built[7:19]}",
        )
        assert pulled.image_id == built
        with pytest.raises(ImageNotFound):
            docker_backend.inspect_image(reference)
        assert "Downloaded newer image" in env_log(envs, bob, env.id).text
    finally:
        wb.close()
        docker_backend.remove_image(built)
